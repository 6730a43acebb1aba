import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Markdown files whose ```ts blocks are user-facing examples. */
const DOCS = ['README.md', 'packages/sdk/README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/**
 * Names an example uses without defining them because they stand for the
 * reader's own code (a render function, an input element). Declared, never
 * implemented: the examples must type-check against the published API.
 */
const READER_CODE = `
declare function render(members: unknown): void;
declare function show(...args: unknown[]): void;
declare const input: { addEventListener(type: string, listener: () => void): void };
export {};
`;

function examples(): Array<{ file: string; index: number; code: string }> {
  const out: Array<{ file: string; index: number; code: string }> = [];
  for (const file of DOCS) {
    const text = readFileSync(join(root, file), 'utf8');
    const re = /^```ts\n([\s\S]*?)^```/gm;
    let m: RegExpExecArray | null;
    let index = 0;
    while ((m = re.exec(text))) out.push({ file, index: ++index, code: m[1]! });
  }
  return out;
}

describe('documentation examples', () => {
  const all = examples();

  it('there are examples to check (README, SDK README)', () => {
    expect(all.filter((e) => e.file === 'README.md').length).toBeGreaterThanOrEqual(3);
    expect(all.some((e) => e.file === 'packages/sdk/README.md')).toBe(true);
  });

  it('every ```ts example type-checks against the built packages', () => {
    // Inside the repository, so that the examples resolve the workspace packages as a user's project would.
    const dir = mkdtempSync(join(root, 'packages/server/test/.examples-'));
    try {
      const files = all.map((e, i) => {
        const path = join(dir, `example-${i}.ts`);
        writeFileSync(path, `${e.code}\n${READER_CODE}`);
        return { path, example: e };
      });
      const program = ts.createProgram(
        files.map((f) => f.path),
        {
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.NodeNext,
          moduleResolution: ts.ModuleResolutionKind.NodeNext,
          lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
          types: ['node'],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
        },
      );
      const problems = ts.getPreEmitDiagnostics(program).map((d) => {
        const f = files.find((x) => x.path === d.file?.fileName);
        const where = f ? `${f.example.file} example ${f.example.index}` : (d.file?.fileName ?? 'global');
        const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
        return `${where}:${line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
      expect(problems).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Runs the README's ```ts block that `matches` as a real Node process against
 * a real standalone server (memory engines) and hands `check` the server URL
 * and a live view of the process output; everything is torn down after.
 */
async function runReadmeExample(matches: (code: string) => boolean, check: (url: string, output: () => string) => Promise<void>): Promise<void> {
  const { spawn } = await import('node:child_process');
  const { createRealtimeServer, loadConfig } = await import('../src/index.js');
  const server = createRealtimeServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', DEMO_DIR: 'off' }));
  const url = `http://127.0.0.1:${await server.listen()}`;
  const block = examples().find((e) => e.file === 'README.md' && matches(e.code));
  expect(block, 'the README has this example').toBeDefined();
  const dir = mkdtempSync(join(root, 'packages/server/test/.examples-'));
  const file = join(dir, 'example.mjs');
  writeFileSync(file, block!.code.replace('http://localhost:3000', url));
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += String(d)));
  child.stderr.on('data', (d: Buffer) => (out += String(d)));
  try {
    await check(url, () => out);
  } finally {
    child.kill('SIGKILL');
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the README client example runs', () => {
  it('prints who is here, then joins, updates and leaves of others', async () => {
    const { connect, request, waitFor } = await import('realtime-message-testing');
    await runReadmeExample(
      (code) => code.includes("from 'realtime-message-sdk'") && code.includes('joinRoom'),
      async (url, out) => {
        await waitFor(() => out().includes('here now: ada'), { timeoutMs: 10_000, what: 'the example to join' });
        const bob = await connect(url);
        expect((await request(bob, 'presence:join', { roomId: 'doc-1', userId: 'bob' })).ok).toBe(true);
        await waitFor(() => out().includes('joined: bob'), { what: 'joined: bob' });
        expect((await request(bob, 'presence:heartbeat', { patchState: { typing: true } })).ok).toBe(true);
        await waitFor(() => out().includes('updated: bob {"typing":true}'), { what: 'updated: bob' });
        expect(await request(bob, 'presence:leave', {})).toEqual({ ok: true });
        await waitFor(() => out().includes('left: bob leave'), { what: 'left: bob' });
        bob.disconnect();
      },
    );
  });
});

describe('the README status example runs', () => {
  it('prints the changes of watched users and sets its own status', async () => {
    const { waitFor } = await import('realtime-message-testing');
    await runReadmeExample(
      (code) => code.includes('watchStatus'),
      async (url, out) => {
        // The example's own setStatus: ada is busy.
        await waitFor(async () => ((await (await fetch(`${url}/api/v2/presence/ada`)).json()) as { message: string | null }).message === 'in a meeting' || undefined, {
          timeoutMs: 10_000,
          what: "ada's status set by the example",
        });
        const put = await fetch(`${url}/api/v2/presence/grace`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'online', message: 'back at 3', ttlSeconds: 60 }) });
        expect(put.status).toBe(200);
        await waitFor(() => /grace online back at 3 \d+/.test(out()) || undefined, { what: `grace's change printed (output: ${out()})` });
      },
    );
  });
});
