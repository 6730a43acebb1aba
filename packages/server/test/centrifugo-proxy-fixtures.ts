import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';

/** One request the callback service received. */
export interface Call {
  path: string;
  body: any;
  headers: IncomingHttpHeaders;
}

/** How a route answers instead of its handler: a broken answer, or a custom one. */
export type Behaviour = 'malformed' | 'not-envelope' | 'slow' | 'status500' | ((body: any, headers: IncomingHttpHeaders) => unknown);

export interface CallbackService {
  url: string;
  calls: Call[];
  /** Calls of one route (`connect`, `subscribe`, ...). */
  of(route: string): Call[];
  /** Makes a route answer otherwise until the test ends (or until set again). */
  set(route: string, behaviour: Behaviour | undefined): void;
}

const now = (): number => Math.floor(Date.now() / 1_000);

/**
 * The application's callback service in the style of the original design (a
 * Centrifugo deployment's backend): `connect` authenticates by session cookie
 * (or a `Bearer` header sent through headers emulation), `subscribe` checks
 * the room, `publish` validates and normalises chat messages; `refresh`,
 * `sub_refresh` and `rpc` too. A real HTTP server on a free port.
 */
export async function callbackService(): Promise<CallbackService> {
  const calls: Call[] = [];
  const overrides = new Map<string, Behaviour>();
  const handlers: Record<string, (body: any, headers: IncomingHttpHeaders) => unknown> = {
    connect(_body, headers) {
      const cookie = /(?:^|;\s*)session=([^;]+)/.exec(String(headers.cookie ?? ''))?.[1];
      const bearer = /^Bearer (.+)$/.exec(String(headers.authorization ?? ''))?.[1];
      const user = cookie ?? bearer;
      if (!user) return { disconnect: { code: 4501, reason: 'unauthorized' } };
      return { result: { user, info: { name: user.toUpperCase() }, data: { greeting: `hello ${user}` } } };
    },
    subscribe(body) {
      if (String(body.channel).endsWith(':secret')) return { error: { code: 403, message: 'permission denied' } };
      if (String(body.channel).endsWith(':banned')) return { disconnect: { code: 4503, reason: 'banned' } };
      return { result: { info: { role: 'member' }, data: { welcome: body.channel } } };
    },
    publish(body) {
      const text = body.data?.text;
      if (typeof text !== 'string' || text.trim() === '') return { error: { code: 1400, message: 'bad message' } };
      return { result: { data: { text: text.trim(), by: body.user } } };
    },
    refresh: () => ({ result: { expire_at: now() + 600 } }),
    sub_refresh: () => ({ result: { expire_at: now() + 600 } }),
    rpc(body) {
      if (body.method === 'fail') return { error: { code: 1001, message: 'rpc failed' } };
      if (body.method === 'nothing') return { result: {} };
      return { result: { data: { echo: body.data, method: body.method } } };
    },
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const route = (req.url ?? '').replace(/^\/centrifugo\//, '');
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      calls.push({ path: route, body, headers: req.headers });
      const behaviour = overrides.get(route);
      const send = (status: number, text: string): void => {
        if (res.destroyed) return;
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(text);
      };
      if (behaviour === 'malformed') return send(200, '{"result": {"user": ');
      if (behaviour === 'not-envelope') return send(200, JSON.stringify({ result: ['not', 'an', 'object'] }));
      if (behaviour === 'status500') return send(500, JSON.stringify({ result: {} }));
      if (behaviour === 'slow') {
        const t = setTimeout(() => send(200, JSON.stringify({ result: { user: 'late', data: { text: 'late' } } })), 3_000);
        res.on('close', () => clearTimeout(t));
        return;
      }
      const handler = typeof behaviour === 'function' ? behaviour : handlers[route];
      if (!handler) return send(404, '{}');
      send(200, JSON.stringify(handler(body, req.headers)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/centrifugo`;
  return {
    url,
    calls,
    of: (route) => calls.filter((c) => c.path === route),
    set: (route, behaviour) => {
      if (behaviour === undefined) overrides.delete(route);
      else overrides.set(route, behaviour);
    },
  };
}

/** A Centrifugo v5 config.json with every proxy pointing at the callback service, as the original design had it. */
export function v5Config(service: CallbackService, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    token_hmac_secret_key: 'centrifugo-test-secret-of-at-least-32-bytes',
    allowed_origins: ['*'],
    proxy_connect_endpoint: `${service.url}/connect`,
    proxy_refresh_endpoint: `${service.url}/refresh`,
    proxy_subscribe_endpoint: `${service.url}/subscribe`,
    proxy_publish_endpoint: `${service.url}/publish`,
    proxy_rpc_endpoint: `${service.url}/rpc`,
    proxy_connect_timeout: '500ms',
    proxy_subscribe_timeout: '500ms',
    proxy_publish_timeout: '500ms',
    proxy_rpc_timeout: '500ms',
    proxy_http_headers: ['Cookie', 'Authorization'],
    namespaces: [
      { name: 'chat', proxy_subscribe: true, proxy_publish: true, presence: true, join_leave: true, history_size: 10, history_ttl: '60s', allow_history_for_subscriber: true },
      { name: 'open', allow_subscribe_for_client: true, allow_publish_for_subscriber: true, history_size: 10, history_ttl: '60s', allow_history_for_subscriber: true },
    ],
    ...extra,
  };
}
