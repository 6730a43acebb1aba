// `realtime-message/nats`: user status in a NATS JetStream KV bucket (hub and leaf nodes). See docs/deploy-nats.md.
export { NatsStatusStore, type NatsStatusStoreOptions } from './status-store.js';
export { NatsStatusFeed, type NatsFeedState } from './feed.js';
export { StatusLinkDownError, isNatsUnavailable } from './errors.js';
export { InvalidStatusValueError, keyOf as natsStatusKey } from './record.js';
