export { RedisEngine, REDIS_BATCHED_COMMANDS, type RedisEngineOptions } from './redis-engine.js';
export { RedisBackend, type RedisBackendOptions, type RedisClient } from './backend.js';
export { KeySpace, type RoomKeys, type ChannelKeys } from './keys.js';
export { RedisStatusStore } from './status-store.js';
export { RedisBroker, type RedisBrokerOptions } from './channel-broker.js';
export { BackendLog, logPartition, type BackendLogOptions } from './backend-log.js';
