import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { browserSkipReason, freePort, launchChromium, startServer } from 'realtime-message-testing';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const out = fileURLToPath(new URL('../../../test-output/', import.meta.url));
const TTL = 3_000;
const GRACE = 500;
const REAPER = 100;

if (browserSkipReason) console.warn(`skipping the demo browser test: ${browserSkipReason}`);

describe.skipIf(browserSkipReason !== undefined)('demo page in headless Chromium', () => {
  it('two members see each other, state and chat flow, and a closed tab leaves within grace + TTL', { timeout: 60_000 }, async () => {
    const server = await startServer({ DEMO_DIR: dist, PRESENCE_TTL_MS: String(TTL), PRESENCE_DISCONNECT_GRACE_MS: String(GRACE), PRESENCE_REAPER_INTERVAL_MS: String(REAPER) });
    const url = `${server.url}/`;
    const browser = await launchChromium();
    const errors: string[] = [];

    async function member(user: string) {
      const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(`${user}: ${String(e)}`));
      await page.goto(`${url}?user=${user}&room=e2e-room`);
      await page.getByRole('button', { name: 'Join' }).click();
      await page.locator(`li[data-user="${user}"]`).waitFor();
      return { context, page };
    }

    const alice = await member('alice');
    const bob = await member('bob');
    await alice.page.locator('li[data-user="bob"]').waitFor();
    await bob.page.locator('li[data-user="alice"]').waitFor();
    await expect.poll(() => bob.page.locator('#conn-state').textContent()).toBe('connected');

    // A state toggle in one appears in the other.
    await alice.page.getByLabel('typing').check();
    await bob.page.locator('li[data-user="alice"] .tag-typing').waitFor();
    // A free JSON patch too.
    await alice.page.locator('#patch').fill('{ "status": "reviewing" }');
    await alice.page.getByRole('button', { name: 'Apply patch' }).click();
    await expect.poll(() => bob.page.locator('li[data-user="alice"] .extra').textContent()).toContain('reviewing');

    // Chat with the keyboard only: type and press Enter.
    await alice.page.locator('#chat-text').fill('hello bob');
    await alice.page.locator('#chat-text').press('Enter');
    await expect.poll(() => bob.page.locator('#chat').textContent()).toContain('alice: hello bob');

    // The event log shows seq and epoch.
    expect(await bob.page.locator('#log tr').count()).toBeGreaterThan(0);
    expect(await bob.page.locator('#epoch').textContent()).toBe('1');

    mkdirSync(out, { recursive: true });
    await bob.page.screenshot({ path: `${out}demo.png`, fullPage: true });

    // Every form control has a label.
    const unlabeled = await bob.page.evaluate(() =>
      [...document.querySelectorAll('input, textarea')].filter((e) => (e as HTMLInputElement).labels?.length === 0).map((e) => e.id),
    );
    expect(unlabeled).toEqual([]);

    // Readable at phone width: nothing but the event log (own scroll box) overflows horizontally.
    await bob.page.setViewportSize({ width: 375, height: 740 });
    expect(await bob.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(376);
    await bob.page.screenshot({ path: `${out}demo-phone.png`, fullPage: false });

    // Closing alice's tab: bob sees her leave (reason disconnect) within grace + TTL (+ reaper).
    const t0 = Date.now();
    await alice.context.close();
    await bob.page.locator('li[data-user="alice"]').waitFor({ state: 'detached', timeout: GRACE + TTL + REAPER + 3_000 });
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThanOrEqual(GRACE + TTL + REAPER + 3_000);
    expect(await bob.page.locator('#log').textContent()).toContain('reason: disconnect');
    expect(errors).toEqual([]);
  });

  it('the simulated member button adds a second member in the same page', { timeout: 30_000 }, async () => {
    const server = await startServer({ DEMO_DIR: dist });
    const browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`${server.url}/?user=solo&room=sim-room`);
    await page.getByRole('button', { name: 'Join' }).click();
    await page.getByRole('button', { name: 'Add a simulated member' }).click();
    await page.locator('li[data-user="guest-1"]').waitFor();
    await page.getByRole('group', { name: 'simulated member guest-1' }).getByLabel('typing').check();
    await page.locator('li[data-user="guest-1"] .tag-typing').waitFor();
    await page.getByRole('group', { name: 'simulated member guest-1' }).getByRole('button', { name: 'leave' }).click();
    await page.locator('li[data-user="guest-1"]').waitFor({ state: 'detached' });
    expect(await page.locator('#member-count').textContent()).toBe('1');
  });
  it('a server that does not answer: the error stays with what to check, room controls stay disabled; a good URL then shows the own join and the snapshot and enables them', { timeout: 30_000 }, async () => {
    const server = await startServer({ DEMO_DIR: dist });
    const dead = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    const browser = await launchChromium();
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${server.url}/?user=ada&room=err-room&server=${encodeURIComponent(dead)}`);

    const roomControls = ['#t-typing', '#t-mic', '#t-away', '#patch-form button', '#chat-text', '#send', '#add-sim'];
    // :disabled also covers the toggles, which a disabled fieldset disables.
    const disabled = () => page.evaluate((sels) => sels.map((s) => document.querySelector(s)?.matches(':disabled') ?? null), roomControls);
    // Before any join, nothing that needs a room can be used.
    expect(await disabled()).toEqual(roomControls.map(() => true));
    expect(await page.locator('#leave').isDisabled()).toBe(true);

    await page.getByRole('button', { name: 'Join' }).click();
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.textContent()).toContain(`cannot reach ${dead}`);
    expect(await alert.textContent()).toContain('is the server running? Check the URL');
    expect(await disabled()).toEqual(roomControls.map(() => true));
    // The form is back so the URL can be fixed; the client stopped trying.
    await expect.poll(() => page.locator('#join').isEnabled()).toBe(true);
    expect(await page.locator('#server-url').isEditable()).toBe(true);
    expect(await page.locator('#conn-state').textContent()).toBe('disconnected');
    // The message stays.
    await page.waitForTimeout(1_500);
    expect(await alert.textContent()).toContain(`cannot reach ${dead}`);
    expect(await page.locator('#log tr').count()).toBe(0);

    await page.locator('#server-url').fill(server.url);
    await page.getByRole('button', { name: 'Join' }).click();
    await page.locator('li[data-user="ada"]').waitFor();
    expect(await alert.textContent()).toBe('');
    const rows = page.locator('#log tr');
    await expect.poll(() => rows.count()).toBe(2);
    // Newest first: the snapshot, then the own join, both at seq 1.
    const cells = async (i: number) => (await rows.nth(i).locator('td').allTextContents()).slice(1);
    const [snapshot, own] = [await cells(0), await cells(1)];
    expect(snapshot.slice(0, 3)).toEqual(['1', 'snapshot', '–']);
    expect(snapshot[5]).toBe('1 member: ada');
    expect(own.slice(0, 3)).toEqual(['1', 'join', 'ada (you)']);
    expect(own[3]).toBe((await page.locator('#conn-id').textContent())!.slice(0, 8));
    expect(own[4]).toBe('1');
    expect(JSON.parse(own[5]!)).toEqual({ typing: false, mic: true, away: false });
    await expect.poll(disabled).toEqual(roomControls.map(() => false));
    expect(await page.locator('#leave').isEnabled()).toBe(true);
    expect(await page.locator('#join').isDisabled()).toBe(true);

    // Leaving disables them again.
    await page.getByRole('button', { name: 'Leave' }).click();
    await expect.poll(disabled).toEqual(roomControls.map(() => true));
    expect(errors).toEqual([]);
  });

  it('the channel panel: one page publishes, the other receives; publications made while it was offline arrive after the reconnect, in order, once, marked recovered', { timeout: 60_000 }, async () => {
    const server = await startServer({ DEMO_DIR: dist });
    const browser = await launchChromium();
    const errors: string[] = [];
    async function open(user: string) {
      const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(`${user}: ${String(e)}`));
      await page.goto(`${server.url}/?user=${user}&room=channel-${user}&channel=chat:e2e`);
      await page.getByRole('button', { name: 'Join' }).click();
      await page.locator(`li[data-user="${user}"]`).waitFor();
      await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
      await expect.poll(() => page.locator('#sub-state').textContent()).toBe('subscribed');
      return { context, page };
    }
    const alice = await open('alice');
    const bob = await open('bob');
    const publish = async (text: string) => {
      await alice.page.getByLabel('Message to publish').fill(text);
      await alice.page.getByRole('button', { name: 'Publish' }).click();
      await alice.page.locator('#publications li.pub', { hasText: text }).waitFor();
    };
    await publish('one');
    await bob.page.locator('#publications li[data-offset="1"]').waitFor();

    // Bob drops his connection and stays offline for 3 s; alice publishes three more meanwhile.
    await bob.page.getByLabel('Offline for').selectOption('3');
    await bob.page.getByRole('button', { name: 'Drop connection' }).click();
    await expect.poll(() => bob.page.locator('#conn-state').textContent()).toBe('reconnecting');
    for (const text of ['two', 'three', 'four']) await publish(text);
    expect(await bob.page.locator('#conn-state').textContent()).toBe('reconnecting'); // he missed them
    await bob.page.locator('#publications li[data-offset="4"]').waitFor({ timeout: 15_000 });
    expect(await bob.page.locator('#conn-state').textContent()).toBe('connected');
    // Settle: one more live publication; everything before it is in bob's list by then.
    await publish('five');
    await bob.page.locator('#publications li[data-offset="5"]').waitFor();
    const rows = await bob.page.locator('#publications li.pub').evaluateAll((els) =>
      els.map((e) => [e.getAttribute('data-offset'), e.querySelector('.text')?.textContent, e.querySelector('.tag-recovered') !== null]),
    );
    expect(rows).toEqual([
      ['1', 'one', false],
      ['2', 'two', true],
      ['3', 'three', true],
      ['4', 'four', true],
      ['5', 'five', false],
    ]);
    expect(await bob.page.locator('#publications').textContent()).toContain('recovered: every publication up to offset 4 is here');
    expect(await bob.page.locator('#sub-position').textContent()).toMatch(/^offset 5 · epoch /);

    // History: the last (up to) 10, oldest first.
    await bob.page.getByRole('button', { name: 'History' }).click();
    await expect.poll(() => bob.page.locator('#channel-history li').allTextContents()).toEqual(['#1alice: one', '#2alice: two', '#3alice: three', '#4alice: four', '#5alice: five']);
    mkdirSync(out, { recursive: true });
    await bob.page.locator('#channel-title').scrollIntoViewIfNeeded();
    await bob.page.screenshot({ path: `${out}demo-channel.png`, fullPage: true });

    // Unsubscribe: nothing more arrives, and the form is back.
    await bob.page.getByRole('button', { name: 'Unsubscribe' }).click();
    await expect.poll(() => bob.page.locator('#sub-state').textContent()).toBe('unsubscribed');
    expect(await bob.page.locator('#channel-name').isEditable()).toBe(true);
    await publish('six');
    await bob.page.waitForTimeout(300);
    expect(await bob.page.locator('#publications li[data-offset="6"]').count()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('the people panel shows watched users with status, message and last seen, and sets the own status', { timeout: 60_000 }, async () => {
    const server = await startServer({ DEMO_DIR: dist, PRESENCE_DISCONNECT_GRACE_MS: '0' });
    const browser = await launchChromium();
    const errors: string[] = [];
    async function open(user: string) {
      const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(`${user}: ${String(e)}`));
      await page.goto(`${server.url}/?user=${user}&room=people-${user}`);
      await page.getByRole('button', { name: 'Join' }).click();
      // The panel watches the own user at once.
      await page.locator(`#people li[data-person="${user}"][data-status="online"]`).waitFor();
      return { context, page };
    }
    const ada = await open('ada');
    const person = (user: string) => ada.page.locator(`#people li[data-person="${user}"]`);
    // Someone never seen: offline, never seen.
    await ada.page.getByLabel('Watch users').fill('grace, nobody');
    await ada.page.getByRole('button', { name: 'Watch' }).click();
    await expect.poll(() => person('nobody').textContent()).toContain('never seen');
    expect(await person('grace').getAttribute('data-status')).toBe('offline');

    // grace comes online in another room and sets busy with a message: ada sees both live.
    const grace = await open('grace');
    await expect.poll(() => person('grace').getAttribute('data-status')).toBe('online');
    await grace.page.getByLabel('My status').selectOption('busy');
    await grace.page.getByLabel('Status message').fill('in a meeting');
    await grace.page.getByRole('button', { name: 'Set status' }).click();
    await expect.poll(() => person('grace').getAttribute('data-status')).toBe('busy');
    expect(await person('grace').locator('.status-message').textContent()).toBe('“in a meeting”');
    // Her own panel shows it too.
    await expect.poll(() => grace.page.locator('#people li[data-person="grace"]').getAttribute('data-status')).toBe('busy');

    // Invisible: offline for others, the message stays.
    await grace.page.getByLabel('My status').selectOption('offline');
    await grace.page.getByRole('button', { name: 'Set status' }).click();
    await expect.poll(() => person('grace').getAttribute('data-status')).toBe('offline');
    expect(await person('grace').locator('.status-message').textContent()).toBe('“in a meeting”');

    // grace closes her tab: still offline, last seen moments ago (she was invisible; lastSeen froze when she went invisible).
    await grace.context.close();
    await expect.poll(() => person('grace').locator('.status-line').textContent()).toBe('offline · last seen just now');
    mkdirSync(out, { recursive: true });
    await ada.page.locator('#people-title').scrollIntoViewIfNeeded();
    await ada.page.screenshot({ path: `${out}demo-people.png`, fullPage: true });
    expect(errors).toEqual([]);
  });
});
