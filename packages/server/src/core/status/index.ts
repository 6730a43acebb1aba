export { StatusService, type StatusServiceOptions, type StatusOp, type ConnectionChange, type StatusListener, type StatusRead } from './service.js';
export type { StatusStore, StatusCommand, StatusCommandType, StatusContext, StatusWriteResult, StatusFeedItem, StatusFeedState, SweepCommand, SweepResult } from './store.js';
export { effective, toRecord, nextDeadline, isConnected, manualInForce, type StatusState, type Effective } from './model.js';
export { StatusCache, type StatusCacheOptions } from './cache.js';
