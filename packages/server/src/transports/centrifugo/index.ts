export { attachCentrifugo, CENTRIFUGO_WEBSOCKET_PATH, type CentrifugoEndpoint, type CentrifugoEndpointOptions } from './endpoint.js';
export { DEFAULT_LIMITS as CENTRIFUGO_DEFAULT_LIMITS, type CentrifugoLimits } from './context.js';
export { CentrifugoError, CentrifugoDisconnect, CLIENT_ERRORS, DISCONNECTS, UNSUBSCRIBES } from './codes.js';
export { CentrifugoConnection, type ChannelSub } from './connection.js';
export { createCentrifugoTokenVerifier, connectionCredentials, TokenError, type CentrifugoTokenVerifier, type ConnectionCredentials, type SubscriptionCredentials } from './tokens.js';
