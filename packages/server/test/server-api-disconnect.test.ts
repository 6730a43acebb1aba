import { describe, expect, it } from 'vitest';
import { connect, listen, request, waitFor } from 'realtime-message-testing';
import { SECRET, centrifugoServer, channel, client, token } from './centrifugo-fixtures.js';

const KEY = 'disconnect-test-key-0123456789abcdef';

describe('server API disconnect', () => {
  it('a kicked user leaves presence at once on both protocols, not after the disconnect grace', async () => {
    // A 60 s grace: a lost connection would stay a member that long; a kick must not.
    const { url, ws } = await centrifugoServer({ API_KEY: KEY, PRESENCE_DISCONNECT_GRACE_MS: '60000', PRESENCE_TTL_MS: '90000' }, { auth: true });
    const ch = channel();
    const eve = await connect(url, { auth: { token: await token({ sub: 'eve' }) } });
    const heard = listen(eve);
    expect((await request(eve, 'presence:join', { roomId: ch, userId: 'eve' })).ok).toBe(true);

    const mallorySocket = await connect(url, { auth: { token: await token({ sub: 'mallory' }) } });
    expect((await request(mallorySocket, 'presence:join', { roomId: ch, userId: 'mallory' })).ok).toBe(true);
    const malloryCentrifuge = client(ws, { token: await token({ sub: 'mallory' }) });
    const sub = malloryCentrifuge.newSubscription(ch);
    malloryCentrifuge.connect();
    sub.subscribe();
    await sub.ready(5_000);
    const joins = () => heard.events.filter((e) => e.type === 'join' && e.userId === 'mallory');
    await waitFor(() => (joins().length === 2 ? true : undefined), { what: "mallory's two joins" });

    const res = await fetch(`${url}/api/disconnect`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: JSON.stringify({ user: 'mallory' }) });
    expect(res.status).toBe(200);
    const leaves = () => heard.events.filter((e) => e.type === 'leave' && e.userId === 'mallory');
    await waitFor(() => (leaves().length === 2 ? true : undefined), { what: "mallory's two leaves, well before the 60 s grace", timeoutMs: 5_000 });
    expect(leaves().map((e) => (e.type === 'leave' ? e.reason : e.type))).toEqual(['disconnect', 'disconnect']);
    const presence = await (await fetch(`${url}/api/presence`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: JSON.stringify({ channel: ch }) })).json();
    expect(Object.values((presence as { result: { presence: Record<string, unknown> } }).result.presence).map((c) => (c as { user: string }).user)).toEqual(['eve']);
    malloryCentrifuge.disconnect();
  });
});
