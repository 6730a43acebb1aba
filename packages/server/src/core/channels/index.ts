export { ChannelService, type ChannelServiceOptions, type ChannelOp, type PublishOptions } from './service.js';
export { ChannelSubscription, type ChannelListener, type SubscribeOptions } from './subscription.js';
export { ChannelFeeds, channelSources, type ChannelFeedsOptions, type ChannelFeedItem, type UnrecoverableReason, type ChannelHub, type ChannelTopics } from './feeds.js';
export {
  ChannelNamespaces,
  ChannelsConfigError,
  DEFAULT_NAMESPACE,
  DEFAULT_HISTORY_META_TTL_MS,
  parseDuration,
  type ChannelsConfig,
  type NamespaceConfig,
  type NamespaceOptions,
  type ChannelAction,
  type ChannelClient,
} from './namespaces.js';
export { newEpoch, type ChannelBroker, type ChannelPresencePort, type PublicationBody, type PublishCommand, type ReadCommand, type ReadResult, type Retention } from './broker.js';
export { ANONYMOUS_USER_ID, clientInfoOf, presenceStateOf, presenceUserOf } from './presence-info.js';
