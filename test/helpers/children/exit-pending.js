'use strict';
/*
 * exit-pending.js <mode>: leave the process with databases open and work in
 * flight. `exit`: process.exit(0) while adds and searches run (on the loop
 * turn after the first progress report of an add, so a worker has certainly
 * started, whatever the machine's speed); `natural`: the
 * script just ends (never closes), letting pending work finish. Either way
 * the process must exit with status 0: no crash in environment teardown.
 */
const { vecvault, randomFlat, items, report } = require('./common');

const mode = process.argv[2] || 'exit';
const { VectorDB } = vecvault();
const DIM = 32;
const dbs = [];
for (let i = 0; i < 3; i++) {
  const db = new VectorDB({ dimension: DIM, index: i === 2 ? 'flat' : 'hnsw' });
  db.addBatch(items(randomFlat(1000, DIM, 20 + i), DIM));
  dbs.push(db);
}
let settled = 0;
let exiting = false;
function exitSoon() {
  if (mode !== 'exit' || exiting) return;
  exiting = true;
  setImmediate(() => {
    report({ mode, settledBeforeExit: settled });
    process.exit(0);
  });
}
const pending = [];
for (const db of dbs) {
  pending.push(db.addBatchAsync(items(randomFlat(3000, DIM, 30), DIM, 'x'), { onProgress: exitSoon }));
  pending.push(db.searchBatchAsync(randomFlat(500, DIM, 31), 10));
}
for (const p of pending) p.then(() => { settled++; }, () => { settled++; });

if (mode !== 'exit') process.on('exit', () => report({ mode, settled, pending: pending.length }));
