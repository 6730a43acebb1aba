/**
 * Polls `check` until it returns a truthy value (which it returns) or the
 * deadline passes; a throw counts as "not yet" and is reported on timeout.
 * For a plain assertion prefer `expect.poll`; this is for waits that need
 * the value, or that run outside a test (global setup, process start).
 */
export async function waitFor<T>(check: () => T | Promise<T>, { timeoutMs = 5_000, intervalMs = 10, what = 'condition' } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
