'use strict';
// Lazy sessions and resident memory: does a process that searches a lazily
// loaded session stay near the chunk cache's bound, query after query?
//
// Chunks are megabytes each and come and go through the cache. If they went
// through malloc, glibc's heaps would fragment on them and never shrink
// (measured once at 6.2 GB resident after 1,000 queries through a 150 MB
// cache, 1M x 384). The engine maps and unmaps those blocks itself; this
// script checks that the result holds, without touching the host's malloc.
//
// It opens save-writes.js's cached 1M x 384 encrypted session (built by
// `npm run bench -- save-writes --sizes 1m` when missing) lazily in a fresh
// child process, runs --queries searches of seeded random queries with
// maxChunkReads: Infinity (every query re-ranks through chunks it reads, so
// chunks churn through the cache), and samples RSS every 100 queries. The
// table shows RSS against the cache bound and the cache's own bytes.
// VECVAULT_MODULE=/path/to/checkout measures another build on the same session.
//
// Usage: node bench/lazy-memory.js [--size 1m] [--queries 1000] [--cache-mb 150] [--out FILE]

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const data = require('./data');
const { sizeParams } = require('./session');
const { now, parseOptions, memStatus, machineInfo, runJsonChild } = require('./measure');

const REPO = path.join(__dirname, '..');
const VECVAULT_MODULE = process.env.VECVAULT_MODULE ? path.resolve(process.env.VECVAULT_MODULE) : REPO;
const SESSION = (size) => path.join(data.CACHE_DIR, 'save-writes', size, 'session');
const KEY = crypto.createHash('sha256').update('vecvault-bench session key v1').digest(); // public bench key
const MIB = 2 ** 20;
const log = (...a) => console.error(...a);

async function child(o) {
  const { VectorDB } = require(VECVAULT_MODULE);
  const p = sizeParams(o.size);
  const base = memStatus().rss;
  let t = now();
  const db = await VectorDB.load(SESSION(o.size), { key: KEY, cacheSizeMb: o.cacheMb });
  const openSec = now() - t;
  const afterOpen = memStatus().rss;
  const qs = data.synthetic(o.queries, p.dim, { seed: 9, clusters: p.clusters, normalize: true }).data;
  const samples = [];
  t = now();
  for (let i = 0; i < o.queries; i++) {
    await db.searchAsync(qs.subarray(i * p.dim, (i + 1) * p.dim), 10, { maxChunkReads: Infinity });
    if ((i + 1) % 100 === 0) {
      const c = db.cacheStats();
      samples.push({ queries: i + 1, rss: memStatus().rss, cacheBytes: c.bytes, chunksRead: c.misses });
    }
  }
  const searchSec = now() - t;
  const c = db.cacheStats();
  db.close();
  return { size: o.size, n: p.n, cacheMb: o.cacheMb, baseRss: base, afterOpen, openSec, searchSec, samples,
    peakRss: memStatus().peak, chunksRead: c.misses, bytesRead: c.bytesRead };
}

const mb = (b) => (b / MIB).toFixed(0);

async function main(argv) {
  const o = parseOptions('lazy-memory.js', argv, { size: '1m', queries: 1000, cacheMb: 150, out: null },
    { '--size': 'size', '--queries': 'queries', '--cache-mb': 'cacheMb', '--out': 'out', '--worker': 'worker' },
    {}, ['queries', 'cacheMb']);
  if (o.help) { log(fs.readFileSync(__filename, 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n')); return 0; }
  if (o.worker) { process.stdout.write(JSON.stringify(await child(o)) + '\n'); return 0; }
  if (!fs.existsSync(path.join(SESSION(o.size), 'manifest.json'))) {
    throw new Error(`no cached session at ${SESSION(o.size)}: run npm run bench -- save-writes --sizes ${o.size} first`);
  }
  const r = await runJsonChild(process.execPath,
    ['--expose-gc', __filename, '--worker', '1', '--size', o.size, '--queries', o.queries, '--cache-mb', o.cacheMb],
    { timeoutMin: 120, cwd: __dirname });
  if (r.error) throw new Error(r.error);
  console.log(`${r.size} x 384, lazy, cacheSizeMb ${r.cacheMb}: Node alone ${mb(r.baseRss)} MB, after open ${mb(r.afterOpen)} MB ` +
    `(open ${r.openSec.toFixed(2)} s); ${r.chunksRead} chunks read (${mb(r.bytesRead)} MB) in ${r.searchSec.toFixed(1)} s`);
  console.log('queries   RSS MB   cache MB   RSS - cache bound MB');
  for (const s of r.samples) {
    console.log(`${String(s.queries).padStart(7)}  ${mb(s.rss).padStart(7)}  ${mb(s.cacheBytes).padStart(9)}  ${mb(s.rss - r.cacheMb * MIB).padStart(21)}`);
  }
  console.log(`peak RSS ${mb(r.peakRss)} MB`);
  const out = o.out || path.join(__dirname, 'results', `lazy-memory-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ machine: machineInfo(), module: VECVAULT_MODULE, options: o, result: r }, null, 2));
  log(`[lazy-memory] wrote ${out}`);
  return 0;
}

main(process.argv.slice(2)).then((c) => { process.exitCode = c; }, (e) => { log(e.stack || String(e)); process.exitCode = 1; });
