'use strict';
// The measurements of the lazy benchmark. Each runs in a fresh child process
// (`node --expose-gc bench/lazy/tasks.js <task> --json '{...}'`) and prints
// one JSON object, so its RSS, its cache and the OS's view of it are its own.
//
//   open        VectorDB.load(lazy) to the first search's result
//   hnswlib     hnswlib-node readIndex to the first searchKnn result
//   lazy        a cache of a fifth of the vectors, from empty: one pass over
//               the queries (latency, bytes read per query, ids), then RSS
//   inmem       the same session loaded with lazy: false: a pass at defaults
//               and an efSearch sweep
//   warm        lazy with a cache that holds everything, filled first: the
//               same pass and sweep
//   same        the same queries cold (cache emptied before each) and warm at
//               three cache sizes: are the id lists identical?
//   concurrent  searchAsync calls in flight and searchBatchAsync on threads,
//               cacheStats().bytes sampled against capacityBytes throughout

const fs = require('fs');
const path = require('path');
const { dataset, KEY } = require('./datasets');
const { now, cpuSnapshot, otherLoad, memStatus } = require('../measure');

const REPO = path.join(__dirname, '..', '..');
const VECVAULT_MODULE = process.env.VECVAULT_MODULE ? path.resolve(process.env.VECVAULT_MODULE) : REPO;
const K = 10;
const MIB = 2 ** 20;
const log = (...a) => console.error(...a);
const gc = () => { if (global.gc) { global.gc(); global.gc(); } };

// ---------------------------------------------------------------- grading

// The .gt file format of data.js (magic, version, nq, k, ids, dists).
function readGtFile(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 16 || buf.readUInt32LE(0) !== 0x54475656 || buf.readUInt32LE(4) !== 1) throw new Error(`${file}: not a ground-truth file`);
  const nq = buf.readUInt32LE(8), k = buf.readUInt32LE(12);
  if (buf.length !== 16 + nq * k * 12) throw new Error(`${file}: truncated`);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  return { nq, k, ids: new Int32Array(ab, 16, nq * k), dists: new Float64Array(ab, 16 + nq * k * 4, nq * k) };
}

// ann-benchmarks' recall: a returned id counts when its exact distance is no
// larger than the true k-th neighbour's (ties are not misses). An id outside
// the top-100 ground truth is farther than the 10th, so a miss.
function recallOf(ids, nq, gt) {
  let hits = 0;
  for (let q = 0; q < nq; q++) {
    const g = q * gt.k;
    const kth = gt.dists[g + K - 1];
    const threshold = kth + Math.abs(kth) * 1e-9 + 1e-12;
    const seen = new Set();
    for (let j = 0; j < K; j++) {
      const id = ids[q * K + j];
      if (id < 0 || seen.has(id)) continue;
      seen.add(id);
      for (let t = 0; t < gt.k; t++) {
        if (gt.ids[g + t] === id) { if (gt.dists[g + t] <= threshold) hits++; break; }
      }
    }
  }
  return hits / (nq * K);
}

function latencyStats(lat) {
  const v = Float64Array.from(lat).sort();
  const at = (q) => v[Math.min(v.length - 1, Math.floor(q * v.length))];
  let sum = 0;
  for (const x of v) sum += x;
  return { n: v.length, meanMs: sum / v.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: v[v.length - 1], qps: (1000 * v.length) / sum };
}

// ---------------------------------------------------------------- a child's context

function context(o) {
  const ds = dataset(o.dataset, o.size);
  const nq = o.queries;
  const queries = ds.queries(nq);
  const gt = readGtFile(o.gt);
  if (gt.nq < nq) throw new Error(`ground truth has ${gt.nq} queries, fewer than ${nq}`);
  return {
    ds, nq, gt, o,
    q: (i) => queries.subarray(i * ds.dim, (i + 1) * ds.dim),
    recall: (ids, n = nq) => recallOf(ids, n, gt),
  };
}

