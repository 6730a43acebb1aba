/** A dependency whose reachability decides whether the node is ready (a Redis, a NATS server). */
export interface HealthCheck {
  /** Shown in `/ready`: `memory`, `redis`, `redis-cluster`, `nats`... */
  readonly name: string;
  /** Resolves when the dependency answers; rejects when it cannot be reached. */
  check(): Promise<void>;
}

export interface HealthReport {
  ok: boolean;
  checks: Record<string, 'ok' | 'unavailable'>;
}

/** Runs every check at once, each bounded by `timeoutMs`. */
export async function checkHealth(checks: readonly HealthCheck[], timeoutMs: number): Promise<HealthReport> {
  const results = await Promise.all(
    checks.map(async (c) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${c.name} did not answer within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([c.check(), timeout]);
        return [c.name, 'ok'] as const;
      } catch {
        return [c.name, 'unavailable'] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ok: results.every(([, r]) => r === 'ok'), checks: Object.fromEntries(results) };
}
