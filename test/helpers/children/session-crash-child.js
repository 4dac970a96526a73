'use strict';
/*
 * test/helpers/children/session-crash-child.js: the process that
 * 13.session.crash.js kills with SIGKILL while it saves.
 *
 * Usage: node session-crash-child.js DIR KEYHEX
 * Opens the session in DIR (or starts one), then loops forever: add the
 * batch of the next generation (helpers/session.js crashBatch), await the
 * save, print `ACK <generation> <size>`. The parent only reads the ACK lines
 * and checks the session on disk after the kill.
 */
const fs = require('node:fs');
const path = require('node:path');
const { vecvault } = require('./common');
const s = require('../session');

async function main() {
  const [dir, keyHex] = process.argv.slice(2);
  const key = Buffer.from(keyHex, 'hex');
  const { VectorDB } = vecvault();
  let db;
  let gen = 0;
  if (fs.existsSync(path.join(dir, 'manifest.json'))) {
    db = await VectorDB.load(dir, { key });
    gen = db.loadStats.generation;
  } else {
    db = new VectorDB({ dimension: s.CRASH_DIM, metric: 'l2', chunkSize: 64, hnsw: { efConstruction: 32 }, key });
  }
  process.stdout.write(`OPEN ${gen} ${db.size}\n`);
  for (;;) {
    const next = gen + 1;
    db.addBatch(s.crashBatch(next));
    const st = await db.save(dir);
    if (st.generation !== next) throw new Error(`saved generation ${st.generation}, expected ${next}`);
    gen = next;
    process.stdout.write(`ACK ${gen} ${db.size}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`child failed: ${e && e.code} ${e && e.stack}\n`);
  process.exit(3);
});
