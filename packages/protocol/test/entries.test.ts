import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as core from '../src/core.js';
import * as full from '../src/index.js';

/** Runtime (non-type) imports and re-exports of a module, resolved to files. */
function runtimeDeps(url: URL): URL[] {
  const text = readFileSync(url, 'utf8');
  const deps: URL[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+'([^']+)'/gms)) {
    const spec = m[1]!;
    deps.push(spec.startsWith('.') ? new URL(spec.replace(/\.js$/, '.ts'), url) : new URL(`pkg:${spec}`));
  }
  return deps;
}

describe('entries', () => {
  it('the core entry loads no zod at run time (clients bundle it)', () => {
    const seen = new Set<string>();
    const queue = [new URL('../src/core.ts', import.meta.url)];
    const external: string[] = [];
    for (let url = queue.pop(); url; url = queue.pop()) {
      if (seen.has(url.href)) continue;
      seen.add(url.href);
      for (const dep of runtimeDeps(url)) {
        if (dep.protocol === 'pkg:') external.push(dep.pathname);
        else queue.push(dep);
      }
    }
    expect(external).toEqual([]);
    expect(seen.size).toBeGreaterThan(3);
  });

  it('every run-time name of core is also in the full entry, and no schema is in core', () => {
    for (const name of Object.keys(core)) expect(full).toHaveProperty(name);
    expect(Object.keys(core).filter((n) => n.endsWith('Schema') || n === 'parsePayload' || n === 'createPayloadSchemas')).toEqual([]);
  });
});
