import { MalformedReplyError, type Script } from './script.js';

export interface ClaimSlotInput {
  slot: number;
  /** The slot's score in the hint as the reaper read it (exact text from ZRANGEBYSCORE WITHSCORES). */
  observed: string;
  /** The claim marker: CLAIM_BASE + now, above every real deadline. */
  claim: number;
}

/**
 * Claims a due slot of the reaper hint by compare-and-set: only if its score
 * is still the one the reaper read (no other reaper claimed it, no writer
 * lowered it). While claimed, the score is above every real deadline, so a
 * writer's `ZADD LT` during the pass always registers.
 *
 * KEYS: hint. ARGV: slot observedScore claimScore. Reply: 1 claimed, 0 not.
 */
export const claimSlot: Script<ClaimSlotInput, boolean> = {
  command: 'rmClaimSlot',
  numberOfKeys: 1,
  lua: /* lua */ `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
`,
  args: (input, { keys }) => [keys.hint, input.slot, input.observed, input.claim],
  decode(reply) {
    if (reply !== 0 && reply !== 1) throw new MalformedReplyError('claimSlot', 'expected 0 or 1', reply);
    return reply === 1;
  },
};
