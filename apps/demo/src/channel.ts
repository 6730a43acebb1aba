import type { JsonValue, PublicationContext, RealtimeClient, StreamPosition, Subscription } from 'realtime-message-sdk/browser';

// The channel panel: subscribe to a channel, publish, see every publication
// with its offset, read the last 10 from history, and drop the connection to
// watch recovery bring back what was published meanwhile. Everything users
// type is rendered with textContent, never as HTML.
const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Most rows the publication list keeps. */
const MAX_ROWS = 200;

const textOf = (data: JsonValue): string =>
  typeof data === 'object' && data !== null && !Array.isArray(data) && typeof data.text === 'string' ? data.text : JSON.stringify(data);

export interface ChannelPanel {
  /** The client is connected: the panel can subscribe. */
  attach(client: RealtimeClient): void;
  /** The client stopped (its subscriptions ended with it). */
  detach(): void;
  /**
   * Settles when a simulated outage ends (at once when there is none). The
   * page's token function waits for it, and the SDK calls that function
   * before every connection attempt: so "Drop connection" keeps the page
   * offline for the chosen time, long enough to publish from another page.
   */
  outage(): Promise<void>;
}

export function mountChannel(showError: (msg: string) => void): ChannelPanel {
  let client: RealtimeClient | undefined;
  let sub: Subscription | undefined;
  /** The channel whose publications the list shows. */
  let shown = '';
  /** The last position applied per channel: subscribing again later in this page carries on from it. */
  const positions = new Map<string, StreamPosition>();
  let outage: { until: Promise<void>; end: () => void; timer: ReturnType<typeof setTimeout> } | undefined;

  const params = new URLSearchParams(location.search);
  if (params.get('channel')) $<HTMLInputElement>('channel-name').value = params.get('channel')!;

  function renderControls(): void {
    const on = client !== undefined;
    const active = sub !== undefined && sub.state !== 'unsubscribed';
    $<HTMLInputElement>('channel-name').disabled = !on || active;
    $<HTMLButtonElement>('subscribe').disabled = !on || active;
    $<HTMLButtonElement>('unsubscribe').disabled = !active;
    for (const id of ['publish-text', 'publish', 'history']) $<HTMLInputElement>(id).disabled = !active;
    $<HTMLButtonElement>('drop').disabled = !on || outage !== undefined;
    $<HTMLSelectElement>('offline-for').disabled = !on;
  }

  function renderFacts(): void {
    const badge = $('sub-state');
    const state = sub?.state ?? 'idle';
    badge.textContent = state;
    badge.dataset.state = state === 'subscribed' ? 'joined' : state === 'subscribing' ? 'joining' : state;
    const p = sub?.position;
    $('sub-position').textContent = p ? `offset ${p.offset} · epoch ${p.epoch}` : '–';
  }

  function row(li: HTMLLIElement): void {
    const list = $('publications');
    list.append(li);
    while (list.children.length > MAX_ROWS) list.firstElementChild!.remove();
    list.scrollTop = list.scrollHeight;
  }

  function note(text: string, kind: 'info' | 'warn' = 'info'): void {
    row(el('li', { class: `note note-${kind}` }, text));
  }

  function publicationItem(p: { offset: number; data: JsonValue; info?: { user: string } | undefined }, recovered: boolean): HTMLLIElement {
    const li = el('li', { class: `pub${recovered ? ' recovered' : ''}`, 'data-offset': String(p.offset) });
    li.append(el('code', { class: 'offset' }, `#${p.offset}`), el('strong', {}, `${p.info?.user || 'anonymous'}: `), el('span', { class: 'text' }, textOf(p.data)));
    if (recovered) li.append(el('span', { class: 'tag tag-recovered', title: 'missed while disconnected, recovered when subscribing again' }, 'recovered'));
    return li;
  }

  function subscribe(name: string): void {
    if (!client) return;
    if (name !== shown) {
      $('publications').replaceChildren();
      $('channel-history').replaceChildren();
      shown = name;
    }
    const since = positions.get(name);
    const s = client.createSubscription(name, since ? { since } : {});
    sub = s;
    s.on('state', ({ newState, reason }) => {
      if (newState === 'subscribing' && (reason === 'gap' || reason === 'resubscribe')) note(`resubscribing from offset ${s.position?.offset ?? 0} (${reason})`);
      if (newState === 'subscribing' && reason === 'disconnect') note(`connection lost at offset ${s.position?.offset ?? 0}: will recover from there`);
      renderFacts();
      renderControls();
    });
    s.on('subscribed', ({ wasRecovering, recovered, offset }) => {
      if (!wasRecovering) note(`subscribed at offset ${offset}`);
      else if (recovered) note(`recovered: every publication up to offset ${offset} is here`);
      else note(`could not recover the missed publications (history lost or too short): reload; now at offset ${offset}`, 'warn');
      renderFacts();
    });
    s.on('publication', (p: PublicationContext) => {
      row(publicationItem(p, p.recovered));
      positions.set(name, { offset: p.offset, epoch: p.epoch });
      renderFacts();
    });
    s.on('unsubscribed', ({ reason }) => note(`unsubscribed (${reason})`));
    s.on('error', (err) => showError(`channel: ${err.code}: ${err.message}`));
    renderControls();
    renderFacts();
    s.subscribe().then(
      () => {
        if (s.position) positions.set(name, s.position);
      },
      (err: Error & { code?: string }) => {
        showError(`subscribe: ${err.code ?? 'error'}: ${err.message}`);
        if (sub === s) sub = undefined;
        renderControls();
        renderFacts();
      },
    );
  }

  function endOutage(): void {
    if (!outage) return;
    clearTimeout(outage.timer);
    outage.end();
    outage = undefined;
    renderControls();
  }

  $('channel-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $<HTMLInputElement>('channel-name').value.trim();
    if (!name) return;
    showError('');
    subscribe(name);
  });

  $('unsubscribe').addEventListener('click', () => {
    const s = sub;
    void s?.unsubscribe().then(() => {
      renderControls();
      renderFacts();
    });
  });

  $('publish-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>('publish-text');
    const text = input.value.trim();
    if (!text || !sub) return;
    input.value = '';
    sub.publish({ text }).catch((err: Error & { code?: string }) => showError(`publish: ${err.code ?? 'error'}: ${err.message}`));
  });

  $('history').addEventListener('click', () => {
    sub?.history({ limit: 10, reverse: true }).then(
      (h) => {
        const list = $('channel-history');
        list.replaceChildren(...h.publications.reverse().map((p) => publicationItem(p, false)));
        $('history-title').textContent = `Last ${h.publications.length} from history (newest offset ${h.offset})`;
      },
      (err: Error & { code?: string }) => showError(`history: ${err.code ?? 'error'}: ${err.message}`),
    );
  });

  $('drop').addEventListener('click', () => {
    if (!client) return;
    const seconds = Number($<HTMLSelectElement>('offline-for').value);
    if (seconds > 0) {
      let end!: () => void;
      const until = new Promise<void>((resolve) => (end = resolve));
      outage = { until, end, timer: setTimeout(endOutage, seconds * 1_000) };
      note(`connection dropped; offline for ${seconds} s`);
    } else {
      note('connection dropped');
    }
    renderControls();
    client.socket.io.engine.close(); // the transport closes, as on a network change
  });

  renderControls();
  renderFacts();

  return {
    attach(c) {
      client = c;
      renderControls();
    },
    detach() {
      endOutage();
      client = undefined;
      sub = undefined;
      renderControls();
      renderFacts();
    },
    outage: () => outage?.until ?? Promise.resolve(),
  };
}