function vecvault() {
  return require(VECVAULT_MODULE).VectorDB;
}

const openLazy = (VectorDB, o, cacheMb, extra = {}) => VectorDB.load(o.session, { key: KEY, lazy: true, cacheSizeMb: cacheMb, ...extra });

// The search options of a setting: {} is the engine's defaults.
const opts = (ef) => (ef ? { efSearch: ef } : {});

function putIds(r, ids, off) {
  for (let j = 0; j < K; j++) ids[off + j] = j < r.length ? Number(r[j].id) : -1;
}

/**
 * One pass over the first n queries, one search call each on the JS thread.
 * `each(i)` runs outside the timed window after every query (cache sampling).
 */
function pass(ctx, search, n = ctx.nq, each = null) {
  const ids = new Int32Array(n * K);
  const lat = new Float64Array(n);
  let last = now();
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const r = search(ctx.q(i));
    lat[i] = Number(process.hrtime.bigint() - t0) / 1e6;
    putIds(r, ids, i * K);
    if (each) each(i);
    if (now() - last > 60) { last = now(); log(`[lazy]   ${ctx.o.task}: ${i + 1}/${n} queries`); }
  }
  return { ids, lat };
}

// Passes until minTime seconds of search; recall from the first.
function timed(ctx, search) {
  const first = pass(ctx, search);
  const lats = [first.lat];
  let total = first.lat.reduce((a, b) => a + b, 0) / 1000;
  while (total < ctx.o.minTime && lats.length < 50) {
    const r = pass(ctx, search);
    lats.push(r.lat);
    total += r.lat.reduce((a, b) => a + b, 0) / 1000;
  }
  const all = Float64Array.from(lats.flatMap((l) => Array.from(l)));
  return { ids: first.ids, recall: ctx.recall(first.ids), passes: lats.length, ...latencyStats(all) };
}

// The headline at defaults, then each efSearch of the sweep (one untimed
// pass first: another beam touches other vectors).
function sweep(ctx, db) {
  const out = [];
  for (const ef of ctx.o.efs) {
    const search = (q) => db.search(q, K, opts(ef));
    pass(ctx, search);
    const r = timed(ctx, search);
    out.push({ ef, recall: r.recall, qps: r.qps, meanMs: r.meanMs, p50Ms: r.p50Ms, p99Ms: r.p99Ms });
    log(`[lazy]   ${ctx.o.task}: ef ${ef}: recall ${r.recall.toFixed(4)}, ${r.qps.toFixed(0)} QPS`);
  }
  return out;
}

const idsOut = (ids) => Array.from(ids);

// ---------------------------------------------------------------- tasks

