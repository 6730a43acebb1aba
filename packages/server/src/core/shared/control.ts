/**
 * Node-to-node control (the server API's cluster-wide operations): the bus
 * contract an engine provides, the commands nodes exchange and what the
 * server API asks of the cluster. The Redis engine carries the bus on its
 * shared subscriber connection; the memory engine has none (one node).
 */

/** Unsubscribes; idempotent. */
export type Off = () => Promise<void>;

/**
 * A low-volume message bus between the nodes sharing one storage: node info
 * every few seconds, disconnect/unsubscribe commands, channel surveys. Not
 * ordered with anything else, at most once (a node that is not subscribed
 * when a message is sent never gets it).
 */
export interface ControlBus {
  /** Sends `message` to every node (`to` undefined, the sender included) or to the node whose uid is `to`. Resolves once the storage took it. */
  publish(message: string, to?: string): Promise<void>;
  /** Receives the messages sent to every node and those sent to `uid`; resolves once both are subscribed. */
  subscribe(uid: string, listener: (message: string) => void): Promise<Off>;
}

/** What `/api/info` shows of one node (Centrifugo's `NodeResult`, snake_case as on the wire). */
export interface NodeInfo {
  uid: string;
  name: string;
  version: string;
  num_clients: number;
  num_users: number;
  num_channels: number;
  num_subs: number;
  /** Seconds since the node started. */
  uptime: number;
}

/** `/api/disconnect`: the connections of `user` (only `client` / `session` when given), except `whitelist`, closed with `code`/`reason`. */
export interface DisconnectCommand {
  user: string;
  client?: string | undefined;
  session?: string | undefined;
  whitelist?: readonly string[] | undefined;
  code: number;
  reason: string;
}

/** `/api/unsubscribe`: ends the subscriptions of `user` (only `client` / `session` when given) to `channel`. */
export interface UnsubscribeCommand {
  user: string;
  channel: string;
  client?: string | undefined;
  session?: string | undefined;
}

/** The answer of a channels survey. */
export interface ChannelsSurvey {
  /** Channel → subscriptions on the nodes that answered. */
  channels: ReadonlyMap<string, number>;
  /** Names of the nodes that did not answer in time (left out). */
  missing: string[];
  /** True when more channels matched than one answer may hold (the busiest were kept). */
  truncated: boolean;
}

/** What the server API asks of the cluster (one node: everything is local). */
export interface ClusterOps {
  /** Every live node, this one first. */
  nodes(): NodeInfo[];
  /** Active channels (with subscribers) of every node, matching `pattern` when given. */
  channels(pattern: string | undefined): Promise<ChannelsSurvey>;
  /** Applies on this node, then on every other node (resolves once the command is sent). */
  disconnect(cmd: DisconnectCommand): Promise<void>;
  unsubscribe(cmd: UnsubscribeCommand): Promise<void>;
}

/** Thrown when too many channels surveys are in flight on a node (the server API answers 108 "not available"). */
export class SurveyBusyError extends Error {}

/** Longest channels `pattern`. */
export const MAX_PATTERN_LENGTH = 256;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** Why `pattern` is not a channels pattern, or undefined when it is. */
export function patternProblem(pattern: string): string | undefined {
  if (pattern.length > MAX_PATTERN_LENGTH) return `pattern must be at most ${MAX_PATTERN_LENGTH} characters`;
  if (CONTROL_CHARS.test(pattern)) return 'pattern must not contain control characters';
  if (/[{}]/.test(pattern)) return "pattern supports '*' (any characters) and '?' (one character) only; '{' and '}' never occur in channel names";
  return undefined;
}

/**
 * A matcher of a channels pattern: `*` any characters, `?` one character
 * (code point), everything else literal. Linear backtracking over one star at
 * a time, so a pattern of many stars costs O(pattern × name), never more.
 */
export function globMatcher(pattern: string): (name: string) => boolean {
  if (!/[*?]/.test(pattern)) return (name) => name === pattern;
  const p = Array.from(pattern);
  return (name) => {
    const s = Array.from(name);
    let i = 0;
    let j = 0;
    let star = -1;
    let mark = 0;
    while (i < s.length) {
      if (j < p.length && (p[j] === '?' || (p[j] !== '*' && p[j] === s[i]))) {
        i++;
        j++;
      } else if (j < p.length && p[j] === '*') {
        star = j++;
        mark = i;
      } else if (star >= 0) {
        j = star + 1;
        i = ++mark;
      } else return false;
    }
    while (j < p.length && p[j] === '*') j++;
    return j === p.length;
  };
}
