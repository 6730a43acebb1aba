export { callProxy, proxyHeaders, ProxyCallError, type ProxyEndpoint, type ProxyReply } from './http.js';
export { centrifugoProxyExtensions, type CentrifugoProxySettings, type RpcProxySettings, type ProxyExtensionOptions, type Failure } from './proxies.js';
