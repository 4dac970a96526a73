'use strict';
// Cold lazy queries on a store that answers every ranged read after a fixed
// delay: what a remote store's latency costs a query, and how many page reads
// a query keeps in flight. No network: MemoryStorage plus a timer.
//
//   node bench/storage/slow-store.js [--n 20000] [--dim 128] [--ms 20] [--queries 10]
//
// docs/PERFORMANCE.md ("Storage") quotes it at the defaults, once as is and
// once with VV_READ_THREADS_REMOTE (csrc/db/db_internal.h) set to 4.
const { parseArgs } = require('node:util');
const { VectorDB, MemoryStorage } = require('../..');

const { values } = parseArgs({
  options: { n: { type: 'string', default: '20000' }, dim: { type: 'string', default: '128' }, ms: { type: 'string', default: '20' }, queries: { type: 'string', default: '10' } },
});
const n = Number(values.n), dim = Number(values.dim), delay = Number(values.ms), nq = Number(values.queries);

function lcg(seed) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

async function main() {
  const key = Buffer.alloc(32, 3);
  const r = lcg(7);
  const items = Array.from({ length: n }, (_, i) => ({ id: `v${i}`, vector: Float32Array.from({ length: dim }, () => r() - 0.5) }));
  const db = new VectorDB({ dimension: dim, key });
  await db.addBatchAsync(items);
  const mem = new MemoryStorage();
  await db.save(mem);
  let reads = 0;
  let inFlight = 0;
  let peak = 0;
  const slow = { description: 'slow:' };
  for (const m of ['read', 'write', 'delete', 'list', 'readManifest', 'writeManifest']) slow[m] = mem[m].bind(mem);
  slow.read = async (name, range, o) => {
    if (range) {
      reads++;
      peak = Math.max(peak, ++inFlight);
      await new Promise((res) => setTimeout(res, delay));
      inFlight--;
    }
    return mem.read(name, range, o);
  };
  const lazy = await VectorDB.load(slow, { key, cacheSizeMb: 4 });
  await lazy.searchAsync(items[0].vector, 10); // the page tables, once
  let ms = 0;
  let rq = 0;
  for (let i = 1; i <= nq; i++) {
    const before = reads;
    const t0 = performance.now();
    await lazy.searchAsync(items[(i * 997) % n].vector, 10);
    ms += performance.now() - t0;
    rq += reads - before;
  }
  console.log(`${n} x ${dim}, ${delay} ms a read: ${(ms / nq).toFixed(0)} ms per cold query, ${(rq / nq).toFixed(0)} reads each, at most ${peak} in flight`);
  lazy.close();
  db.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
