import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { JsonValue } from 'realtime-message-protocol';
import type { WebSocket } from 'ws';
import type { RoomView } from './commands/room-view.js';
import type { ChannelSubscription } from '../../core/channels/subscription.js';
import type { ParsedTarget } from '../../core/presence/service.js';
import { CLIENT_ERRORS, CentrifugoDisconnect, DISCONNECTS, toClientFailure } from './codes.js';
import { PING, decodeFrame, errorJson, type Command, type ConnectRequest } from './codec.js';
import type { EndpointContext } from './context.js';
import { dispatch } from './commands/dispatch.js';
import { closeSub, heartbeatAll } from './commands/subscribe.js';

/** setTimeout's longest delay; later deadlines re-arm in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Runs `fn` at the unix-ms time `at`, however far away; returns a handle whose `clear()` cancels it. */
export function timerAt(at: number, fn: () => void): { clear(): void } {
  let t: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const ms = at - Date.now();
    t = setTimeout(() => (at - Date.now() > 0 ? arm() : fn()), Math.min(MAX_TIMER_MS, Math.max(0, ms)));
    t.unref();
  };
  arm();
  return { clear: () => clearTimeout(t) };
}

/** One channel subscription of a connection: the core subscription, its presence in the room of the same name, its options. */
export interface ChannelSub {
  channel: string;
  /** From the connection token's `channels`/`subs` (or a connect hook): insufficient state and expiry disconnect instead of unsubscribing. */
  serverSide: boolean;
  /** Subscribed with a subscription token (private channels then get the namespace's subscriber permissions). */
  token: boolean;
  positioned: boolean;
  recoverable: boolean;
  /** The subscriber gets join/leave pushes. */
  pushJoinLeave: boolean;
  /** `chan_info` of the subscriber (token or hook), shown in its publications. */
  chanInfo: JsonValue | undefined;
  core: ChannelSubscription | undefined;
  /** The connection's presence in the channel's room (anonymous ones as `ANONYMOUS_USER_ID`). */
  presence: ParsedTarget | undefined;
  offFeed: (() => Promise<void>) | undefined;
  /** With join/leave pushes: the room's connections, so that a leave push carries the ClientInfo its join did. */
  room: RoomView | undefined;
  /** Unix ms when the subscription expires (a token's exp / expire_at). */
  expiresAt: number | undefined;
  expiry: { clear(): void } | undefined;
  /** Join/leave pushes that arrived before the subscribe reply was written; undefined once live. */
  held: string[] | undefined;
  closed: boolean;
}

/**
 * One connection of the Centrifugo endpoint: decodes frames, runs their
 * commands one at a time in order (so a connect finishes before the
 * subscribes of the same frame), writes replies and pushes in batches, pings
 * and checks pongs, and closes with Centrifugo's codes. Per command logic is
 * in `commands/`.
 */
export class CentrifugoConnection {
  /** The connection id (`client` in Centrifugo's replies and ClientInfo). */
  readonly client = randomUUID();
  state: 'new' | 'connecting' | 'connected' | 'failed' | 'closed' = 'new';
  /** The user (`''`: anonymous) once connected. */
  user = '';
  /** `conn_info`: from the token's `info` (or a connect hook). */
  info: JsonValue | undefined;
  /** Server-only metadata from the token's `meta` (for hooks and proxies). */
  meta: JsonValue | undefined;
  /** The connect reply's `data` (from a connect hook; tokens carry none). */
  connectData: JsonValue | undefined;
  /** The client's connect `name`, `version` and emulated `headers`. */
  name: string | undefined;
  clientVersion: string | undefined;
  headers: Record<string, string> = {};
  /** The client's connect command (for connect hooks and the connect proxy: `data`, `subs`, `name`, `version`, `headers`). */
  connectRequest: ConnectRequest | undefined;
  /** Unix ms when the connection expires (its token), undefined: never. */
  expiresAt: number | undefined;
  readonly subs = new Map<string, ChannelSub>();
  private readonly queue: Command[] = [];
  private running = false;
  private paused = false;
  private out: string[] = [];
  private flushing = false;
  private readonly timers = new Map<'stale' | 'ping' | 'pong' | 'expiry' | 'heartbeat', { clear(): void }>();
  private pingOutstanding = false;

