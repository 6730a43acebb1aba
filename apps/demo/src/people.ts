import type { RealtimeClient, StatusRecord, StatusWatch, UserStatus } from 'realtime-message-sdk/browser';

// The people panel: watched users with their status, message and "last seen",
// and the own status and message. Everything users type is rendered with
// textContent, never as HTML.
const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Most people the panel watches (the server allows 1,000 per connection). */
const MAX_WATCHED = 50;

/** "just now", "3 min ago", "2 h ago", "4 days ago". */
export function ago(ts: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 60) return 'just now';
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} days ago`;
}

function describe(r: StatusRecord): string {
  if (r.status !== 'offline') return r.status;
  if (r.lastSeen === null) return 'offline · never seen';
  return `offline · last seen ${ago(r.lastSeen)}`;
}

export interface PeoplePanel {
  /** The client joined as `userId`: watch them (and whoever was watched before) and allow setting a status. */
  attach(client: RealtimeClient, userId: string): Promise<void>;
  /** The client stopped. */
  detach(): void;
}

export function mountPeople(showError: (msg: string) => void): PeoplePanel {
  let client: RealtimeClient | undefined;
  let me = '';
  let watch: StatusWatch | undefined;
  let wanted: string[] = [];
  let stopActivity: (() => void) | undefined;

  function render(): void {
    const list = $('people');
    list.replaceChildren();
    for (const r of watch?.all() ?? []) {
      const li = el('li', { class: 'person', 'data-person': r.userId, 'data-status': r.status });
      const head = el('div', { class: 'member-head' });
      head.append(el('span', { class: `dot status-${r.status}`, title: r.status }), el('span', { class: 'name' }, r.userId + (r.userId === me ? ' (you)' : '')));
      li.append(head, el('div', { class: 'status-line' }, describe(r)));
      if (r.message !== null) li.append(el('div', { class: 'status-message' }, `“${r.message}”`));
      list.append(li);
    }
  }

  function renderControls(): void {
    const on = client !== undefined;
    for (const id of ['my-status', 'my-message', 'set-status', 'watch-ids', 'watch']) $<HTMLInputElement>(id).disabled = !on;
  }

  async function rewatch(ids: string[]): Promise<void> {
    if (!client) return;
    const next = await client.watchStatus(ids);
    const old = watch;
    watch = next;
    wanted = ids;
    next.on('change', render);
    next.on('sync', render);
    next.on('error', (err) => showError(`status: ${err.code}: ${err.message}`));
    await old?.close();
    render();
  }

  $('status-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (!client) return;
    const status = $<HTMLSelectElement>('my-status').value as UserStatus;
    const message = $<HTMLInputElement>('my-message').value.trim();
    showError('');
    client.setStatus({ status, message: message === '' ? null : message }).then(render, (err: Error & { code?: string }) => showError(`status: ${err.code ?? 'error'}: ${err.message}`));
  });

  $('watch-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>('watch-ids');
    const ids = input.value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (ids.length === 0) return;
    const all = [...new Set([...wanted, ...ids])];
    if (all.length > MAX_WATCHED) return showError(`the panel watches at most ${MAX_WATCHED} people`);
    showError('');
    rewatch(all).then(
      () => (input.value = ''),
      (err: Error & { code?: string }) => showError(`watch: ${err.code ?? 'error'}: ${err.message}`),
    );
  });

  // "last seen 3 min ago" moves on by itself.
  setInterval(render, 15_000);
  renderControls();

  return {
    async attach(c, userId) {
      client = c;
      me = userId;
      renderControls();
      stopActivity = c.trackActivity();
      await rewatch([...new Set([userId, ...wanted])]);
    },
    detach() {
      stopActivity?.();
      stopActivity = undefined;
      client = undefined;
      watch = undefined;
      renderControls();
      render();
    },
  };
}
