'use strict';
/*
 * test/helpers/children/session-crash-child.js: the process that
 * 13.session.crash.js kills with SIGKILL while it saves.
 *
 * Usage: node session-crash-child.js DIR KEYHEX KILL
 * Opens the session in DIR (or starts one), prints `OPEN <generation>
 * <size>`, then loops: add the batch of the next generation
 * (helpers/session.js crashBatch), await the save, print `ACK <generation>
 * <size>`. It sends itself SIGKILL at the point KILL names, from the JS
 * thread while the engine's worker runs on:
 *   load:R     at the R-th progress report of the load (or its last one)
 *   save:N:R   at the R-th progress report of its N-th save (or that save's
 *              last one, done === total, which comes after its commit)
 *   ack:N      right after printing ACK N (stdout to a pipe is synchronous)
 * So where the kill lands is chosen by the parent, not by a timer, and the
 * ACK lines it must see are known exactly. The parent checks the session
 * on disk after the kill.
 */
const fs = require('node:fs');
const path = require('node:path');
const { vecvault } = require('./common');
const s = require('../session');

const die = () => process.kill(process.pid, 'SIGKILL');

/* An onProgress that kills at the `at`-th report or the last one. */
function killAt(at) {
  let reports = 0;
  return (done, total) => {
    reports++;
    if (reports >= at || done === total) die();
  };
}

async function main() {
  const [dir, keyHex, kill] = process.argv.slice(2);
  const [where, a, b] = String(kill).split(':');
  if (!['load', 'save', 'ack'].includes(where)) throw new Error(`unknown kill point ${kill}`);
  const key = Buffer.from(keyHex, 'hex');
  const { VectorDB } = vecvault();
  let db;
  let gen = 0;
  if (fs.existsSync(path.join(dir, 'manifest.json'))) {
    db = await VectorDB.load(dir, { key, onProgress: where === 'load' ? killAt(Number(a)) : undefined });
    gen = db.loadStats.generation;
  } else {
    db = new VectorDB({ dimension: s.CRASH_DIM, metric: 'l2', chunkSize: 64, hnsw: { efConstruction: 32 }, key });
  }
  process.stdout.write(`OPEN ${gen} ${db.size}\n`);
  for (let saves = 1; ; saves++) {
    const next = gen + 1;
    db.addBatch(s.crashBatch(next));
    const onProgress = where === 'save' && saves === Number(a) ? killAt(Number(b)) : undefined;
    const st = await db.save(dir, { onProgress });
    if (st.generation !== next) throw new Error(`saved generation ${st.generation}, expected ${next}`);
    gen = next;
    process.stdout.write(`ACK ${gen} ${db.size}\n`);
    if (where === 'ack' && saves === Number(a)) die();
    if (saves > 10) throw new Error(`no kill point reached in 10 saves (${kill})`);
  }
}

main().catch((e) => {
  process.stderr.write(`child failed: ${e && e.code} ${e && e.stack}\n`);
  process.exit(3);
});
