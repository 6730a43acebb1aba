import { expect } from 'vitest';
import { PresenceError } from '../../src/index.js';

/** Awaits `p` and checks that it rejected with a PresenceError of `code`. */
export async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected rejection with ${code}`).toBeInstanceOf(PresenceError);
  expect((err as PresenceError).code).toBe(code);
}
