import { z } from 'zod';
import { hasLoneSurrogate } from './json.js';
import { FORBIDDEN_ID_CHARS, LIMITS } from './limits.js';

function idSchema<B extends string>(what: string) {
  return z
    .string({ error: `${what} must be a string` })
    .min(1, { error: `${what} must not be empty` })
    // Counted in UTF-16 code units (String#length), as documented: zod's max() counts code points.
    .refine((s) => s.length <= LIMITS.maxIdLength, { error: `${what} must be at most ${LIMITS.maxIdLength} UTF-16 code units` })
    .refine((s) => !FORBIDDEN_ID_CHARS.test(s), {
      error: `${what} must not contain control characters or '{' '}'`,
    })
    .refine((s) => !hasLoneSurrogate(s), { error: `${what} must be well-formed Unicode` })
    .brand<B>();
}

export const RoomIdSchema = idSchema<'RoomId'>('roomId');
export const UserIdSchema = idSchema<'UserId'>('userId');
export const ConnIdSchema = idSchema<'ConnId'>('connId');

export type RoomId = z.infer<typeof RoomIdSchema>;
export type UserId = z.infer<typeof UserIdSchema>;
export type ConnId = z.infer<typeof ConnIdSchema>;

/**
 * A positive safe integer (epochs, sequence numbers, timestamps in ms).
 * Above 2^53 JSON numbers stop being exact, so two different values could
 * compare equal.
 */
export function positiveIntSchema(what: string) {
  return z
    .number({ error: `${what} must be a number` })
    .int({ error: `${what} must be an integer` })
    .min(1, { error: `${what} must be at least 1` })
    .max(Number.MAX_SAFE_INTEGER, { error: `${what} is too large` });
}