  constructor(
    readonly ws: WebSocket,
    readonly ctx: EndpointContext,
    /** Headers of the WebSocket upgrade request (for hooks; never logged). */
    readonly transportHeaders: IncomingHttpHeaders,
    readonly remoteAddress: string | undefined,
    private readonly onClosed: (conn: CentrifugoConnection) => void,
  ) {
    this.setTimer('stale', ctx.limits.staleCloseDelayMs, () => {
      if (this.state !== 'connected') this.close(DISCONNECTS.stale.code, DISCONNECTS.stale.reason);
    });
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => this.onFrame(data));
    ws.on('close', () => this.cleanup('disconnect'));
    ws.on('error', (err) => {
      ctx.problems.note('websocket error', { err: err.message });
      this.cleanup('disconnect');
    });
  }

  private setTimer(name: 'stale' | 'ping' | 'pong' | 'expiry' | 'heartbeat', ms: number, fn: () => void): void {
    this.timers.get(name)?.clear();
    const t = setTimeout(fn, ms);
    t.unref();
    this.timers.set(name, { clear: () => clearTimeout(t) });
  }

  private onFrame(data: Buffer | ArrayBuffer | Buffer[]): void {
    if (this.state === 'closed') return;
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    let commands: Command[];
    try {
      commands = decodeFrame(text);
    } catch (err) {
      this.fail(0, err);
      return;
    }
    for (const cmd of commands) {
      // A pong answers at once, whatever runs: a slow command must not make the server think the client is gone.
      if (cmd.id === 0 && cmd.method !== 'send') {
        if (!this.pong()) return;
        continue;
      }
      this.queue.push(cmd);
    }
    if (!this.paused && this.queue.length > this.ctx.limits.maxQueuedCommands) {
      // Back-pressure: stop reading until the queue drains.
      this.paused = true;
      this.ws.pause();
    }
    void this.pump();
  }

  /** A pong (a command without id that is not `send`): false when none was due, which closes with 3501. */
  private pong(): boolean {
    if (!this.pingOutstanding) {
      this.close(DISCONNECTS.badRequest.code, DISCONNECTS.badRequest.reason);
      return false;
    }
    this.pingOutstanding = false;
    this.timers.get('pong')?.clear();
    return true;
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && this.state !== 'closed') {
        const cmd = this.queue.shift()!;
        if (this.paused && this.queue.length <= this.ctx.limits.maxQueuedCommands / 4) {
          this.paused = false;
          this.ws.resume();
        }
        try {
          await dispatch(this, cmd);
        } catch (err) {
          this.fail(cmd.id, err);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Answers a failed command: an error reply, or a close for a disconnect. */
  fail(id: number, err: unknown): void {
    const f = toClientFailure(err);
    if (f instanceof CentrifugoDisconnect) {
      this.close(f.code, f.reason);
      return;
    }
    if (!f) this.ctx.problems.note('command failed', { err });
    if (id > 0) this.send(errorJson(id, f ? f.toReply() : CLIENT_ERRORS.internal));
  }

  /** Queues one message; messages queued in the same turn go out in one frame, in order. */
  send(message: string): void {
    if (this.state === 'closed') return;
    this.out.push(message);
    if (!this.flushing) {
      this.flushing = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushing = false;
    if (this.out.length === 0 || this.state === 'closed') return;
    // A client that does not read would hold everything sent to it: past the cap it is closed as slow.
    if (this.ws.bufferedAmount > this.ctx.limits.maxOutboundBytes) {
      this.out = [];
      this.ctx.problems.note('slow connection closed', { client: this.client, bytes: this.ws.bufferedAmount });
      this.close(DISCONNECTS.slow.code, DISCONNECTS.slow.reason);
      return;
    }
    const frame = this.out.join('\n');
    this.out = [];
    this.ws.send(frame);
  }

  /** Starts what a connected connection runs: pings, the expiry check and presence heartbeats. */
  connected(): void {
    this.state = 'connected';
    this.timers.get('stale')?.clear();
    const { pingIntervalMs } = this.ctx.limits;
    if (pingIntervalMs > 0) {
      // The first ping at a random point of the first interval, so that connections made together do not ping together.
      this.setTimer('ping', pingIntervalMs / 2 + Math.random() * (pingIntervalMs / 2), () => this.ping());
    }
    this.armExpiry();
    const hb = Math.min(10_000, Math.floor(this.ctx.presence.options.ttlMs / 3));
    const t = setInterval(() => void heartbeatAll(this), Math.max(hb, 100));
    t.unref();
    this.timers.set('heartbeat', { clear: () => clearInterval(t) });
  }

  private ping(): void {
    if (this.state !== 'connected') return;
    const { pingIntervalMs, pongTimeoutMs } = this.ctx.limits;
    this.pingOutstanding = true;
    this.send(PING);
    if (pongTimeoutMs > 0) {
      this.setTimer('pong', pongTimeoutMs, () => {
        if (this.pingOutstanding) this.close(DISCONNECTS.noPong.code, DISCONNECTS.noPong.reason);
      });
    }
    this.setTimer('ping', pingIntervalMs, () => this.ping());
  }

  /**
   * (Re)arms the connection's expiry: closed with 3005 when not refreshed
   * within the expired close delay; or, when an extension refreshes
   * connections on the server (Centrifugo's refresh proxy), refreshed by it
   * at the expiry.
   */
  armExpiry(): void {
    this.timers.get('expiry')?.clear();
    this.timers.delete('expiry');
    const at = this.expiresAt;
    if (at === undefined) return;
    if (this.ctx.extensions.refreshesOnServer('centrifugo')) {
      this.timers.set('expiry', timerAt(at, () => void this.refreshOnServer()));
      return;
    }
    this.timers.set(
      'expiry',
      timerAt(at + this.ctx.limits.expiredCloseDelayMs, () => {
        if (this.expiresAt !== undefined && this.expiresAt <= Date.now()) this.close(DISCONNECTS.connectionExpired.code, DISCONNECTS.connectionExpired.reason);
      }),
    );
  }

  /** The server-side refresh at expiry: expired (or no new expiry in the future) → 3005; otherwise the new expiry and info. */
  private async refreshOnServer(): Promise<void> {
    if (this.state !== 'connected') return;
    try {
      const out = await this.ctx.extensions.refresh({ transport: 'centrifugo', userId: this.user, connection: this });
      if (this.state !== 'connected') return;
      if (!out || out.expired || out.expiresAt === undefined || out.expiresAt <= Date.now()) {
        this.close(DISCONNECTS.connectionExpired.code, DISCONNECTS.connectionExpired.reason);
        return;
      }
      this.expiresAt = out.expiresAt;
      if (out.info !== undefined) this.info = out.info as JsonValue;
      if (out.meta !== undefined) this.meta = out.meta as JsonValue;
      this.armExpiry();
    } catch (err) {
      const f = toClientFailure(err);
      if (f instanceof CentrifugoDisconnect) this.close(f.code, f.reason);
      else {
        this.ctx.problems.note('connection refresh failed', { err });
        this.close(DISCONNECTS.internal.code, DISCONNECTS.internal.reason);
      }
    }
  }

  /**
   * Closes with a Centrifugo disconnect code; what was queued before goes
   * out first (an error reply before its close). `shutdown`: the server is
   * stopping, so presence is left at once instead of after the grace.
   */
  close(code: number, reason: string, how: 'disconnect' | 'shutdown' = 'disconnect'): void {
    if (this.state === 'closed') return;
    if (this.out.length > 0 && this.ws.readyState === this.ws.OPEN) {
      this.ws.send(this.out.join('\n'));
      this.out = [];
    }
    // Hooks choose codes: one the WebSocket layer refuses (below 3000, above 4999) becomes 3004 rather than an exception.
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(code >= 3000 && code <= 4999 ? code : DISCONNECTS.internal.code, reason);
    void this.cleanup(how);
  }

  /** Ends everything the connection holds, once: timers, subscriptions, presence (with the disconnect grace). */
  private cleanupDone: Promise<void> | undefined;
  cleanup(how: 'disconnect' | 'shutdown'): Promise<void> {
    return (this.cleanupDone ??= (async () => {
      this.state = 'closed';
      this.queue.length = 0;
      this.out = [];
      for (const t of this.timers.values()) t.clear();
      this.timers.clear();
      const subs = [...this.subs.values()];
      this.subs.clear();
      await Promise.all(subs.map((s) => closeSub(this, s, how)));
      this.onClosed(this);
    })());
  }
}
