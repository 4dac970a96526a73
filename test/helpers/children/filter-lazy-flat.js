'use strict';
/*
 * filter-lazy-flat.js: the differential test of filtered search on a
 * lazily loaded session of the flat index, in a process of its own (a
 * crash there must fail one test, not the suite). argv[2] is the metric.
 * Prints { ok: true, spread } or { ok: false, error }.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { vecvault, report } = require('./common');
const fdb = require('../filter-db');

async function main() {
  const { VectorDB } = vecvault();
  const metric = process.argv[2] || 'l2';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-lazyflat-'));
  try {
    const { db, live } = fdb.buildDb({ metric, index: 'flat', n: 600, seed: 41, open: (o) => new VectorDB(o) });
    await db.save(dir);
    db.close();
    const lazy = await VectorDB.load(dir, { lazy: true });
    if (!lazy.loadStats.lazy) throw new Error('not lazy');
    const spread = fdb.differential(lazy, live, { metric, seed: 42, filters: 20, what: `lazy flat ${metric}` });
    lazy.close();
    report({ ok: true, spread });
  } catch (e) {
    report({ ok: false, error: String(e && e.stack) });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
