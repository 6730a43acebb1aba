// Loaded into a server under test with `node --import <this file>` by
// SCENARIO=scale (for every contender alike). On SIGURG (ignored by default,
// so harmless elsewhere) it runs two full garbage collections and writes the
// process's memory to MEMORY_PROBE_DIR/<pid>-mem.json:
//   heapUsed, heapTotal, external, arrayBuffers (bytes, right after the GCs), V8's heap spaces,
//   and rss and mappings 200 ms later (rssAtOnce: RSS right after the GCs).
// With HEAP_SNAPSHOT_DIR set it also writes a heap snapshot there
// (<pid>-<n>.heapsnapshot; analyse with bench/heap-by-constructor.mjs).
// With MEMORY_SETTLE_MS it also reads RSS and the heap's size that much
// later (rssSettled, heapTotalSettled): V8 gives back the pages of a heap
// that grew in a burst only when its memory reducer runs, which a full GC
// starts and which then works over tens of seconds.
// Without MEMORY_PROBE_DIR it does nothing.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapSpaceStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';

const dir = process.env.MEMORY_PROBE_DIR;
if (dir) {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  let n = 0;
  process.on('SIGURG', () => {
    gc();
    gc();
    const m = process.memoryUsage();
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((x) => [x.space_name, { size: x.space_size, used: x.space_used_size, physical: x.physical_space_size }]));
    // The heap figures are exact right after the GCs, but V8 gives the pages
    // they freed back to the OS from background threads: an RSS read at once
    // sometimes still counts them (seen: 2.2 KB per connection more than the
    // mappings read a moment later). RSS and mappings are read once that is done.
    const settleMs = Number(process.env.MEMORY_SETTLE_MS ?? 0);
    setTimeout(() => {
      const out = { pid: process.pid, mappings: mappings(), rss: process.memoryUsage.rss(), rssAtOnce: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, spaces };
      if (process.env.HEAP_SNAPSHOT_DIR) out.snapshot = writeHeapSnapshot(join(process.env.HEAP_SNAPSHOT_DIR, `${process.pid}-${++n}.heapsnapshot`));
      const write = () => writeFileSync(join(dir, `${process.pid}-mem.json`), JSON.stringify(out));
      if (!(settleMs > 0)) return write();
      setTimeout(() => {
        out.rssSettled = process.memoryUsage.rss();
        out.heapTotalSettled = process.memoryUsage().heapTotal;
        write();
      }, settleMs);
    }, 200);
  });
}

/** RSS by kind of mapping (/proc/self/smaps): the malloc heap ([heap]), anonymous mappings (V8's pages, thread arenas), files. */
function mappings() {
  const out = { heap: 0, anon: 0, file: 0, other: 0 };
  try {
    let kind = 'other';
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) {
        const name = head[1];
        kind = name === '[heap]' ? 'heap' : name === '' ? 'anon' : name.startsWith('/') ? 'file' : 'other';
      } else if (line.startsWith('Rss:')) {
        out[kind] += Number(/(\d+)/.exec(line)[1]) * 1024;
      }
    }
  } catch {
    /* not Linux */
  }
  // V8 keeps the subject of the last regexp match (a line, a slice of the whole
  // smaps text, ~1 MB with 10,000 sockets) until the next match: without this,
  // the next reading would count this one's text as heap of the server.
  /^/.exec('');
  return out;
}
