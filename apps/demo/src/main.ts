import { RealtimeClient, type Member, type PresenceRoom, type PresenceEvent, type StatePatch } from 'realtime-message-sdk/browser';
import { mountChannel } from './channel.js';
import { mountPeople } from './people.js';
import './style.css';

// Everything users type is rendered with textContent, never as HTML.
const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const initials = (id: string): string =>
  id
    .split(/[\s._@-]+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((p) => p[0]!.toUpperCase())
    .join('') || '?';

function hue(id: string): number {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

const params = new URLSearchParams(location.search);
$<HTMLInputElement>('server-url').value = params.get('server') ?? (window as unknown as { RM_SERVER?: string }).RM_SERVER ?? location.origin;
$<HTMLInputElement>('user').value = params.get('user') ?? `user-${Math.random().toString(36).slice(2, 6)}`;
if (params.get('room')) $<HTMLInputElement>('room').value = params.get('room')!;

let client: RealtimeClient | undefined;
let room: PresenceRoom | undefined;
const people = mountPeople((msg) => showError(msg));
const channel = mountChannel((msg) => showError(msg));

function setBadge(id: string, state: string, reason?: string): void {
  const b = $(id);
  b.textContent = state;
  b.dataset.state = state;
  b.title = reason ? `because: ${reason}` : '';
}

function showError(msg: string): void {
  $('error').textContent = msg;
}

/**
 * What the controls allow: the form while no client exists; Leave (also to
 * cancel a connection attempt) while one does; everything that acts in the
 * room (state, patch, chat, simulated members) only while the room is joined.
 */
function renderControls(): void {
  const busy = client !== undefined;
  const joined = room?.state === 'joined';
  $<HTMLButtonElement>('join').disabled = busy;
  $<HTMLButtonElement>('leave').disabled = !busy;
  for (const id of ['server-url', 'token', 'room', 'user']) $<HTMLInputElement>(id).disabled = busy;
  $<HTMLFieldSetElement>('toggles').disabled = !joined;
  $<HTMLButtonElement>('apply').disabled = !joined;
  $<HTMLInputElement>('chat-text').disabled = !joined;
  $<HTMLButtonElement>('send').disabled = !joined;
  $<HTMLButtonElement>('add-sim').disabled = !joined;
}

/** A connection error in words that say what to do. */
function connectionAdvice(url: string, code: string, message: string): string {
  switch (code) {
    case 'unauthorized':
      return `the server at ${url} refused the connection (${message}): check the Token field (a JWT this server accepts), then press Join again.`;
    case 'forbidden':
      return `the server at ${url} refused the connection (${message}): is this page's origin in the server's ALLOWED_ORIGINS?`;
    default:
      return `cannot reach ${url} (${message}): is the server running? Check the URL, then press Join again.`;
  }
}

function renderFacts(): void {
  $('conn-id').textContent = room?.connId ?? '–';
  $('epoch').textContent = room?.epoch ? String(room.epoch) : '–';
  $('seq').textContent = room ? String(room.seq) : '–';
  $('own-state').textContent = JSON.stringify(room?.ownState ?? {}, null, 2);
}

function renderMembers(members: Member[]): void {
  const list = $('members');
  list.replaceChildren();
  $('member-count').textContent = String(members.length);
  for (const m of members) {
    const li = el('li', { class: 'member', 'data-user': m.userId });
    const avatar = el('span', { class: 'avatar', 'aria-hidden': 'true', style: `background:hsl(${hue(m.userId)} 55% 45%)` }, initials(m.userId));
    const mine = m.connections.some((c) => c.connId === room?.connId);
    const reconnecting = mine && room?.state === 'rejoining';
    const dot = el('span', { class: `dot ${reconnecting ? 'reconnecting' : 'online'}`, title: reconnecting ? 'reconnecting' : 'online' });
    const name = el('span', { class: 'name' }, m.userId + (mine ? ' (you)' : ''));
    const head = el('div', { class: 'member-head' });
    head.append(avatar, dot, name);
    const conns = el('ul', { class: 'conns' });
    for (const c of m.connections) {
      const item = el('li', { class: 'conn' });
      const tags: string[] = [];
      if (c.state.typing === true) tags.push('typing…');
      if (c.state.mic === false) tags.push('muted');
      else if (c.state.mic === true) tags.push('mic');
      if (c.state.away === true) tags.push('away');
      item.append(el('code', {}, c.connId.slice(0, 8)));
      for (const t of tags) item.append(el('span', { class: `tag tag-${t.replace(/\W/g, '')}` }, t));
      const rest = Object.fromEntries(Object.entries(c.state).filter(([k]) => !['typing', 'mic', 'away'].includes(k)));
      if (Object.keys(rest).length) item.append(el('span', { class: 'extra' }, JSON.stringify(rest)));
      conns.append(item);
    }
    li.append(head, conns);
    list.append(li);
  }
}

interface LogRow {
  ts: number;
  seq: number;
  type: string;
  user: string;
  connId: string;
  epoch: string;
  detail: string;
}

function logRow(r: LogRow): void {
  const row = el('tr', { class: `ev ev-${r.type}` });
  for (const cell of [new Date(r.ts).toLocaleTimeString(), String(r.seq), r.type, r.user, r.connId.slice(0, 8), r.epoch, r.detail]) row.append(el('td', {}, cell));
  const body = $('log');
  body.prepend(row);
  while (body.children.length > 200) body.lastElementChild!.remove();
}

function log(e: PresenceEvent): void {
  const detail = e.type === 'leave' ? `reason: ${e.reason}` : JSON.stringify(e.state);
  logRow({ ts: e.ts, seq: e.seq, type: e.type, user: e.userId, connId: e.connId, epoch: String(e.epoch), detail });
}

function addChat(user: string, text: string, mine = false): void {
  const li = el('li', { class: mine ? 'mine' : '' });
  li.append(el('strong', {}, `${user}: `), document.createTextNode(text));
  const chat = $('chat');
  chat.append(li);
  while (chat.children.length > 100) chat.firstElementChild!.remove();
  chat.scrollTop = chat.scrollHeight;
}

async function join(): Promise<void> {
  showError('');
  const url = $<HTMLInputElement>('server-url').value.trim();
  const token = $<HTMLInputElement>('token').value.trim();
  const roomId = $<HTMLInputElement>('room').value.trim();
  const userId = $<HTMLInputElement>('user').value.trim();
  // Called before every connection attempt; during the channel panel's simulated outage it waits, so the page stays offline.
  const c = new RealtimeClient({ url, userId, token: () => channel.outage().then(() => token || undefined) });
  client = c;
  let connectedOnce = false;
  let connectionError = false;
  c.on('state', ({ newState, reason }) => {
    if (client !== c) return;
    setBadge('conn-state', newState, reason);
    if (newState === 'connected') {
      connectedOnce = true;
      // The connection is back: a "lost the connection" message no longer applies.
      if (connectionError) showError('');
      connectionError = false;
    }
    if (newState === 'reconnecting' && reason === 'disconnect') {
      connectionError = true;
      showError(`lost the connection to ${url}; reconnecting… (is the server still running?)`);
    }
    if (room) renderMembers(room.members());
    renderControls();
  });
  c.on('error', (err) => {
    if (client !== c) return;
    if (connectedOnce) {
      // Reconnecting after a loss: the SDK keeps trying and the rooms resume.
      connectionError = true;
      showError(err.code === 'disconnected' || err.code === 'timeout' ? `lost the connection to ${url}; reconnecting… (is the server still running?)` : `${err.code}: ${err.message}`);
      return;
    }
    // The first connection failed: stop trying, say what to check, and give the form back.
    connectionError = true;
    showError(connectionAdvice(url, err.code, err.message));
    void stop();
  });
  room = c.createPresenceRoom(roomId, {
    userId,
    state: { typing: false, mic: $<HTMLInputElement>('t-mic').checked, away: false },
  });
  const ch = room;
  const refresh = (): void => {
    renderMembers(ch.members());
    renderFacts();
  };
  ch.on('state', ({ newState, oldState, reason }) => {
    setBadge('room-state', newState, reason);
    if (newState === 'joined' && ch.connId) {
      // The own join: the snapshot already reflects it, so no event of it is applied; log it here.
      logRow({ ts: Date.now(), seq: ch.seq, type: oldState === 'rejoining' ? 'rejoin' : 'join', user: `${userId} (you)`, connId: ch.connId, epoch: String(ch.epoch), detail: JSON.stringify(ch.ownState) });
    }
    refresh();
    renderControls();
  });
  ch.on('sync', (members) => {
    const names = members.map((m) => m.userId).join(', ');
    logRow({ ts: Date.now(), seq: ch.seq, type: 'snapshot', user: '–', connId: '', epoch: '', detail: `${members.length} member${members.length === 1 ? '' : 's'}: ${names}` });
    refresh();
  });
  ch.on('join', (e) => (log(e), refresh()));
  ch.on('update', (e) => (log(e), refresh()));
  ch.on('leave', (e) => (log(e), refresh()));
  ch.on('error', (err) => showError(`${err.code}: ${err.message}`));
  ch.on('chat:message', (data, meta) => addChat(meta.userId ?? 'server', typeof data === 'object' && data && 'text' in data ? String((data as { text: unknown }).text) : JSON.stringify(data)));
  renderControls();
  try {
    await c.connect();
    await ch.join();
    refresh();
    channel.attach(c);
    // Status is a second capability: the room works even where it is turned off.
    await people.attach(c, userId).catch((err: Error & { code?: string }) => showError(`status: ${err.code ?? 'error'}: ${err.message}`));
  } catch (err) {
    if (client !== c) return; // stopped meanwhile (Leave, or a connection error that says more)
    showError(err instanceof Error ? err.message : String(err));
    await stop('idle');
  }
}

/** Shuts the client down and gives the form back. */
async function stop(roomState: 'idle' | 'left' = 'idle'): Promise<void> {
  const c = client;
  client = room = undefined;
  people.detach();
  channel.detach();
  renderControls();
  await c?.shutdown();
  setBadge('conn-state', 'disconnected');
  setBadge('room-state', roomState);
  renderMembers([]);
  renderFacts();
}

async function leave(): Promise<void> {
  await stop('left');
}

$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void join();
});
$('leave').addEventListener('click', () => void leave());

