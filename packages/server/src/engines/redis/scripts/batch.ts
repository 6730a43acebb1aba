import { luaScript, type LuaFragment } from './lua.js';
import { MalformedReplyError, replyArray, type Script, type ScriptArg } from './script.js';

/** A script whose body can also run inside a batch: its helpers and body apart, and a fixed number of KEYS. */
export interface BatchableScript<I, R> extends Script<I, R> {
  readonly numberOfKeys: number;
  /** The helpers the body calls. */
  readonly uses: readonly LuaFragment[];
  /** The body as the single script runs it: reads its KEYS and ARGV, ends with a `return`. */
  readonly body: string;
}

/** Builds a batchable script from its parts: the helpers it calls, then its body. */
export function batchableScript<I, R>(parts: Omit<BatchableScript<I, R>, 'lua'>): BatchableScript<I, R> {
  return { ...parts, lua: luaScript(parts.uses, parts.body) };
}

/**
 * Several writes of one script in one call: the script's body run once per
 * write, in order, with that write's own KEYS and ARGV (after `perWrite`, Lua
 * run with the write's KEYS as `k`: room scripts re-point the room helpers'
 * keys there), and one reply per write. What it saves is per call: one
 * command to encode, send, look up, run and answer instead of one per write
 * (an EVALSHA costs Redis about 10 µs before its script does anything, and
 * the node a command's encoding and reply). A write that fails (an error
 * raised by a Redis command inside it, or one its body returns) is answered
 * with that error alone, as its own call would have been: the writes before
 * and after it still apply. On a Cluster every key of a call must be in one
 * slot, so only writes of one slot go together (the caller groups them).
 *
 * KEYS: each write's KEYS in turn. ARGV: per write, the count of its arguments, then them.
 */
export function batchOf<I, R>(command: string, one: BatchableScript<I, R>, perWrite = ''): Script<readonly I[], Array<R | Error>> {
  const n = one.numberOfKeys;
  const keyList = Array.from({ length: n }, (_, j) => `KEYS[i + ${j}]`).join(', ');
  return {
    command,
    numberOfKeys: null,
    lua: luaScript(
      one.uses,
      /* lua */ `
local function one(KEYS, ARGV)
${one.body.trim()}
end
local out, a = {}, 1
for i = 1, #KEYS, ${n} do
  local k = { ${keyList} }
  ${perWrite}
  local count = tonumber(ARGV[a])
  local ok, res = pcall(one, k, { unpack(ARGV, a + 1, a + count) })
  if not ok and type(res) ~= 'table' then res = { err = tostring(res) } end
  out[#out + 1] = res
  a = a + count + 1
end
return out
`,
    ),
    args(inputs, ctx) {
      const keys: ScriptArg[] = [inputs.length * n];
      const argv: ScriptArg[] = [];
      for (const input of inputs) {
        const single = one.args(input, ctx);
        for (let i = 0; i < n; i++) keys.push(single[i]!);
        argv.push(single.length - n);
        for (let i = n; i < single.length; i++) argv.push(single[i]!);
      }
      return keys.concat(argv);
    },
    decode(reply, inputs) {
      const replies = replyArray(command, reply);
      if (replies.length !== inputs.length) throw new MalformedReplyError(command, `${replies.length} replies for ${inputs.length} writes`, reply);
      return replies.map((r, i) => {
        if (r instanceof Error) return r;
        try {
          return one.decode(r, inputs[i]!);
        } catch (err) {
          return err instanceof Error ? err : new Error(String(err));
        }
      });
    },
  };
}
