import type { KeySpace } from '../keys.js';
import type { RedisClient } from '../backend.js';

/** One KEYS or ARGV entry as ioredis sends it. */
export type ScriptArg = string | number;

/** What every script's argument builder may use besides its input: where keys live and how long they are kept. */
export interface ScriptContext {
  readonly keys: KeySpace;
  /** Extra life of room keys beyond TTL + lookback (see `RedisEngineOptions.keySlackMs`). */
  readonly keySlackMs: number;
}

/**
 * One Lua script and everything needed to call it: its body, how many of its
 * arguments are KEYS, how an input becomes KEYS + ARGV, and how its reply is
 * decoded. Keeping the four together means a change of the script's calling
 * convention is made in one file.
 */
export interface Script<I, R> {
  /** Command name on the client (`defineCommand`); unique among the scripts of a client. */
  readonly command: string;
  readonly lua: string;
  /** The first `numberOfKeys` entries of `args(...)` are KEYS, the rest ARGV; `null`: a variable count, given by `args(...)`'s first entry. */
  readonly numberOfKeys: number | null;
  args(input: I, ctx: ScriptContext): ScriptArg[];
  /** Turns the raw reply into a typed value; throws a {@link MalformedReplyError} on anything the script cannot return. */
  decode(reply: unknown, input: I): R;
}

export type InputOf<S> = S extends Script<infer I, unknown> ? I : never;
export type ReplyOf<S> = S extends Script<never, infer R> ? R : never;

/** A reply that does not match what the script returns: a script and its decoder out of step, or a wrong server. */
export class MalformedReplyError extends Error {
  override readonly name = 'MalformedReplyError';
  constructor(script: string, detail: string, reply: unknown) {
    super(`redis script ${script} returned a malformed reply (${detail}): ${preview(reply)}; the Lua body and its decode() are out of step`);
  }
}

function preview(reply: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(reply) ?? String(reply);
  } catch {
    text = String(reply);
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

// -- reply checks: each returns the narrowed value or throws ----------------

export function replyArray(script: string, reply: unknown, what = 'reply'): unknown[] {
  if (!Array.isArray(reply)) throw new MalformedReplyError(script, `${what} is not an array`, reply);
  return reply;
}

export function replyInt(script: string, value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new MalformedReplyError(script, `${what} is not an integer`, value);
  return value;
}

export function replyString(script: string, value: unknown, what: string): string {
  if (typeof value !== 'string') throw new MalformedReplyError(script, `${what} is not a string`, value);
  return value;
}

/** A number sent as a string (Lua's `%.0f`), or `''` for none. */
export function replyOptionalNumber(script: string, value: unknown, what: string): number | undefined {
  if (value === '') return undefined;
  const n = typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isFinite(n)) throw new MalformedReplyError(script, `${what} is neither a number nor ''`, value);
  return n;
}

// -- registration -----------------------------------------------------------

type ScriptMap = Record<string, Script<never, unknown>>;
type ScriptFn = (...args: ScriptArg[]) => Promise<unknown>;

/**
 * A set of scripts registered on one client. Scripts are defined with ioredis
 * `defineCommand`, which sends EVALSHA and falls back to EVAL on `NOSCRIPT`,
 * so a Redis restart or `SCRIPT FLUSH` is transparent. A client shared by
 * several engines gets each command defined once.
 *
 * @example
 * const scripts = new Scripts(redis, { heartbeat }, { keys, keySlackMs: 60_000 });
 * const reply = await scripts.run('heartbeat', cmd); // typed input and reply
 */
export class Scripts<S extends ScriptMap> {
  private readonly fns: { [K in keyof S]: ScriptFn };

  constructor(
    private readonly client: RedisClient,
    private readonly scripts: S,
    private readonly ctx: ScriptContext,
  ) {
    // ioredis adds defined commands as methods at run time; this is the one place that sees them untyped.
    const methods = client as unknown as Record<string, ScriptFn | undefined>;
    const fns = {} as { [K in keyof S]: ScriptFn };
    for (const name of Object.keys(scripts) as Array<keyof S & string>) {
      const s = scripts[name]!;
      if (typeof methods[s.command] !== 'function') client.defineCommand(s.command, s.numberOfKeys === null ? { lua: s.lua } : { numberOfKeys: s.numberOfKeys, lua: s.lua });
      fns[name] = methods[s.command]!;
    }
    this.fns = fns;
  }

  /** Runs one script: builds KEYS + ARGV from `input`, sends it, decodes the reply. One round trip. */
  run<K extends keyof S & string>(name: K, input: InputOf<S[K]>): Promise<ReplyOf<S[K]>> {
    const s = this.scripts[name] as unknown as Script<InputOf<S[K]>, ReplyOf<S[K]>>;
    let sent: Promise<unknown>;
    try {
      sent = this.fns[name].apply(this.client, s.args(input, this.ctx));
    } catch (err) {
      return Promise.reject(err);
    }
    return sent.then((reply) => s.decode(reply, input));
  }
}

/** How long room keys live after a write: TTL + lookback + slack, so keys outlive every deadline they hold. */
export function keepMs(t: { ttlMs: number; lookbackMs: number }, ctx: ScriptContext): number {
  return t.ttlMs + t.lookbackMs + ctx.keySlackMs;
}
