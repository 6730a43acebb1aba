import { describe, expect, it } from 'vitest';
import { Extensions, PresenceError, type ActionContext, type ConnectContext, type Extension } from '../src/index.js';

const conn: ConnectContext = { transport: 'socket.io', token: 't', headers: {}, remoteAddress: '127.0.0.1' };
const act = (action: ActionContext['action'], extra: Partial<ActionContext> = {}): ActionContext => ({ transport: 'http', userId: 'ada', action, target: 'room-1', connection: undefined, ...extra });

async function codeOf(p: Promise<unknown>): Promise<[string, string] | undefined> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) return undefined;
  expect(err).toBeInstanceOf(PresenceError);
  return [(err as PresenceError).code, (err as PresenceError).message];
}

/** Hooks that append what ran to `log`. */
function recorder(name: string, log: string[], hooks: Partial<Extension> = {}): Extension {
  return {
    name,
    onSubscribe: async (c) => void log.push(`${name}:subscribe:${c.action}`),
    onPublish: async (c) => void log.push(`${name}:publish:${c.action}`),
    ...hooks,
  };
}

describe('extension hooks (every transport runs them)', () => {
  it('open mode: without an authenticate hook nobody is verified and no credentials are needed', async () => {
    const ext = new Extensions([{ name: 'audit', authorize: () => true }]);
    expect(ext.authenticates).toBe(false);
    expect(await ext.authenticate(conn)).toBeUndefined();
  });

  it('the first extension that verifies the credentials decides; when all decline, the connection is unauthorized', async () => {
    const calls: string[] = [];
    const decline: Extension = { name: 'other-issuer', authenticate: async () => void calls.push('decline') };
    const accept: Extension = { name: 'jwt', authenticate: async (c) => (calls.push('accept'), c.token === 't' ? { userId: 'ada', claims: {} } : undefined) };
    const never: Extension = { name: 'never', authenticate: async () => void calls.push('never') };
    const ext = new Extensions([decline, accept, never]);
    expect(ext.authenticates).toBe(true);
    expect(await ext.authenticate(conn)).toEqual({ userId: 'ada', claims: {} });
    expect(calls).toEqual(['decline', 'accept']);
    expect(await codeOf(ext.authenticate({ ...conn, token: 'bad' }))).toEqual(['unauthorized', 'a valid token is required']);
  });

  it('onConnect hooks run in order and one can refuse the connection', async () => {
    const log: string[] = [];
    const ext = new Extensions([
      { name: 'a', onConnect: async () => void log.push('a') },
      { name: 'b', onConnect: async (c) => { log.push('b'); if (c.userId === 'mallory') throw new PresenceError('forbidden', 'banned'); } },
    ]);
    expect(ext.hasConnectHooks).toBe(true);
    expect(new Extensions([{ name: 'x' }]).hasConnectHooks).toBe(false);
    await ext.connect({ ...conn, userId: 'ada' });
    expect(await codeOf(ext.connect({ ...conn, userId: 'mallory' }))).toEqual(['forbidden', 'banned']);
    expect(log).toEqual(['a', 'b', 'a', 'b']);
  });

  it('every authorize must allow; a refusal is forbidden with a message naming the action and target, and no action hook runs', async () => {
    const log: string[] = [];
    const deny = (what: ActionContext['action']): Extension => ({ name: `deny-${what}`, authorize: (c) => c.action !== what });
    const ext = new Extensions([recorder('first', log), ...(['join', 'message', 'subscribe', 'publish', 'rpc'] as const).map(deny)]);
    expect(await codeOf(ext.check(act('join')))).toEqual(['forbidden', "not allowed to join room 'room-1'"]);
    expect(await codeOf(ext.check(act('message', { event: 'chat:message' })))).toEqual(['forbidden', "not allowed to send 'chat:message' to room 'room-1'"]);
    expect(await codeOf(ext.check(act('subscribe', { target: 'news' })))).toEqual(['forbidden', "not allowed to subscribe to 'news'"]);
    expect(await codeOf(ext.check(act('publish', { target: 'news' })))).toEqual(['forbidden', "not allowed to publish to 'news'"]);
    expect(await codeOf(ext.rpc(act('rpc', { event: 'getUser' })))).toEqual(['forbidden', "not allowed to call 'getUser'"]);
    expect(log).toEqual([]);
    // Only `true` allows: a hook that returns another truthy value denies.
    const strict = new Extensions([{ name: 'truthy', authorize: () => 1 as unknown as boolean }]);
    expect((await codeOf(strict.check(act('join'))))?.[0]).toBe('forbidden');
  });

  it('after authorize, join and subscribe run onSubscribe, message and publish run onPublish, in extension order; rpc runs neither', async () => {
    const log: string[] = [];
    const ext = new Extensions([recorder('a', log), recorder('b', log, { authorize: () => true })]);
    for (const action of ['join', 'subscribe', 'message', 'publish', 'rpc'] as const) await ext.check(act(action));
    expect(log).toEqual(['a:subscribe:join', 'b:subscribe:join', 'a:subscribe:subscribe', 'b:subscribe:subscribe', 'a:publish:message', 'b:publish:message', 'a:publish:publish', 'b:publish:publish']);
  });

  it('rpc: the first onRpc that answers gives the result; undefined when no extension answers', async () => {
    const asked: string[] = [];
    const ext = new Extensions([
      { name: 'silent', onRpc: async () => void asked.push('silent') },
      { name: 'users', onRpc: async (c) => (asked.push('users'), c.event === 'getUser' ? { id: c.data } : undefined) },
      { name: 'late', onRpc: async () => (asked.push('late'), 'late answer') },
    ]);
    expect(await ext.rpc(act('rpc', { event: 'getUser', data: 7 }))).toEqual({ id: 7 });
    expect(asked).toEqual(['silent', 'users']);
    expect(await ext.rpc(act('rpc', { event: 'other' }))).toBe('late answer');
    expect(await new Extensions([{ name: 'none' }]).rpc(act('rpc', { event: 'x' }))).toBeUndefined();
  });
});
