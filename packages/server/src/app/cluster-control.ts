import { randomUUID } from 'node:crypto';
import { SurveyBusyError, globMatcher, type ChannelsSurvey, type ClusterOps, type ControlBus, type DisconnectCommand, type NodeInfo, type Off, type UnsubscribeCommand } from '../core/shared/control.js';
import { LogSummary } from '../core/shared/log-summary.js';
import { silentLogger, type Logger } from '../core/shared/logger.js';
import { disconnectCentrifugo, unsubscribeCentrifugo } from '../transports/centrifugo/admin.js';
import type { CentrifugoEndpoint } from '../transports/centrifugo/index.js';
import type { LocalNode } from './init-presence.js';

/** What one node does and knows locally, over every transport it serves. */
export interface LocalActions {
  /** Connections, distinct users, channels with subscribers and subscriptions on this node. */
  stats(): { numClients: number; numUsers: number; numChannels: number; numSubs: number };
  /** Live subscriptions on this node, by channel. */
  channels(): ReadonlyMap<string, number>;
  /** Returns how many connections were closed. */
  disconnect(cmd: DisconnectCommand): number;
  /** Returns how many subscriptions ended. */
  unsubscribe(cmd: UnsubscribeCommand): Promise<number>;
}

export interface ClusterControlOptions {
  /** The engine's control bus; undefined: this node is alone (memory engine), everything is local. */
  bus?: ControlBus | undefined;
  node: { uid: string; name: string; version: string; startedAt: number };
  local: LocalActions;
  logger?: Logger | undefined;
  /** How often this node publishes its info; a node silent for 2 intervals + 1 s is dropped. @default 3000 */
  infoIntervalMs?: number | undefined;
  /** How long a channels survey waits for the other nodes. @default 3000 */
  surveyTimeoutMs?: number | undefined;
  /** Most channels in one node's answer and in the aggregate (the busiest are kept). @default 10000 */
  maxChannels?: number | undefined;
  /** Most channels surveys in flight on this node; more are refused. @default 8 */
  maxSurveys?: number | undefined;
  /** @default Date.now */
  now?: (() => number) | undefined;
}

/** Most nodes remembered; info of more is ignored (and logged). */
const MAX_NODES = 1_000;

type Message =
  | { t: 'info'; from: string; node: NodeInfo; hello?: boolean }
  | { t: 'bye'; from: string }
  | ({ t: 'disconnect'; from: string } & DisconnectCommand)
  | ({ t: 'unsubscribe'; from: string } & UnsubscribeCommand)
  | { t: 'survey'; from: string; id: string; pattern?: string | undefined }
  | { t: 'answer'; from: string; id: string; channels: Array<[string, number]>; truncated: boolean };

const isStr = (v: unknown): v is string => typeof v === 'string';
const isOptStr = (v: unknown): boolean => v === undefined || typeof v === 'string';
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** A bus message, checked (another version or a foreign publisher must not crash a node), or undefined. */
function decode(raw: string): Message | undefined {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof m !== 'object' || m === null || !isStr(m['from'])) return undefined;
  switch (m['t']) {
    case 'info': {
      const n = m['node'] as Record<string, unknown> | undefined;
      if (typeof n !== 'object' || n === null || !isStr(n['uid']) || !isStr(n['name']) || !isStr(n['version'])) return undefined;
      if (!['num_clients', 'num_users', 'num_channels', 'num_subs', 'uptime'].every((k) => isCount(n[k]))) return undefined;
      return m as unknown as Message;
    }
    case 'bye':
      return m as unknown as Message;
    case 'disconnect':
      if (!isStr(m['user']) || !isOptStr(m['client']) || !isOptStr(m['session']) || !isCount(m['code']) || !isStr(m['reason'])) return undefined;
      if (m['whitelist'] !== undefined && !(Array.isArray(m['whitelist']) && m['whitelist'].every(isStr))) return undefined;
      return m as unknown as Message;
    case 'unsubscribe':
      return isStr(m['user']) && isStr(m['channel']) && isOptStr(m['client']) && isOptStr(m['session']) ? (m as unknown as Message) : undefined;
    case 'survey':
      return isStr(m['id']) && isOptStr(m['pattern']) ? (m as unknown as Message) : undefined;
    case 'answer':
      if (!isStr(m['id']) || !Array.isArray(m['channels'])) return undefined;
      if (!m['channels'].every((e) => Array.isArray(e) && isStr(e[0]) && isCount(e[1]))) return undefined;
      return m as unknown as Message;
    default:
      return undefined;
  }
}

