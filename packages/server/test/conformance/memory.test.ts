import { expect, it } from 'vitest';
import { MemoryEngine, type ConnId, type RoomId, type UserId } from '../../src/index.js';
import { runEngineConformance } from './suite.js';

runEngineConformance({
  name: 'memory',
  async create() {
    const engine = new MemoryEngine();
    return {
      engine,
      // One process: another "node" is another service over the same engine.
      peer: async () => engine,
      isEmpty: async () => engine.roomCount === 0,
      cleanup: () => engine.close(),
    };
  },
});

it('memory: a resume with the current knownSeq builds no snapshot (issue 12)', async () => {
  const engine = new MemoryEngine();
  const t = { roomId: 'r' as RoomId, userId: 'ada' as UserId, now: 1_000, ttlMs: 1_000, lookbackMs: 2_000 };
  const a = await engine.join({ ...t, freshConnId: 'c1' as ConnId });
  expect(a.ok && a.snapshot?.seq).toBe(1);
  const up = await engine.join({ ...t, freshConnId: 'c2' as ConnId, resumeConnId: 'c1' as ConnId, knownSeq: 1 });
  expect(up).toEqual({ ok: true, connId: 'c1', epoch: 2, mode: 'resumed', upToDate: true, seq: 2 });
  await engine.close();
});
