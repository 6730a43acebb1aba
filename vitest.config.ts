import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run the workspace packages from their sources: one copy of each
    // module whether a test imports '../src/index.js' or 'realtime-message'
    // (so classes and registries are shared), and coverage maps to src/.
    // Built output is still exercised where it matters: the CLI runs from
    // dist in child processes, the SDK bundle and the demo in Chromium.
    alias: [
      { find: /^realtime-message$/, replacement: src('packages/server/src/index.ts') },
      { find: /^realtime-message\/(memory|redis|nats)$/, replacement: src('packages/server/src/engines/$1/index.ts') },
      { find: /^realtime-message-protocol$/, replacement: src('packages/protocol/src/index.ts') },
      { find: /^realtime-message-protocol\/core$/, replacement: src('packages/protocol/src/core.ts') },
      { find: /^realtime-message-testing$/, replacement: src('packages/testing/src/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts'],
    globalSetup: ['packages/testing/src/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
    coverage: {
      enabled: true,
      provider: 'v8',
      include: ['packages/*/src/**/*.ts'],
      exclude: [
        '**/*.d.ts',
        '**/dist/**',
        // The test helpers themselves are not product code.
        'packages/testing/**',
        // The process entry runs only as a child process (NodeProcess): its
        // behaviour (exit 2 on bad config, SIGTERM, workers, a dead primary)
        // is tested in server, multinode and npm-start tests, which in-process
        // V8 coverage cannot see.
        'packages/server/src/app/cli.ts',
      ],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
      // Printed on every run, also when a test fails.
      reportOnFailure: true,
      thresholds: { lines: 90, branches: 85 },
    },
  },
});