const TASKS = {
  async open(ctx) {
    const VectorDB = vecvault();
    gc();
    const c0 = cpuSnapshot();
    const t = now();
    const db = await openLazy(VectorDB, ctx.o, ctx.o.cacheMb);
    const loadSec = now() - t;
    const r = db.search(ctx.q(0), K);
    const firstResultSec = now() - t;
    const out = { loadSec, firstResultSec, top1: r.length ? Number(r[0].id) : null, loadStats: db.loadStats, count: db.size,
      otherLoad: otherLoad(c0, cpuSnapshot()), peak: memStatus().peak };
    db.close();
    return out;
  },

  async hnswlib(ctx) {
    const { HierarchicalNSW } = require('hnswlib-node');
    const q0 = Array.from(ctx.q(0));
    gc();
    const c0 = cpuSnapshot();
    const t = now();
    const index = new HierarchicalNSW(ctx.ds.metric, ctx.ds.dim);
    await index.readIndex(ctx.o.hnswlib);
    const loadSec = now() - t;
    index.setEf(64);
    const r = index.searchKnn(q0, K);
    const firstResultSec = now() - t;
    return { loadSec, firstResultSec, top1: r.neighbors[0], otherLoad: otherLoad(c0, cpuSnapshot()), rss: memStatus().rss, peak: memStatus().peak };
  },

  // A fifth of the vectors in cache, from empty, default options.
  async lazy(ctx) {
    const VectorDB = vecvault();
    gc();
    const rssBefore = memStatus().rss;
    const db = await openLazy(VectorDB, ctx.o, ctx.o.cacheMb);
    const bytesRead = new Float64Array(ctx.nq);
    let prev = db.cacheStats();
    const startStats = prev;
    let maxBytes = prev.bytes;
    const c0 = cpuSnapshot();
    const r = pass(ctx, (q) => db.search(q, K), ctx.nq, (i) => {
      const s = db.cacheStats();
      bytesRead[i] = s.bytesRead - prev.bytesRead;
      if (s.bytes > maxBytes) maxBytes = s.bytes;
      prev = s;
    });
    const load = otherLoad(c0, cpuSnapshot());
    gc();
    const rssAfter = memStatus().rss;
    const stats = db.cacheStats();
    const br = latencyStats(bytesRead); // the same order statistics, in bytes
    const out = {
      cacheSizeMb: ctx.o.cacheMb, capacityBytes: stats.capacityBytes, loadStats: db.loadStats,
      recall: ctx.recall(r.ids), latency: latencyStats(r.lat), otherLoad: load,
      bytesRead: { mean: br.meanMs, p50: br.p50Ms, p99: br.p99Ms, max: br.maxMs, first: bytesRead[0], atOpen: startStats.bytesRead },
      cache: { start: startStats, end: stats, maxBytes },
      rssBefore, rssAfter, peak: memStatus().peak, ids: idsOut(r.ids),
    };
    db.close();
    return out;
  },

  async inmem(ctx) {
    const VectorDB = vecvault();
    gc();
    const rssBefore = memStatus().rss;
    const t = now();
    const db = await VectorDB.load(ctx.o.session, { key: KEY, lazy: false });
    const loadSec = now() - t;
    const rssAfterOpen = memStatus().rss;
    const c0 = cpuSnapshot();
    pass(ctx, (q) => db.search(q, K)); // warm-up
    const d = timed(ctx, (q) => db.search(q, K));
    const defaults = { ...d, ids: undefined };
    const efs = sweep(ctx, db);
    const out = { loadSec, rssBefore, rssAfterOpen, defaults, sweep: efs, ids: idsOut(d.ids), otherLoad: otherLoad(c0, cpuSnapshot()), loadStats: db.loadStats };
    db.close();
    return out;
  },

  // Everything cached: preload() fills what fits, a pass at every setting
  // brings in the rest; evictions after that mean the cache was too small.
  async warm(ctx) {
    const VectorDB = vecvault();
    const db = await openLazy(VectorDB, ctx.o, ctx.o.fullCacheMb);
    const t = now();
    if (typeof db.preload === 'function') await db.preload();
    const preloadSec = now() - t;
    pass(ctx, (q) => db.search(q, K));
    for (const ef of ctx.o.efs) pass(ctx, (q) => db.search(q, K, opts(ef)));
    const before = db.cacheStats();
    const c0 = cpuSnapshot();
    const d = timed(ctx, (q) => db.search(q, K));
    const efs = sweep(ctx, db);
    const after = db.cacheStats();
    const out = {
      cacheSizeMb: ctx.o.fullCacheMb, preloadSec, defaults: { ...d, ids: undefined }, sweep: efs, ids: idsOut(d.ids),
      evictionsWhileTimed: after.evictions - before.evictions, bytesReadWhileTimed: after.bytesRead - before.bytesRead,
      cache: after, otherLoad: otherLoad(c0, cpuSnapshot()),
    };
    db.close();
    return out;
  },

  // The first detQueries queries at three cache sizes, cold (the cache
  // emptied before every query) and warm (a second pass): identical id lists?
  async same(ctx) {
    const VectorDB = vecvault();
    const n = Math.min(ctx.nq, ctx.o.detQueries);
    const runs = [];
    for (const cacheMb of ctx.o.detCacheMb) {
      const db = await openLazy(VectorDB, ctx.o, cacheMb);
      let notEmptied = 0;
      const cold = pass(ctx, (q) => {
        db.setCacheSize(1e-6); // drops everything cached
        db.setCacheSize(cacheMb);
        if (db.cacheStats().bytes > 0) notEmptied++;
        return db.search(q, K);
      }, n);
      pass(ctx, (q) => db.search(q, K), n);
      const warm = pass(ctx, (q) => db.search(q, K), n);
      runs.push({ cacheMb, cold: idsOut(cold.ids), warm: idsOut(warm.ids), recallCold: ctx.recall(cold.ids, n), recallWarm: ctx.recall(warm.ids, n), notEmptied,
        coldMeanMs: latencyStats(cold.lat).meanMs });
      log(`[lazy]   same: cacheSizeMb ${cacheMb.toFixed(1)} done`);
      db.close();
    }
    return { n, runs };
  },

  // Searches in flight at once: `inflight` searchAsync calls kept running
  // and a searchBatchAsync over all queries on the load's threads, with
  // cacheStats() sampled on a timer and after every completion.
  async concurrent(ctx) {
    const VectorDB = vecvault();
    const db = await openLazy(VectorDB, ctx.o, ctx.o.cacheMb, { threads: ctx.o.threads });
    const probe = { samples: 0, maxBytes: 0, over: 0, capacity: 0, maxRatio: 0 };
    const sample = () => {
      const s = db.cacheStats();
      probe.samples++;
      probe.capacity = s.capacityBytes;
      if (s.bytes > probe.maxBytes) probe.maxBytes = s.bytes;
      if (s.bytes > s.capacityBytes) probe.over++;
      probe.maxRatio = Math.max(probe.maxRatio, s.bytes / s.capacityBytes);
    };
    const timer = setInterval(sample, 1);
    const start = db.cacheStats();
    const n = Math.min(ctx.nq, ctx.o.concurrentQueries);
    const flat = new Float32Array(n * ctx.ds.dim);
    for (let i = 0; i < n; i++) flat.set(ctx.q(i), i * ctx.ds.dim);
    let next = 0;
    const single = async () => {
      while (next < n) {
        const i = next++;
        await db.searchAsync(ctx.q(n - 1 - i), K); // the other end of the list from the batch
        sample();
      }
    };
    const t = now();
    const batch = db.searchBatchAsync(flat, K).then((r) => { sample(); return r.length; });
    const [batched] = await Promise.all([batch, ...Array.from({ length: ctx.o.inflight }, single)]);
    clearInterval(timer);
    sample();
    const end = db.cacheStats();
    db.close();
    return { sec: now() - t, singles: n, batched, inflight: ctx.o.inflight, threads: ctx.o.threads, cacheSizeMb: ctx.o.cacheMb,
      ...probe, evictions: end.evictions - start.evictions, bytesRead: end.bytesRead - start.bytesRead };
  },
};

async function main(argv) {
  const task = argv[0];
  const o = JSON.parse(argv[argv.indexOf('--json') + 1]);
  o.task = task;
  if (!TASKS[task]) throw new Error(`lazy tasks: unknown task ${task}`);
  const ctx = context(o);
  const r = await TASKS[task](ctx);
  r.addon = addonStamp();
  process.stdout.write(JSON.stringify(r) + '\n');
}

// Which build of the addon a child measured: others may rebuild it mid-run.
function addonStamp() {
  try {
    const st = fs.statSync(path.join(VECVAULT_MODULE, 'build', 'Release', 'vecvault.node'));
    return `${st.mtime.toISOString()} ${st.size}`;
  } catch { return null; }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => { console.error(err.stack || err.message); process.exit(1); });
}

module.exports = { TASKS, recallOf, readGtFile, latencyStats, MIB, K };
