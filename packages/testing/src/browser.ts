import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { onTestFinished } from 'vitest';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Whether browser tests can run here. `npm test` must pass on a machine with
 * only Node and redis-server, so without Chromium they are skipped with this
 * reason; `.ci/run` installs Chromium and sets REQUIRE_BROWSER=1, so in CI a
 * missing browser fails instead.
 */
export const browserSkipReason: string | undefined = existsSync(CHROMIUM)
  ? undefined
  : process.env.REQUIRE_BROWSER === '1'
    ? undefined
    : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;

/** Debian's Chromium, headless, never a downloaded browser; closed after the test. */
export async function launchChromium(): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  onTestFinished(() => browser.close());
  return browser;
}
