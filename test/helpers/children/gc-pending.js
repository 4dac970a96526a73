'use strict';
/*
 * gc-pending.js: drop every JS reference to a database (and to the input
 * buffers) while async work on it is still running, force GC, and check the
 * work still completes with correct results. Run with --expose-gc.
 */
const { vecvault, randomFlat, items, settle, report, errInfo } = require('./common');

async function main() {
  const { VectorDB } = vecvault();
  const DIM = 32;
  const N = 20000;
  const NQ = 300;
  let search;
  let add;
  let searchAsyncOne;
  {
    let db = new VectorDB({ dimension: DIM, metric: 'l2', index: 'flat' });
    db.addBatch(items(randomFlat(N, DIM, 1), DIM));
    /* queries are copies of stored vectors 0..NQ-1: top-1 must be the same id */
    search = db.searchBatchAsync(randomFlat(N, DIM, 1).slice(0, NQ * DIM), 5);
    searchAsyncOne = db.searchAsync(Array.from(randomFlat(N, DIM, 1).subarray(DIM * 7, DIM * 8)), 1);
    db = null;
  }
  {
    const db2 = new VectorDB({ dimension: DIM, metric: 'cosine', index: 'hnsw' });
    add = db2.addBatchAsync(items(randomFlat(5000, DIM, 2), DIM)).then(() => db2.size);
  }
  await settle(8);
  const out = { ok: true };
  try {
    const lists = await search;
    out.lists = lists.length;
    out.selfTop1 = lists.filter((l, i) => l.length === 5 && l[0].id === `v${i}` && l[0].distance === 0).length;
    const one = await searchAsyncOne;
    out.one = one.length === 1 ? one[0].id : null;
  } catch (e) {
    out.ok = false;
    out.searchError = errInfo(e);
  }
  try {
    out.addedSize = await add;
  } catch (e) {
    out.ok = false;
    out.addError = errInfo(e);
  }
  await settle(4);
  report(out);
}

main().catch((e) => {
  console.error(e);
  process.exit(3);
});
