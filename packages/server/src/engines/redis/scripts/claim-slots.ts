import { MalformedReplyError, replyArray, type Script, type ScriptArg } from './script.js';

export interface ClaimSlotsInput {
  /** Whose hint: the presence reaper's, or the status sweeper's (the same claim scheme). @default 'reaper' */
  hint?: 'reaper' | 'status';
  /** The claim marker: CLAIM_BASE + now, above every real deadline. */
  claim: number;
  /** Each slot with its score in the hint as the reaper read it (exact text from ZRANGEBYSCORE WITHSCORES). */
  slots: ReadonlyArray<{ slot: number; observed: string }>;
}

/**
 * Claims due slots of the reaper hint, many in one call, each by
 * compare-and-set: only if its score is still the one the reaper read (no
 * other reaper claimed it, no writer lowered it). While claimed, the score is
 * above every real deadline, so a writer's `ZADD LT` during the pass always
 * registers.
 *
 * KEYS: hint. ARGV: claimScore [slot observedScore]... Reply: one 1 (claimed) or 0 per slot.
 */
export const claimSlots: Script<ClaimSlotsInput, boolean[]> = {
  command: 'rmClaimSlots',
  numberOfKeys: 1,
  lua: /* lua */ `
local out = {}
for i = 2, #ARGV, 2 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) == tonumber(ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`,
  args(input, { keys }) {
    const args: ScriptArg[] = [input.hint === 'status' ? keys.statusHint : keys.hint, input.claim];
    for (const s of input.slots) args.push(s.slot, s.observed);
    return args;
  },
  decode(reply, input) {
    const r = replyArray('claimSlots', reply);
    if (r.length !== input.slots.length || r.some((x) => x !== 0 && x !== 1)) throw new MalformedReplyError('claimSlots', 'expected one 0 or 1 per slot', reply);
    return r.map((x) => x === 1);
  },
};