for (const key of ['typing', 'mic', 'away'] as const) {
  $<HTMLInputElement>(`t-${key}`).addEventListener('change', (e) => {
    void room?.updateState({ [key]: (e.target as HTMLInputElement).checked }).then(renderFacts, (err: Error) => showError(err.message));
  });
}

$('patch-form').addEventListener('submit', (e) => {
  e.preventDefault();
  let patch: StatePatch;
  try {
    const parsed: unknown = JSON.parse($<HTMLTextAreaElement>('patch').value);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the patch must be a JSON object');
    patch = parsed as StatePatch;
  } catch (err) {
    showError(`invalid JSON: ${(err as Error).message}`);
    return;
  }
  showError('');
  void room?.updateState(patch).then(renderFacts, (err: Error) => showError(err.message));
});

$('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>('chat-text');
  const text = input.value.trim();
  if (!text || !room) return;
  input.value = '';
  const me = $<HTMLInputElement>('user').value;
  void room.emit('chat:message', { text }).then(
    () => addChat(me, text, true),
    (err: Error) => showError(err.message),
  );
});

// A second member in the same page, so one person can watch presence work.
let sims = 0;
$('add-sim').addEventListener('click', () => {
  const n = ++sims;
  const url = $<HTMLInputElement>('server-url').value.trim();
  const roomId = $<HTMLInputElement>('room').value.trim();
  const userId = `guest-${n}`;
  const sim = new RealtimeClient({ url });
  const box = el('div', { class: 'sim', role: 'group', 'aria-label': `simulated member ${userId}` });
  const label = el('span', { class: 'sim-name' }, userId);
  const typing = el('label', { class: 'switch' });
  const cb = el('input', { type: 'checkbox' });
  typing.append(cb, document.createTextNode(' typing'));
  const say = el('button', { type: 'button', class: 'secondary' }, 'say hi');
  const bye = el('button', { type: 'button', class: 'secondary' }, 'leave');
  box.append(label, typing, say, bye);
  $('sims').append(box);
  void sim.joinRoom(roomId, { userId, state: { typing: false, mic: true } }).then(
    (ch) => {
      cb.addEventListener('change', () => void ch.updateState({ typing: cb.checked }));
      say.addEventListener('click', () => void ch.emit('chat:message', { text: `hi from ${userId}` }));
    },
    (err: Error) => showError(`${userId}: ${err.message}`),
  );
  bye.addEventListener('click', () => {
    void sim.shutdown();
    box.remove();
  });
});

renderFacts();
renderControls();
