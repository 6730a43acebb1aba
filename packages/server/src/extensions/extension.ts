import { PresenceError } from 'realtime-message-protocol';
import type { JWTPayload } from 'jose';

/** The transports that run the extension hooks. */
export type TransportName = 'socket.io' | 'centrifugo' | 'http';

/** Who a connection is, once its credentials were verified. */
export interface VerifiedToken {
  userId: string;
  /** Expiry in ms since the epoch, if the credentials have one; the connection is closed then. */
  expiresAt?: number | undefined;
  claims: JWTPayload;
}

/** A connection being opened, before any request of it runs. */
export interface ConnectContext {
  transport: TransportName;
  /** The credentials the client presented (Socket.IO `auth.token`, Centrifugo `token`). */
  token: string | undefined;
  /** Request headers of the handshake (never logged: they may carry credentials). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Client address as the transport saw it. */
  remoteAddress: string | undefined;
}

/** The actions a connection asks for, on every transport. */
export type Action = 'join' | 'message' | 'subscribe' | 'publish' | 'rpc' | 'status_read' | 'status_write';

export interface ActionContext {
  transport: TransportName;
  /** The user the connection acts as (the token's `sub` when auth is on; '' for a `status_read` of an open-mode socket, which has no user). */
  userId: string;
  action: Action;
  /** The room or channel; for `status_read` / `status_write`, the user whose status is watched or set. */
  target: string;
  /** Custom event or RPC method name, for `message` and `rpc`. */
  event?: string | undefined;
  /** The payload of a `message`, `publish` or `rpc`. */
  data?: unknown;
  /** The transport's own connection object (a Socket.IO `Socket`), for hooks that need it. */
  connection: unknown;
}

/**
 * A pluggable piece that every transport runs at the same points (the
 * centrifuge `OnConnecting` / `OnSubscribe` / `OnPublish` handlers, the
 * hocuspocus extension hooks). Every hook is optional.
 *
 * - `authenticate`: turns presented credentials into a user, or throws a
 *   `PresenceError('unauthorized')`. The first extension that returns a
 *   result decides; when no extension has the hook, the server is in open
 *   mode (clients assert their own user id).
 * - `authorize`: allow or deny one action; every extension that has the hook
 *   must allow.
 * - `onConnect`, `onSubscribe`, `onPublish`, `onRpc`: where HTTP callback
 *   proxies and webhooks plug in. They run after `authorize` and may refuse
 *   by throwing a `PresenceError`; `onRpc` may answer.
 */
export interface Extension {
  readonly name: string;
  authenticate?(ctx: ConnectContext): Promise<VerifiedToken | undefined>;
  authorize?(ctx: ActionContext): boolean | Promise<boolean>;
  onConnect?(ctx: ConnectContext & { userId: string | undefined }): Promise<void>;
  onSubscribe?(ctx: ActionContext): Promise<void>;
  onPublish?(ctx: ActionContext): Promise<void>;
  onRpc?(ctx: ActionContext): Promise<unknown>;
}

const DENIED: Record<Action, (ctx: ActionContext) => string> = {
  join: (c) => `not allowed to join room '${c.target}'`,
  message: (c) => `not allowed to send '${c.event ?? ''}' to room '${c.target}'`,
  subscribe: (c) => `not allowed to subscribe to '${c.target}'`,
  publish: (c) => `not allowed to publish to '${c.target}'`,
  rpc: (c) => `not allowed to call '${c.event ?? ''}'`,
  status_read: (c) => `not allowed to watch the status of '${c.target}'`,
  status_write: (c) => `not allowed to set the status of '${c.target}'`,
};

/** Runs the hooks of an ordered list of extensions; transports hold one of these. */
export class Extensions {
  private readonly list: readonly Extension[];

  constructor(list: readonly Extension[] = []) {
    this.list = list;
  }

  /** True when some extension verifies credentials: connections then need them. */
  get authenticates(): boolean {
    return this.list.some((e) => e.authenticate !== undefined);
  }

  /** True when some extension runs at connection time (`onConnect`). */
  get hasConnectHooks(): boolean {
    return this.list.some((e) => e.onConnect !== undefined);
  }

  /** Verifies credentials; undefined in open mode. Throws `unauthorized` when they are refused. */
  async authenticate(ctx: ConnectContext): Promise<VerifiedToken | undefined> {
    for (const e of this.list) {
      if (!e.authenticate) continue;
      const v = await e.authenticate(ctx);
      if (v) return v;
    }
    if (this.authenticates) throw new PresenceError('unauthorized', 'a valid token is required');
    return undefined;
  }

  /** Runs `onConnect` of every extension, in order. */
  async connect(ctx: ConnectContext & { userId: string | undefined }): Promise<void> {
    for (const e of this.list) if (e.onConnect) await e.onConnect(ctx);
  }

  /**
   * `authorize` of every extension (all must allow), then the action's own
   * hook (`onSubscribe` for join/subscribe, `onPublish` for message/publish).
   * Throws `forbidden` when refused.
   */
  async check(ctx: ActionContext): Promise<void> {
    for (const e of this.list) {
      if (e.authorize && (await e.authorize(ctx)) !== true) throw new PresenceError('forbidden', DENIED[ctx.action](ctx));
    }
    for (const e of this.list) {
      switch (ctx.action) {
        case 'join':
        case 'subscribe':
          if (e.onSubscribe) await e.onSubscribe(ctx);
          break;
        case 'message':
        case 'publish':
          if (e.onPublish) await e.onPublish(ctx);
          break;
        case 'rpc':
          break;
      }
    }
  }

  /** The first `onRpc` that answers; `undefined` when none does. */
  async rpc(ctx: ActionContext): Promise<unknown> {
    await this.check(ctx);
    for (const e of this.list) {
      if (!e.onRpc) continue;
      const out = await e.onRpc(ctx);
      if (out !== undefined) return out;
    }
    return undefined;
  }
}
