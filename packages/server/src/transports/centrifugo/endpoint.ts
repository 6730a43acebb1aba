import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ChannelService } from '../../core/channels/service.js';
import type { PresenceService } from '../../core/presence/service.js';
import { LogSummary } from '../../core/shared/log-summary.js';
import { silentLogger, type Logger } from '../../core/shared/logger.js';
import { Extensions } from '../../extensions/extension.js';
import type { JwtAuthOptions } from '../../extensions/jwt.js';
import { DISCONNECTS } from './codes.js';
import { CentrifugoConnection } from './connection.js';
import { DEFAULT_LIMITS, type CentrifugoLimits, type EndpointContext } from './context.js';
import { createCentrifugoTokenVerifier } from './tokens.js';

/** Centrifugo's WebSocket path (`websocket.handler_prefix`). */
export const CENTRIFUGO_WEBSOCKET_PATH = '/connection/websocket';

export interface CentrifugoEndpointOptions extends Partial<CentrifugoLimits> {
  /** Channels: publish, history, recovery, live subscriptions. */
  channels: ChannelService;
  /** Presence: a channel's presence and join/leave are the room of the same name. */
  presence: PresenceService;
  /** The hooks every transport runs (authenticate when there is no token, authorize, onConnect, onSubscribe, onPublish, onRpc). @default none */
  extensions?: Extensions | undefined;
  /** The token keys (the `AUTH_JWT_*` settings) for Centrifugo connection and subscription JWTs; undefined: a token is refused (3500). */
  tokens?: JwtAuthOptions | undefined;
  /** Whether a browser page of this origin may connect (no Origin header: not a browser). @default every origin */
  allowOrigin?: ((origin: string | undefined) => boolean) | undefined;
  /** @default '/connection/websocket' */
  path?: string | undefined;
  /** The server version in connect replies. @default '0.0.0' */
  version?: string | undefined;
  logger?: Logger | undefined;
  /** The client's address for hooks (behind a trusted balancer: from `X-Forwarded-For`). @default the connection's */
  clientAddress?: ((req: IncomingMessage) => string | undefined) | undefined;
}

export interface CentrifugoEndpoint {
  readonly path: string;
  /** Open connections of this node. */
  readonly connections: ReadonlySet<CentrifugoConnection>;
  /**
   * Stops accepting, closes every connection with 3001 "shutdown" (they
   * reconnect elsewhere) and leaves their presence at once, or with
   * `{ grace: true }` hands it to the disconnect grace (a drain onto other
   * nodes). Idempotent.
   */
  close(opts?: { grace?: boolean }): Promise<void>;
}

function refuse(socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * Centrifugo's client protocol v2 (JSON) at `/connection/websocket` on an
 * existing HTTP server (beside Socket.IO and the HTTP routes): a codec over
 * the channels and presence core. The official clients (centrifuge-js 5.x)
 * connect unchanged. Claim the path in the server's `UpgradeGuard`.
 * @example
 * const endpoint = attachCentrifugo(httpServer, { channels: runtime.channels, presence: runtime.service, tokens: { secret } });
 * // later: await endpoint.close();
 */
export function attachCentrifugo(server: HttpServer, options: CentrifugoEndpointOptions): CentrifugoEndpoint {
  const path = options.path ?? CENTRIFUGO_WEBSOCKET_PATH;
  const logger = options.logger ?? silentLogger;
  const limits: CentrifugoLimits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof CentrifugoLimits>) {
    const v = options[key];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`${key} must be an integer >= 0 (got ${String(v)})`);
    limits[key] = v;
  }
  const connections = new Set<CentrifugoConnection>();
  let closing: Promise<void> | undefined;
  const ctx: EndpointContext = {
    channels: options.channels,
    presence: options.presence,
    extensions: options.extensions ?? new Extensions(),
    tokens: options.tokens && (options.tokens.secret || options.tokens.publicKey || options.tokens.jwksUrl) ? createCentrifugoTokenVerifier(options.tokens) : undefined,
    limits,
    version: options.version ?? '0.0.0',
    logger,
    problems: new LogSummary(logger, 'centrifugo endpoint'),
    closing: () => closing !== undefined,
  };
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxMessageBytes,
    perMessageDeflate: false,
    // centrifuge-js in JSON mode offers no subprotocol; custom wrappers offer centrifuge-json.
    handleProtocols: (offered) => (offered.has('centrifuge-json') ? 'centrifuge-json' : offered.has('centrifuge-protobuf') ? 'centrifuge-protobuf' : false),
  });

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const [p, query = ''] = (req.url ?? '/').split('?', 2) as [string, string?];
    if (p !== path) return;
    if (closing) return refuse(socket, '503 Service Unavailable');
    if (options.allowOrigin && !options.allowOrigin(req.headers.origin)) {
      ctx.problems.note('origin not allowed', { origin: req.headers.origin });
      return refuse(socket, '403 Forbidden');
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req, new URLSearchParams(query)));
  };

  const onConnection = (ws: WebSocket, req: IncomingMessage, query: URLSearchParams): void => {
    if (ws.protocol === 'centrifuge-protobuf' || query.get('format') === 'protobuf' || query.get('cf_protocol') === 'protobuf') {
      ws.close(DISCONNECTS.inappropriateProtocol.code, 'inappropriate protocol: only JSON is supported');
      return;
    }
    const conn = new CentrifugoConnection(ws, ctx, req.headers, options.clientAddress ? options.clientAddress(req) : req.socket.remoteAddress, (c) => connections.delete(c));
    connections.add(conn);
  };
  server.on('upgrade', onUpgrade);

  return {
    path,
    connections,
    close: (opts = {}) =>
      (closing ??= (async () => {
        server.off('upgrade', onUpgrade);
        const all = [...connections];
        const how = opts.grace ? 'disconnect' : 'shutdown';
        for (const c of all) c.close(DISCONNECTS.shutdown.code, DISCONNECTS.shutdown.reason, how);
        await Promise.all(all.map((c) => c.cleanup(how)));
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        ctx.problems.stop();
      })()),
  };
}
