import { ChannelNamespaces } from '../core/channels/namespaces.js';
import { LogSummary } from '../core/shared/log-summary.js';
import type { Logger } from '../core/shared/logger.js';
import type { Extension } from '../extensions/extension.js';
import { centrifugoProxyExtensions } from '../extensions/proxy/proxies.js';
import type { CentrifugoSettings } from './centrifugo-config.js';

/**
 * What the standalone server runs from Centrifugo's settings: the one
 * warning naming every ignored option (logged at start, once), and the
 * proxy extensions (failed calls logged in bursts). `stop()` ends the log
 * summary.
 */
export function centrifugoRuntime(settings: CentrifugoSettings | undefined, namespaces: ChannelNamespaces | undefined, logger: Logger): { extensions: Extension[]; stop(): void } {
  if (!settings) return { extensions: [], stop: () => undefined };
  const setting = settings.path !== undefined ? `CENTRIFUGO_CONFIG=${settings.path}` : 'Centrifugo environment variables';
  if (settings.ignored.length > 0) {
    logger.warn({ setting: 'CENTRIFUGO_CONFIG', path: settings.path, version: settings.version, ignored: settings.ignored }, `${setting}: ${settings.ignored.length} option(s) ignored: ${settings.ignored.join('; ')}`);
  }
  if (!settings.proxies) return { extensions: [], stop: () => undefined };
  const failures = new LogSummary(logger, 'centrifugo proxy call failed');
  const extensions = centrifugoProxyExtensions(settings.proxies, {
    namespaces: namespaces ?? ChannelNamespaces.defaults(),
    onFailure: (kind, proxy, why) => failures.note(`${kind} ${proxy.name}`, { proxy: kind, name: proxy.name, endpoint: proxy.endpoint, why }),
  });
  for (const e of extensions) logger.info({ extension: e.name }, 'centrifugo proxy enabled');
  return { extensions, stop: () => failures.stop() };
}