interface Survey {
  expected: Map<string, string>;
  answered: Set<string>;
  totals: Map<string, number>;
  truncated: boolean;
  done: () => void;
}

/**
 * The server API's view of the whole cluster (Centrifugo's node control
 * messages, over the engine's {@link ControlBus}): every node publishes its
 * info every `infoIntervalMs` and forgets nodes silent for two intervals and
 * a second (a crashed node disappears within that bound; a stopped one says
 * goodbye); disconnect and unsubscribe run here and are sent to every node;
 * a channels survey asks every node and aggregates the answers that arrive
 * within `surveyTimeoutMs`, naming the nodes that did not answer. Nothing
 * here runs per message or per connection.
 */
export class ClusterControl implements ClusterOps {
  private readonly logger: Logger;
  private readonly problems: LogSummary;
  private readonly intervalMs: number;
  private readonly surveyTimeoutMs: number;
  private readonly maxChannels: number;
  private readonly maxSurveys: number;
  private readonly now: () => number;
  /** Other nodes by uid: their last info and when it arrived (this node's clock). */
  private readonly peers = new Map<string, { info: NodeInfo; seenAt: number }>();
  private readonly surveys = new Map<string, Survey>();
  private timer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private off: Off | undefined;
  private stopped = false;

  constructor(private readonly options: ClusterControlOptions) {
    this.logger = options.logger ?? silentLogger;
    this.problems = new LogSummary(this.logger, 'cluster control');
    this.intervalMs = options.infoIntervalMs ?? 3_000;
    this.surveyTimeoutMs = options.surveyTimeoutMs ?? 3_000;
    this.maxChannels = options.maxChannels ?? 10_000;
    this.maxSurveys = options.maxSurveys ?? 8;
    this.now = options.now ?? Date.now;
  }

  /** A node not heard from for this long is dropped. */
  get maxSilenceMs(): number {
    return 2 * this.intervalMs + 1_000;
  }

  /**
   * Subscribes to the bus and announces this node (asking the others for
   * their info); resolves once subscribed. A failed subscription (storage
   * unreachable) is logged and tried again every 2 s at most until it works
   * or stop() is called. Nothing to do without a bus.
   */
  start(): Promise<void> {
    const bus = this.options.bus;
    if (!bus || this.stopped) return Promise.resolve();
    return (this.starting ??= this.subscribe(bus));
  }

