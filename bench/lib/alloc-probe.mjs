// Loaded into a server under test with `--import` (through NODE_OPTIONS in
// SERVER_ENV, see docs/benchmarks.md): samples what the process allocates,
// also the objects collected since (the garbage a request makes is what the
// GC pays for), and writes the profile to ALLOC_DIR/alloc-<pid>.heapprofile
// when the process exits or on SIGUSR2. `node bench/alloc-top.mjs <file>
// <cycles>` sums it per cycle by package and by function.
// ALLOC_INTERVAL: mean bytes between samples (default 16384; smaller costs more).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const dir = process.env.ALLOC_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  session.post('HeapProfiler.startSampling', {
    samplingInterval: Number(process.env.ALLOC_INTERVAL ?? 16_384),
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  // An in-process inspector session answers synchronously, so this also works in an 'exit' listener.
  const dump = () =>
    session.post('HeapProfiler.getSamplingProfile', (err, r) => {
      if (!err) writeFileSync(`${dir}/alloc-${process.pid}.heapprofile`, JSON.stringify(r.profile));
    });
  process.on('exit', dump);
  process.on('SIGUSR2', dump);
}
