'use strict';
/*
 * workers.js: vecvault in worker_threads. Two workers use their own
 * databases while the main thread uses one too; a third worker is
 * terminated while its async insert runs. The addon must keep per-thread
 * state apart and survive an environment torn down under pending work.
 */
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { vecvault, randomFlat, items, report } = require('./common');

const DIM = 16;

async function job(kind, seed) {
  const { VectorDB, VecvaultError } = vecvault();
  const db = new VectorDB({ dimension: DIM, metric: 'l2', index: kind === 'flat' ? 'flat' : 'hnsw' });
  const flat = randomFlat(3000, DIM, seed);
  await db.addBatchAsync(items(flat, DIM, `s${seed}_`));
  const lists = await db.searchBatchAsync(flat.slice(0, 100 * DIM), 1);
  const self = lists.filter((l, i) => l[0] && l[0].id === `s${seed}_${i}`).length;
  let closedOk = false;
  db.close();
  try { db.get('x'); } catch (e) { closedOk = e instanceof VecvaultError && e.code === 'ERR_CLOSED'; }
  return { size: 3000, self, closedOk };
}

if (isMainThread) {
  const run = (data) => new Promise((resolve) => {
    const w = new Worker(__filename, { workerData: data });
    let result = null;
    w.on('message', (m) => {
      if (m === 'started') {
        w.terminate();
        return;
      }
      result = m;
    });
    w.on('error', (e) => { result = { error: String(e && e.stack || e) }; });
    w.on('exit', (code) => resolve({ code, result }));
  });
  (async () => {
    const [a, b, main, killed] = await Promise.all([
      run({ kind: 'hnsw', seed: 1 }),
      run({ kind: 'flat', seed: 2 }),
      job('hnsw', 3),
      run({ kind: 'terminate', seed: 4 }),
    ]);
    /* the addon still works on the main thread after a worker was torn down */
    const after = await job('flat', 5);
    report({ a, b, main, killed, after });
  })().catch((e) => {
    console.error(e);
    process.exit(3);
  });
} else if (workerData.kind === 'terminate') {
  const { VectorDB } = vecvault();
  const db = new VectorDB({ dimension: DIM, index: 'hnsw' });
  db.addBatchAsync(items(randomFlat(8000, DIM, 9), DIM), { onProgress() {} }).catch(() => {});
  db.searchBatchAsync(randomFlat(2000, DIM, 10), 10).catch(() => {});
  parentPort.postMessage('started');
} else {
  job(workerData.kind, workerData.seed).then(
    (r) => parentPort.postMessage(r),
    (e) => parentPort.postMessage({ error: String(e && e.stack || e) }),
  );
}
