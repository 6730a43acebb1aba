export { RedisEngine, type RedisEngineOptions } from './redis-engine.js';
export { RedisBackend, type RedisBackendOptions, type RedisClient } from './backend.js';
export { KeySpace, type RoomKeys } from './keys.js';
export { RedisStatusStore } from './status-store.js';
