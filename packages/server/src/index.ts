export * from 'realtime-message-protocol';
// The presence core (no socket.io, no ioredis).
export { resolvePresenceOptions, presenceSources } from './core/presence/service.js';
export { PresenceService, type RedisPresenceOptions } from './app/presence-service.js';
export type { PresenceOptions, ResolvedPresenceOptions, ReapPassResult, JoinResult, JoinUpToDateResult, WriteTarget, PresenceListener, EngineOp, PresenceHub, PresenceTopics } from './core/presence/service.js';
export type { PresenceEngine, RoomFeedItem, RoomMessageItem, JoinCommand, JoinOutcome, JoinUpToDateOutcome, HeartbeatCommand, LeaveCommand, DisconnectCommand, WriteOutcome, ReapCommand, ReapResult, EncodedPatch, Timing } from './core/presence/engine.js';
export { Hub, type TopicSource, type Unsubscribe, type HubOptions } from './core/shared/hub.js';
export { checkHealth, type HealthCheck, type HealthReport } from './core/shared/health.js';
export { systemClock, ManualClock, type Clock } from './core/shared/clock.js';
export { silentLogger, type Logger } from './core/shared/logger.js';
// User status (SPEC §7): the service over a small store interface.
export * from './core/status/index.js';
// Engines (also at realtime-message/memory and realtime-message/redis).
export { MemoryEngine } from './engines/memory/memory-engine.js';
export { MemoryStatusStore } from './engines/memory/status-store.js';
export { RedisEngine, REDIS_BATCHED_COMMANDS, type RedisEngineOptions } from './engines/redis/redis-engine.js';
export { RedisBackend, type RedisBackendOptions, type RedisClient } from './engines/redis/backend.js';
export { KeySpace } from './engines/redis/keys.js';
export { RedisStatusStore } from './engines/redis/status-store.js';
// Extensions: hooks every transport runs.
export { Extensions, type Extension, type ConnectContext, type ActionContext, type ActionOutcome, type Action, type TransportName, type VerifiedToken, type RefreshContext, type RefreshOutcome } from './extensions/extension.js';
// Centrifugo's HTTP callback proxies (connect, refresh, subscribe, publish, sub_refresh, rpc) as extensions, and reading a Centrifugo config.json.
export { centrifugoProxyExtensions, callProxy, ProxyCallError, type CentrifugoProxySettings, type RpcProxySettings, type ProxyEndpoint, type ProxyExtensionOptions } from './extensions/proxy/index.js';
export { loadCentrifugoSettings, CentrifugoConfigError, type CentrifugoSettings } from './app/centrifugo-config.js';
export { createJwtVerifier, tokenAuth, type TokenVerifier, type JwtAuthOptions } from './extensions/jwt.js';
// Socket.IO.
export { initPresence } from './app/init-presence.js';
export type { InitPresenceOptions, PresenceRuntime, AuthorizeContext } from './app/init-presence.js';
export { socketRoomOf, type Membership } from './transports/socketio/session.js';
export { PresenceMetrics } from './observability/metrics.js';
export type { RateLimitOptions } from './transports/shared/rate-limit.js';
// The standalone server.
export { loadConfig, ConfigError, type Config } from './app/config.js';
export { createRealtimeServer, type RealtimeServer } from './app/server.js';
// Channels (SPEC §8): the service over a small broker interface, and its brokers.
export * from './core/channels/index.js';
export { MemoryBroker } from './engines/memory/channel-broker.js';
export { RedisBroker, type RedisBrokerOptions } from './engines/redis/channel-broker.js';
export { BackendLog, logPartition, type BackendLogOptions } from './engines/redis/backend-log.js';
