'use strict';
/*
 * close-inflight.js: close() a database while adds and searches run on
 * worker threads, at several moments (right away, after one loop turn,
 * once the first search has settled, from inside onProgress). The moments
 * are events, not delays, so each round closes where it says on any machine. Every in-flight promise must
 * settle (resolve, or reject with a VecvaultError), nothing may crash or
 * hang, and calls made after close must fail with ERR_CLOSED.
 */
const { vecvault, randomFlat, items, tick, report, errInfo } = require('./common');

async function main() {
  const { VectorDB } = vecvault();
  const DIM = 32;
  const base = items(randomFlat(1000, DIM, 11), DIM, 'b');
  const extra = items(randomFlat(3000, DIM, 12), DIM, 'x');
  const queries = randomFlat(200, DIM, 13);
  const out = {
    rounds: 0,
    fulfilled: 0,
    rejected: {},
    foreign: [],
    hung: 0,
    badResults: 0,
    afterClose: {},
    closedFlag: true,
    secondCloseThrew: 0,
  };
  const count = (bucket, key) => { bucket[key] = (bucket[key] || 0) + 1; };

  for (let round = 0; round < 16; round++) {
    const index = round % 2 ? 'flat' : 'hnsw';
    const db = new VectorDB({ dimension: DIM, metric: 'cosine', index });
    db.addBatch(base);
    const when = round % 4;
    let closeFromProgress = when === 3;
    /* handlers attached at once: a rejection before close() must not go unhandled */
    const capture = (p) => p.then((value) => ({ status: 'fulfilled', value }), (reason) => ({ status: 'rejected', reason }));
    const ops = [
      db.addBatchAsync(extra, {
        onProgress() {
          if (closeFromProgress) {
            closeFromProgress = false;
            db.close();
          }
        },
      }),
      db.searchBatchAsync(queries, 10),
      db.searchAsync(queries.subarray(0, DIM), 5),
      db.searchAsync(queries.subarray(DIM, 2 * DIM), 5),
    ].map(capture);
    if (when === 0) db.close();
    else if (when === 1) { await tick(); db.close(); }
    else if (when === 2) { await Promise.race(ops.slice(2)); db.close(); }
    else {
      /* when === 3: closed from onProgress (at the latest its closing
       * done === total report, before the batch resolves); once the batch
       * has settled, close() here if that did not happen. */
      await ops[0];
      if (!db.closed) db.close();
    }
    if (db.closed !== true) out.closedFlag = false;

    /* calls after close */
    try { db.search(queries.subarray(0, DIM), 1); count(out.afterClose, 'no-throw'); } catch (e) { count(out.afterClose, e.code); }
    try { db.add('late', queries.subarray(0, DIM)); count(out.afterClose, 'no-throw'); } catch (e) { count(out.afterClose, e.code); }
    let late;
    try { late = db.searchAsync(queries.subarray(0, DIM), 1); } catch (e) { count(out.afterClose, `sync-throw:${e.code}`); }
    const lateDone = late
      ? late.then(() => count(out.afterClose, 'late-resolved'), (e) => count(out.afterClose, e.code))
      : Promise.resolve();

    const settled = await Promise.race([
      Promise.all([...ops, lateDone]).then((all) => all.slice(0, ops.length)),
      /* unref'd so a finished run does not wait for it */
      new Promise((resolve) => setTimeout(resolve, 20000, null).unref()),
    ]);
    if (settled === null) {
      out.hung++;
      break;
    }
    for (const [i, s] of settled.entries()) {
      if (s.status === 'fulfilled') {
        out.fulfilled++;
        if (i === 1 && !(Array.isArray(s.value) && s.value.length === 200)) out.badResults++;
        if ((i === 2 || i === 3) && !(Array.isArray(s.value) && s.value.length === 5)) out.badResults++;
      } else {
        const info = errInfo(s.reason);
        if (!info.vecvault) out.foreign.push(info);
        count(out.rejected, info.code);
      }
    }
    try { db.close(); } catch (e) { out.secondCloseThrew++; }
    out.rounds++;
  }
  report(out);
}

main().catch((e) => {
  console.error(e);
  process.exit(3);
});
