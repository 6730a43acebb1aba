import { describe, expect, it } from 'vitest';
import { WriteWindow } from '../src/engines/redis/write-window.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('WriteWindow (the Redis status store spaces connection changes with it)', () => {
  it('the first caller goes at once; those within the window wait for its end and are let go in one turn; after a quiet spell one goes at once again', async () => {
    const w = new WriteWindow(30);
    const t0 = performance.now();
    expect(w.wait()).toBe(undefined);
    // Within the window: all wait for its end, and are let go in the same event-loop turn.
    const waits = [w.wait(), w.wait(), w.wait()];
    expect(waits.every((p) => p instanceof Promise)).toBe(true);
    let turnOver = false;
    void waits[0]!.then(() => setImmediate(() => (turnOver = true)));
    const released = await Promise.all(waits.map((p) => p!.then(() => ({ at: performance.now() - t0, turnOver }))));
    for (const r of released) expect(r.at).toBeGreaterThanOrEqual(25);
    expect(released.map((r) => r.turnOver)).toEqual([false, false, false]);
    // A quiet spell longer than the window: the next caller goes at once.
    await sleep(40);
    expect(w.wait()).toBe(undefined);
  });

  it('0 turns it off: every caller goes at once', () => {
    const w = new WriteWindow(0);
    for (let i = 0; i < 5; i++) expect(w.wait()).toBe(undefined);
  });
});
