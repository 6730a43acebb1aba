import { MalformedReplyError, type Script } from './script.js';

export interface FinishSlotInput {
  slot: number;
  /** The claim marker this reaper set. */
  claim: number;
  /** The slot index's earliest score after the pass (exact text), or undefined when the index is empty. */
  newMin: string | undefined;
}

/**
 * Releases a claim. If no writer touched the entry since the claim, it gets
 * the slot's new minimum (or is removed when the slot is empty); if a writer
 * lowered it meanwhile, the lower of the two wins.
 *
 * KEYS: hint. ARGV: slot claimScore newMin|''. Reply: 1.
 */
export const finishSlot: Script<FinishSlotInput, void> = {
  command: 'rmFinishSlot',
  numberOfKeys: 1,
  lua: /* lua */ `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then
  if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
elseif ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[1], 'LT', ARGV[3], ARGV[1])
end
return 1
`,
  args: (input, { keys }) => [keys.hint, input.slot, input.claim, input.newMin ?? ''],
  decode(reply) {
    if (reply !== 1) throw new MalformedReplyError('finishSlot', 'expected 1', reply);
  },
};
