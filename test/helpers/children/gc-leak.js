'use strict';
/*
 * gc-leak.js <phase>: create many databases holding data and let them go,
 * then report how much RSS grew. `drop`: never closed, left to the garbage
 * collector; `close`: closed explicitly; `hnsw-drop`: as drop, HNSW index.
 * Run with --expose-gc.
 */
const { vecvault, randomFlat, items, settle, report } = require('./common');

async function main() {
  const phase = process.argv[2] || 'drop';
  const { VectorDB } = vecvault();
  const hnsw = phase === 'hnsw-drop';
  const DIM = hnsw ? 384 : 256;
  const N = 1000;
  const ITER = hnsw ? 90 : 150;
  const WARM = hnsw ? 15 : 30;
  const flat = randomFlat(N, DIM, 7);
  const batch = items(flat, DIM);
  const query = flat.subarray(0, DIM);

  let collected = 0;
  const registry = new FinalizationRegistry(() => { collected++; });
  let rss0 = 0;
  for (let it = 0; it < ITER; it++) {
    const opts = hnsw
      ? { dimension: DIM, metric: 'l2', index: 'hnsw', hnsw: { m: 8, efConstruction: 32 } }
      : { dimension: DIM, metric: 'l2', index: 'flat' };
    const db = new VectorDB(opts);
    db.addBatch(batch);
    const res = db.search(query, 3);
    if (res[0].id !== 'v0') throw new Error(`bad search result ${res[0].id}`);
    if (phase === 'close') db.close();
    registry.register(db, it);
    if (it % 10 === 9) await settle(2);
    if (it === WARM - 1) {
      await settle();
      rss0 = process.memoryUsage().rss;
    }
  }
  await settle(6);
  const rss1 = process.memoryUsage().rss;
  const perDbMb = (N * DIM * 4) / (1024 * 1024);
  report({
    phase,
    iterations: ITER,
    measured: ITER - WARM,
    rss0Mb: rss0 / 1048576,
    rss1Mb: rss1 / 1048576,
    growthMb: (rss1 - rss0) / 1048576,
    vectorsPerDbMb: perDbMb,
    leakIfNothingFreedMb: perDbMb * (ITER - WARM),
    collected,
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(3);
});