  private async subscribe(bus: ControlBus): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      let off: Off;
      try {
        off = await bus.subscribe(this.options.node.uid, (raw) => this.onMessage(raw));
      } catch (err) {
        this.problems.note('control bus subscription failed; trying again', { err: err instanceof Error ? err.message : String(err) });
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)).unref());
        continue;
      }
      if (this.stopped) {
        await off();
        return;
      }
      this.off = off;
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      this.timer.unref();
      this.send({ t: 'info', from: this.options.node.uid, node: this.self(), hello: true });
      return;
    }
  }

  /** Says goodbye (the other nodes drop this one at once), ends pending surveys with what they have, unsubscribes. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    for (const s of this.surveys.values()) s.done();
    const off = this.off;
    this.off = undefined;
    if (off && this.options.bus) {
      await Promise.race([this.options.bus.publish(JSON.stringify({ t: 'bye', from: this.options.node.uid })).catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())]);
      await off().catch(() => undefined);
    }
    this.problems.stop();
  }

  nodes(): NodeInfo[] {
    this.prune();
    const others = [...this.peers.values()].map((p) => p.info).sort((a, b) => a.name.localeCompare(b.name) || a.uid.localeCompare(b.uid));
    return [this.self(), ...others];
  }

  async channels(pattern: string | undefined): Promise<ChannelsSurvey> {
    const own = this.answer(pattern);
    const totals = new Map<string, number>(own.channels);
    const bus = this.options.bus;
    if (!bus || this.stopped) return { channels: totals, missing: [], truncated: own.truncated };
    if (this.surveys.size >= this.maxSurveys) throw new SurveyBusyError(`${this.surveys.size} channels surveys are in flight on this node; try again shortly`);
    this.prune();
    const id = randomUUID();
    const survey: Survey = { expected: new Map([...this.peers].map(([uid, p]) => [uid, p.info.name])), answered: new Set(), totals, truncated: own.truncated, done: () => {} };
    const finished = new Promise<void>((resolve) => {
      const timer = setTimeout(() => survey.done(), this.surveyTimeoutMs);
      survey.done = () => {
        clearTimeout(timer);
        this.surveys.delete(id);
        resolve();
      };
    });
    this.surveys.set(id, survey);
    if (survey.expected.size === 0) survey.done();
    else {
      bus.publish(JSON.stringify({ t: 'survey', from: this.options.node.uid, id, ...(pattern !== undefined ? { pattern } : {}) })).catch((err: unknown) => {
        this.problems.note('survey not sent', { err: err instanceof Error ? err.message : String(err) });
        survey.done();
      });
    }
    await finished;
    const missing = [...survey.expected].filter(([uid]) => !survey.answered.has(uid)).map(([, name]) => name);
    if (missing.length > 0) this.logger.warn({ missing, timeoutMs: this.surveyTimeoutMs }, `channels survey: ${missing.length} node(s) did not answer in time and are left out`);
    return { channels: this.bounded(survey.totals, survey), missing, truncated: survey.truncated };
  }

  async disconnect(cmd: DisconnectCommand): Promise<void> {
    this.options.local.disconnect(cmd);
    await this.broadcast({ t: 'disconnect', from: this.options.node.uid, ...cmd });
  }

  async unsubscribe(cmd: UnsubscribeCommand): Promise<void> {
    await this.options.local.unsubscribe(cmd);
    await this.broadcast({ t: 'unsubscribe', from: this.options.node.uid, ...cmd });
  }

  /** Sends a command to the other nodes; a failure is the caller's (the API answers 100: the command may not have reached them). */
  private async broadcast(m: Message): Promise<void> {
    if (this.options.bus && !this.stopped) await this.options.bus.publish(JSON.stringify(m));
  }

  /** Sends without waiting; a failure is logged (summarised). */
  private send(m: Message, to?: string): void {
    this.options.bus?.publish(JSON.stringify(m), to).catch((err: unknown) => this.problems.note(`${m.t} not sent`, { err: err instanceof Error ? err.message : String(err) }));
  }

  private self(): NodeInfo {
    const { node, local } = this.options;
    const s = local.stats();
    return {
      uid: node.uid,
      name: node.name,
      version: node.version,
      num_clients: s.numClients,
      num_users: s.numUsers,
      num_channels: s.numChannels,
      num_subs: s.numSubs,
      uptime: Math.max(0, Math.floor((this.now() - node.startedAt) / 1_000)),
    };
  }

  private tick(): void {
    this.prune();
    this.send({ t: 'info', from: this.options.node.uid, node: this.self() });
  }

  private prune(): void {
    const oldest = this.now() - this.maxSilenceMs;
    for (const [uid, p] of this.peers) {
      if (p.seenAt >= oldest) continue;
      this.peers.delete(uid);
      this.logger.warn({ node: p.info.name, uid, silentMs: this.now() - p.seenAt }, 'cluster: a node stopped sending its info and is left out of /api/info');
    }
  }

  /** This node's channels matching `pattern`: all of them, or the busiest `maxChannels`. */
  private answer(pattern: string | undefined): { channels: Array<[string, number]>; truncated: boolean } {
    const match = pattern === undefined ? undefined : globMatcher(pattern);
    const out: Array<[string, number]> = [];
    for (const [name, n] of this.options.local.channels()) if (n > 0 && (!match || match(name))) out.push([name, n]);
    if (out.length <= this.maxChannels) return { channels: out, truncated: false };
    out.sort((a, b) => b[1] - a[1]);
    return { channels: out.slice(0, this.maxChannels), truncated: true };
  }

  /** The aggregate, cut to the busiest `maxChannels`. */
  private bounded(totals: Map<string, number>, survey: Survey): Map<string, number> {
    if (totals.size <= this.maxChannels) return totals;
    survey.truncated = true;
    return new Map([...totals].sort((a, b) => b[1] - a[1]).slice(0, this.maxChannels));
  }

  private onMessage(raw: string): void {
    try {
      this.handle(raw);
    } catch (err) {
      this.problems.note('control message failed', { err: err instanceof Error ? err.message : String(err) });
    }
  }

  private handle(raw: string): void {
    const m = decode(raw);
    if (!m) {
      this.problems.note('unreadable control message', { bytes: raw.length });
      return;
    }
    const self = this.options.node.uid;
    if (m.from === self) return;
    switch (m.t) {
      case 'info':
        if (m.node.uid !== m.from) return;
        if (!this.peers.has(m.from)) {
          if (this.peers.size >= MAX_NODES) {
            this.problems.note('too many nodes', { max: MAX_NODES });
            return;
          }
          this.logger.info({ node: m.node.name, uid: m.from }, 'cluster: a node joined');
        }
        this.peers.set(m.from, { info: m.node, seenAt: this.now() });
        // A node that just started asks for everyone's info at once instead of waiting an interval.
        if (m.hello) this.send({ t: 'info', from: self, node: this.self() }, m.from);
        return;
      case 'bye':
        if (this.peers.delete(m.from)) this.logger.info({ uid: m.from }, 'cluster: a node stopped');
        return;
      case 'disconnect':
        this.options.local.disconnect(m);
        return;
      case 'unsubscribe':
        this.options.local.unsubscribe(m).catch((err: unknown) => this.problems.note('unsubscribe failed', { err: err instanceof Error ? err.message : String(err) }));
        return;
      case 'survey': {
        const a = this.answer(m.pattern);
        this.send({ t: 'answer', from: self, id: m.id, channels: a.channels, truncated: a.truncated }, m.from);
        return;
      }
      case 'answer': {
        const s = this.surveys.get(m.id);
        if (!s || s.answered.has(m.from)) return;
        s.answered.add(m.from);
        if (m.truncated) s.truncated = true;
        for (const [name, n] of m.channels) s.totals.set(name, (s.totals.get(name) ?? 0) + n);
        if ([...s.expected.keys()].every((uid) => s.answered.has(uid))) s.done();
        return;
      }
    }
  }
}

