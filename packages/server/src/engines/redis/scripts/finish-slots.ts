import { MalformedReplyError, type Script, type ScriptArg } from './script.js';

export interface FinishSlotsInput {
  /** Whose hint: the presence reaper's, or the status sweeper's. @default 'reaper' */
  hint?: 'reaper' | 'status';
  /** The claim marker this reaper set. */
  claim: number;
  /** Each claimed slot with its index's earliest score after the visit (exact text), or undefined when the index is empty. */
  slots: ReadonlyArray<{ slot: number; newMin: string | undefined }>;
}

/**
 * Releases claims, many in one call. If no writer touched a slot's entry
 * since the claim, it gets the slot's new minimum (or is removed when the
 * slot is empty); if a writer lowered it meanwhile, or another reaper took
 * the claim over, the lower of the two wins.
 *
 * KEYS: hint. ARGV: claimScore [slot newMin|'']... Reply: 1.
 */
export const finishSlots: Script<FinishSlotsInput, void> = {
  command: 'rmFinishSlots',
  numberOfKeys: 1,
  lua: /* lua */ `
local claim = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) == claim then
    if ARGV[i + 1] == '' then redis.call('ZREM', KEYS[1], ARGV[i]) else redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i]) end
  elseif ARGV[i + 1] ~= '' then
    redis.call('ZADD', KEYS[1], 'LT', ARGV[i + 1], ARGV[i])
  end
end
return 1
`,
  args(input, { keys }) {
    const args: ScriptArg[] = [input.hint === 'status' ? keys.statusHint : keys.hint, input.claim];
    for (const s of input.slots) args.push(s.slot, s.newMin ?? '');
    return args;
  },
  decode(reply) {
    if (reply !== 1) throw new MalformedReplyError('finishSlots', 'expected 1', reply);
  },
};
