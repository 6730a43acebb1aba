import { describe, expect, it } from 'vitest';
import { Hub, MemoryEngine, PresenceError, PresenceService, presenceSources, type TopicSource } from '../src/index.js';
import { RequestQueue } from '../src/transports/shared/request-queue.js';

/** A source that records its calls and lets the test decide when (and whether) a subscription succeeds. */
function recordingSource() {
  const calls: string[] = [];
  const deliver = new Map<string, (item: string) => void>();
  let failNext: Error | undefined;
  let gate: Promise<void> | undefined;
  const source: TopicSource<string> = {
    async subscribe(id, d) {
      calls.push(`sub:${id}`);
      if (gate) await gate;
      if (failNext) {
        const err = failNext;
        failNext = undefined;
        throw err;
      }
      deliver.set(id, d);
      return async () => {
        calls.push(`unsub:${id}`);
        deliver.delete(id);
      };
    },
  };
  return {
    source,
    calls,
    emit: (id: string, item: string) => deliver.get(id)?.(item),
    failNextWith: (err: Error) => (failNext = err),
    hold: () => {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

describe('Hub', () => {
  it('subscribes a topic at the source for the first listener only, and unsubscribes after the last', async () => {
    const src = recordingSource();
    const hub = new Hub<{ room: string }>({ room: src.source });
    const a: string[] = [];
    const b: string[] = [];
    const offA = await hub.subscribe('room', 'r1', (i) => a.push(i));
    const offB = await hub.subscribe('room', 'r1', (i) => b.push(i));
    expect(src.calls).toEqual(['sub:r1']);
    expect(hub.listeners('room', 'r1')).toBe(2);
    src.emit('r1', 'x');
    expect([a, b]).toEqual([['x'], ['x']]);
    await offA();
    await offA(); // idempotent: must not remove b's interest
    expect(src.calls).toEqual(['sub:r1']);
    src.emit('r1', 'y');
    expect([a, b]).toEqual([['x'], ['x', 'y']]);
    await offB();
    expect(src.calls).toEqual(['sub:r1', 'unsub:r1']);
    expect(hub.size()).toBe(0);
  });

  it('a failed source subscription rolls back: every waiting listener gets the error, nothing stays registered, the next one retries', async () => {
    const src = recordingSource();
    const hub = new Hub<{ room: string }>({ room: src.source });
    src.failNextWith(new Error('redis down'));
    const release = src.hold();
    const first = hub.subscribe('room', 'r1', () => {});
    const second = hub.subscribe('room', 'r1', () => {});
    release();
    await expect(first).rejects.toThrow('redis down');
    await expect(second).rejects.toThrow('redis down');
    expect(hub.size()).toBe(0);
    expect(src.calls).toEqual(['sub:r1']);
    const got: string[] = [];
    const off = await hub.subscribe('room', 'r1', (i) => got.push(i));
    expect(src.calls).toEqual(['sub:r1', 'sub:r1']);
    src.emit('r1', 'z');
    expect(got).toEqual(['z']);
    await off();
  });

  it('a new first listener waits until the previous unsubscribe finished, so the source never sees them overlap', async () => {
    const calls: string[] = [];
    let releaseUnsub!: () => void;
    const source: TopicSource<string> = {
      async subscribe(id) {
        calls.push(`sub:${id}`);
        return async () => {
          calls.push(`unsub-start:${id}`);
          await new Promise<void>((r) => (releaseUnsub = r));
          calls.push(`unsub-done:${id}`);
        };
      },
    };
    const hub = new Hub<{ room: string }>({ room: source });
    const off = await hub.subscribe('room', 'r1', () => {});
    const closing = off();
    const again = hub.subscribe('room', 'r1', () => {});
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toEqual(['sub:r1', 'unsub-start:r1']);
    releaseUnsub();
    await closing;
    await again;
    expect(calls).toEqual(['sub:r1', 'unsub-start:r1', 'unsub-done:r1', 'sub:r1']);
  });

  it('a listener that throws does not stop the others; topics of different kinds are separate', async () => {
    const rooms = recordingSource();
    const users = recordingSource();
    const errors: unknown[] = [];
    const delivered: number[] = [];
    const hub = new Hub<{ room: string; user: string }>({ room: rooms.source, user: users.source }, {
      onListenerError: (_k, _id, err) => errors.push(err),
      onDeliver: (_k, _item, n) => delivered.push(n),
    });
    const got: string[] = [];
    await hub.subscribe('room', 'same-id', () => {
      throw new Error('boom');
    });
    await hub.subscribe('room', 'same-id', (i) => got.push(i));
    await hub.subscribe('user', 'same-id', (i) => got.push(`user:${i}`));
    expect(rooms.calls).toEqual(['sub:same-id']);
    expect(users.calls).toEqual(['sub:same-id']);
    rooms.emit('same-id', 'a');
    users.emit('same-id', 'b');
    expect(got).toEqual(['a', 'user:b']);
    expect(errors).toHaveLength(1);
    expect(delivered).toEqual([2, 1]);
    expect(hub.size('room')).toBe(1);
    await hub.dispose();
    expect(rooms.calls).toEqual(['sub:same-id', 'unsub:same-id']);
    await expect(hub.subscribe('room', 'x', () => {})).rejects.toThrow('closed');
  });
});

describe('Hub lingering (lingerMs)', () => {
  it('keeps a topic subscribed for a while after its last listener: one that comes back reuses it; after the linger it is unsubscribed', async () => {
    const r = recordingSource();
    const hub = new Hub<{ room: string; chan: string }>({ room: r.source, chan: r.source }, { lingerMs: { room: 60 } });
    const got: string[] = [];
    const off1 = await hub.subscribe('room', 'a', (i) => got.push(`1:${i}`));
    await off1();
    // Lingering: no listener, still subscribed at the source; items reach nobody and are not counted as a topic.
    expect(r.calls).toEqual(['sub:a']);
    expect(hub.size('room')).toBe(0);
    r.emit('a', 'lost');
    const off2 = await hub.subscribe('room', 'a', (i) => got.push(`2:${i}`));
    expect(r.calls).toEqual(['sub:a']);
    r.emit('a', 'x');
    expect(got).toEqual(['2:x']);
    await off2();
    await new Promise((res) => setTimeout(res, 120));
    expect(r.calls).toEqual(['sub:a', 'unsub:a']);
    // A kind without lingerMs unsubscribes at once.
    const offC = await hub.subscribe('chan', 'c', () => undefined);
    await offC();
    expect(r.calls).toEqual(['sub:a', 'unsub:a', 'sub:c', 'unsub:c']);
    // After the linger ended, a new listener subscribes again.
    const off3 = await hub.subscribe('room', 'a', () => undefined);
    expect(r.calls.at(-1)).toBe('sub:a');
    await off3();
    await hub.dispose();
    // dispose() unsubscribes lingering topics too.
    expect(r.calls.at(-1)).toBe('unsub:a');
  });

  it('beyond maxLingering a topic without listeners is unsubscribed at once', async () => {
    const r = recordingSource();
    const hub = new Hub<{ room: string }>({ room: r.source }, { lingerMs: { room: 10_000 }, maxLingering: 1 });
    const [offA, offB] = [await hub.subscribe('room', 'a', () => undefined), await hub.subscribe('room', 'b', () => undefined)];
    await offA();
    await offB();
    expect(r.calls).toEqual(['sub:a', 'sub:b', 'unsub:b']);
    await hub.dispose();
    expect(r.calls).toEqual(['sub:a', 'sub:b', 'unsub:b', 'unsub:a']);
  });

  it('closeKinds ends every topic of those kinds, lingering ones included, and leaves the other kinds alone', async () => {
    const rooms = recordingSource();
    const chans = recordingSource();
    const hub = new Hub<{ room: string; chan: string }>({ room: rooms.source, chan: chans.source }, { lingerMs: { room: 10_000 } });
    const got: string[] = [];
    const offA = await hub.subscribe('room', 'a', (i) => got.push(`a:${i}`));
    const offB = await hub.subscribe('room', 'b', () => undefined);
    await offB(); // lingering
    await hub.subscribe('chan', 'c', (i) => got.push(`c:${i}`));
    await hub.closeKinds(['room']);
    expect(rooms.calls.sort()).toEqual(['sub:a', 'sub:b', 'unsub:a', 'unsub:b']);
    expect(hub.size('room')).toBe(0);
    rooms.emit('a', 'x');
    chans.emit('c', 'y');
    expect(got).toEqual(['c:y']);
    await offA(); // its own unsubscribe afterwards does nothing
    expect(rooms.calls).toHaveLength(4);
    // The hub stays open: a room listener subscribes again.
    await hub.subscribe('room', 'a', () => undefined);
    expect(rooms.calls.at(-1)).toBe('sub:a');
    await hub.dispose();
    expect(chans.calls).toEqual(['sub:c', 'unsub:c']);
  });

  it('a presence service on a shared hub ends its room subscriptions when it stops, and only those', async () => {
    const engine = new MemoryEngine();
    const other = recordingSource();
    const hub = new Hub({ ...presenceSources(engine), chan: other.source }, { lingerMs: { presence: 10_000 } });
    const svc = new PresenceService({ engine, hub });
    const got: unknown[] = [];
    await svc.subscribeFeed('doc-1', (item) => got.push(item));
    const off2 = await svc.subscribeFeed('doc-2', () => undefined);
    await off2(); // lingering
    await svc.subscribe(() => undefined);
    await hub.subscribe('chan', 'c', () => undefined);
    expect(hub.size()).toBe(3);
    await engine.publish('doc-1' as never, { roomId: 'doc-1', event: 'x', data: 0 } as never);
    expect(got).toHaveLength(1);
    got.length = 0;
    await svc.dispose();
    expect(hub.size()).toBe(1);
    expect(other.calls).toEqual(['sub:c']);
    await engine.publish('doc-1' as never, { roomId: 'doc-1', event: 'x', data: 1 } as never);
    expect(got).toEqual([]);
    await hub.dispose();
  });
});

describe('RequestQueue', () => {
  it('runs requests one at a time in arrival order, whatever their outcome', async () => {
    const q = new RequestQueue(10);
    const order: string[] = [];
    let release!: () => void;
    const first = q.push(async () => {
      order.push('first:start');
      await new Promise<void>((r) => (release = r));
      order.push('first:end');
      throw new Error('first failed');
    });
    const second = q.push(async () => {
      order.push('second');
      return 2;
    });
    expect(q.pending).toBe(2);
    await new Promise((r) => setTimeout(r, 5));
    expect(order).toEqual(['first:start']);
    release();
    await expect(first).rejects.toThrow('first failed');
    expect(await second).toBe(2);
    expect(order).toEqual(['first:start', 'first:end', 'second']);
    expect(q.pending).toBe(0);
  });

  it('refuses a request beyond the bound with rate_limited, without running it', async () => {
    const q = new RequestQueue(2);
    let release!: () => void;
    const blocker = new Promise<void>((r) => (release = r));
    let ran = 0;
    const a = q.push(() => blocker);
    const b = q.push(async () => void ran++);
    const c = q.push(async () => void ran++);
    await expect(c).rejects.toBeInstanceOf(PresenceError);
    await expect(c).rejects.toMatchObject({ code: 'rate_limited', message: 'more than 2 requests are waiting on this connection; wait for their answers' });
    // Built without a stack trace (cheap under a flood), and the process's stack depth is left as it was.
    const depth = Error.stackTraceLimit;
    const refused = (await c.catch((err: unknown) => err)) as Error;
    expect(refused.stack).not.toContain('request-queue');
    expect(Error.stackTraceLimit).toBe(depth);
    expect(new Error('x').stack).toContain('hub.test');
    release();
    await a;
    await b;
    await q.drain();
    expect(ran).toBe(1);
    expect(() => new RequestQueue(0)).toThrow(RangeError);
  });

  it('pushReleasing lets the next request start once the running one releases, still in arrival order and counted until settled', async () => {
    const q = new RequestQueue(3);
    const order: string[] = [];
    let finishFirst!: () => void;
    const first = q.pushReleasing(async (release) => {
      order.push('first:start');
      release();
      await new Promise<void>((r) => (finishFirst = r));
      order.push('first:end');
      return 1;
    });
    const second = q.pushReleasing(async () => {
      order.push('second:start');
      return 2;
    });
    // The second never calls release: the plain request after it starts once it settled.
    const third = q.push(async () => {
      order.push('third:start');
      return 3;
    });
    expect(await second).toBe(2);
    expect(await third).toBe(3);
    expect(order).toEqual(['first:start', 'second:start', 'third:start']);
    // The first is still running: it still counts against the bound.
    expect(q.pending).toBe(1);
    await expect(q.pushReleasing(async () => 4)).resolves.toBe(4);
    finishFirst();
    expect(await first).toBe(1);
    expect(order.at(-1)).toBe('first:end');
    await q.drain();
    expect(q.pending).toBe(0);
    // A releasing task that never calls release still hands on when it settles, also when it fails.
    await expect(q.pushReleasing(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(q.push(async () => 'next')).resolves.toBe('next');
  });
});
