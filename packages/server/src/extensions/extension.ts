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
  /** The transport's connection object, for hooks that need more (Centrifugo: the `CentrifugoConnection`, with its connect request in `connectRequest`). */
  connection?: unknown;
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
  /** The transport's own connection object (a Socket.IO `Socket`, a `CentrifugoConnection`), for hooks that need it. */
  connection: unknown;
  /** A subscription token the client presented with a `subscribe` (Centrifugo), if any. */
  token?: string | undefined;
}

/**
 * What an `onSubscribe` / `onPublish` hook may give back (the results of
 * Centrifugo's subscribe and publish proxies); later hooks' fields win.
 */
export interface ActionOutcome {
  /** publish: the data to publish instead of the client's; subscribe: the subscribe reply's `data`. */
  data?: unknown;
  /** subscribe: the subscriber's channel info (`chan_info`). */
  info?: unknown;
  /** subscribe: unix ms when the subscription expires. */
  expiresAt?: number | undefined;
  /** subscribe: Centrifugo's `override` switches (`presence`, `join_leave`, ... each `{ value }`). */
  override?: Record<string, { value: boolean } | undefined> | undefined;
  /** publish: deliver the publication without keeping it in history (Centrifugo's `skip_history`): it gets no offset (0) and positions do not move. */
  skipHistory?: boolean | undefined;
}

/** A server-side refresh of an expiring connection (`channel` undefined) or subscription. */
export interface RefreshContext {
  transport: TransportName;
  userId: string;
  /** The subscription's channel; undefined for the connection. */
  channel?: string | undefined;
  connection: unknown;
}

/** The answer of a server-side refresh. */
export interface RefreshOutcome {
  /** The connection (subscription) is over: close 3005 (unsubscribe 2501). */
  expired?: boolean | undefined;
  /** The new expiry in unix ms; undefined or past: expired. */
  expiresAt?: number | undefined;
  /** New `conn_info` (`chan_info` for a subscription). */
  info?: unknown;
  /** New connection meta. */
  meta?: unknown;
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
  /** The transports whose connections this extension's hooks run for. @default every transport */
  readonly transports?: readonly TransportName[];
  authenticate?(ctx: ConnectContext): Promise<VerifiedToken | undefined>;
  authorize?(ctx: ActionContext): boolean | Promise<boolean>;
  onConnect?(ctx: ConnectContext & { userId: string | undefined }): Promise<void>;
  onSubscribe?(ctx: ActionContext): Promise<ActionOutcome | void>;
  onPublish?(ctx: ActionContext): Promise<ActionOutcome | void>;
  onRpc?(ctx: ActionContext): Promise<unknown>;
  /**
   * True when this extension's `onSubscribe` / `onPublish` decides the
   * action in place of the namespace's permissions (Centrifugo's subscribe
   * and publish proxies): the transport then skips the `allow_*` checks.
   */
  decides?(ctx: ActionContext): boolean;
  /** True when `onRefresh` refreshes this connection (`channel` undefined) or the subscriptions of this channel on the server: clients are then not asked to refresh. */
  refreshes?(ctx: { transport: TransportName; channel?: string | undefined }): boolean;
  /** Server-side refresh of an expiring connection or subscription (Centrifugo's refresh and sub_refresh proxies); undefined: not this extension's. */
  onRefresh?(ctx: RefreshContext): Promise<RefreshOutcome | undefined>;
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

  /** The extensions that run for a transport. */
  private for(transport: TransportName): Extension[] {
    return this.list.filter((e) => e.transports === undefined || e.transports.includes(transport));
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
    const list = this.for(ctx.transport);
    for (const e of list) {
      if (!e.authenticate) continue;
      const v = await e.authenticate(ctx);
      if (v) return v;
    }
    // Credentials are needed only where some extension verifies them for this transport.
    if (list.some((e) => e.authenticate !== undefined)) throw new PresenceError('unauthorized', 'a valid token is required');
    return undefined;
  }

  /** Runs `onConnect` of every extension, in order. */
  async connect(ctx: ConnectContext & { userId: string | undefined }): Promise<void> {
    for (const e of this.for(ctx.transport)) if (e.onConnect) await e.onConnect(ctx);
  }

  /** True when some extension's hook decides this action in place of the namespace permissions (see {@link Extension.decides}). */
  decides(ctx: ActionContext): boolean {
    return this.for(ctx.transport).some((e) => e.decides?.(ctx) === true);
  }

  /** True when expiring connections (`channel` undefined) or this channel's subscriptions are refreshed on the server (see {@link Extension.refreshes}). */
  refreshesOnServer(transport: TransportName, channel?: string): boolean {
    return this.for(transport).some((e) => e.onRefresh !== undefined && e.refreshes?.({ transport, channel }) === true);
  }

  /** The first `onRefresh` that answers; undefined when none does. */
  async refresh(ctx: RefreshContext): Promise<RefreshOutcome | undefined> {
    for (const e of this.for(ctx.transport)) {
      if (!e.onRefresh || e.refreshes?.({ transport: ctx.transport, channel: ctx.channel }) !== true) continue;
      const out = await e.onRefresh(ctx);
      if (out !== undefined) return out;
    }
    return undefined;
  }

  /**
   * `authorize` of every extension (all must allow), then the action's own
   * hook (`onSubscribe` for join/subscribe, `onPublish` for message/publish).
   * Throws `forbidden` when refused; resolves with what the hooks gave back
   * (merged, later ones winning), undefined when none gave anything.
   */
  async check(ctx: ActionContext): Promise<ActionOutcome | undefined> {
    const list = this.for(ctx.transport);
    for (const e of list) {
      if (e.authorize && (await e.authorize(ctx)) !== true) throw new PresenceError('forbidden', DENIED[ctx.action](ctx));
    }
    let outcome: ActionOutcome | undefined;
    for (const e of list) {
      let out: ActionOutcome | void = undefined;
      switch (ctx.action) {
        case 'join':
        case 'subscribe':
          if (e.onSubscribe) out = await e.onSubscribe(ctx);
          break;
        case 'message':
        case 'publish':
          if (e.onPublish) out = await e.onPublish(ctx);
          break;
        default:
          break;
      }
      if (out) outcome = { ...outcome, ...out };
    }
    return outcome;
  }

  /** The first `onRpc` that answers; `undefined` when none does. */
  async rpc(ctx: ActionContext): Promise<unknown> {
    await this.check(ctx);
    for (const e of this.for(ctx.transport)) {
      if (!e.onRpc) continue;
      const out = await e.onRpc(ctx);
      if (out !== undefined) return out;
    }
    return undefined;
  }
}