/** This node's actions over both transports: the Socket.IO sockets (`runtime.local`) and the Centrifugo endpoint's connections (once attached). */
export function localActions(socketIo: LocalNode, endpoint: () => CentrifugoEndpoint | undefined): LocalActions {
  return {
    stats() {
      const { numClients, users } = socketIo.clients();
      const centrifugo = endpoint();
      let cf = 0;
      let numUsers = users.size;
      const more = new Set<string>();
      for (const c of centrifugo?.connections ?? []) {
        if (c.state !== 'connected') continue;
        cf++;
        if (!users.has(c.user) && !more.has(c.user)) {
          more.add(c.user);
          numUsers++;
        }
      }
      const subs = socketIo.channels();
      let numSubs = 0;
      for (const n of subs.values()) numSubs += n;
      return { numClients: numClients + cf, numUsers, numChannels: subs.size, numSubs };
    },
    channels: () => socketIo.channels(),
    disconnect(cmd) {
      const centrifugo = endpoint();
      const n = socketIo.disconnectUser(cmd.user, { client: cmd.client ?? cmd.session, whitelist: cmd.whitelist });
      return n + (centrifugo ? disconnectCentrifugo(centrifugo.connections, cmd) : 0);
    },
    async unsubscribe(cmd) {
      const centrifugo = endpoint();
      const [a, b] = await Promise.all([socketIo.unsubscribeUser(cmd.user, cmd.channel, cmd.client ?? cmd.session), centrifugo ? unsubscribeCentrifugo(centrifugo.connections, cmd) : 0]);
      return a + b;
    },
  };
}
