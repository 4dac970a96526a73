'use strict';
// Lazy loading: how fast an encrypted session opens to its first
// result when only the manifest, the graph and the PQ codes are read, how much
// memory it holds while vector chunks come and go through the byte-bounded
// cache, how many chunks a query touches on an empty cache, and what search
// costs once warm, against the same session loaded eagerly and against
// hnswlib-node's readIndex of the same data.
//
// Each size's version-2 session is prepared once and cached outside the repo
// under ~/.cache/vecvault-bench/lazy/<size>/ (converted from session.js's
// cached session when there is one, built otherwise); so are the hnswlib-node
// index (session.js's is reused when valid) and the exact ground truth. Every
// measurement then runs in a fresh child process (`node --expose-gc
// bench/lazy.js --worker <task> ...`) that prints one JSON object, so its RSS
// and its chunk cache are its own. Tables show medians over --repeats runs.
//
// Usage: node bench/lazy.js [--sizes 100k,1m] [--repeats 3] [--queries 1000]
//          [--cache-mb 150] [--ef 64,32,128] [--rebuild] [--skip-peers] [--out FILE]

const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const data = require('./data');
const { sizeParams, median, buildHnswlib, buildVecvault } = require('./session');
const { now, cpuSnapshot, otherLoad, parseOptions, memStatus, diskUsage, readVersion, machineInfo, runJsonChild } = require('./measure');

const REPO = path.join(__dirname, '..');
const VECVAULT_MODULE = process.env.VECVAULT_MODULE ? path.resolve(process.env.VECVAULT_MODULE) : REPO;
const RESULTS_DIR = path.join(__dirname, 'results');
const LAZY_DIR = path.join(data.CACHE_DIR, 'lazy');
const SESSIONS_DIR = path.join(data.CACHE_DIR, 'sessions'); // session.js's cache, read only here
const CACHE_VERSION = 1;
const SESSION_CACHE_VERSION = 1; // session.js's params.json cacheVersion this script understands
const K = 10;
const GT_K = 100; // as ann.js: the same ground-truth files serve both scripts
const BUSY_CORES = 0.2;
const RECALL_SLACK = 0.02; // recall gap above which a same-ef QPS comparison is flagged
const MIB = 2 ** 20;
// The same fixed, public benchmark key as session.js, so its cached encrypted
// session can be converted. Never use a key derived like this for real data.
const KEY = crypto.createHash('sha256').update('vecvault-bench session key v1').digest();

const TARGETS = {
  openSec1m: 1, // lazy open to first result at 1M
  openVsReadIndex: 5, // ... at least 5x faster than hnswlib-node readIndex + first search
  residentBytesPerVector: 350, // RSS <= cacheSizeMb + 350 B x n
  coldChunksPerQuery: 3, // mean chunks read by a query on an empty cache
  recall: 0.95, // warm recall@10 at the headline efSearch
  warmOverInMemory: 0.8, // warm QPS (cache holding everything) / eager QPS
};
// The first plan for lazy loading, at 100K: we report how far past it we are.
const SEED_PLAN = { loadSec: 5, warmSearchMs: 100, memoryMB: 200, chunksCached: 10 };

// ---------------------------------------------------------------- small helpers

const log = (...a) => console.error(...a);
const gc = () => { if (global.gc) { global.gc(); global.gc(); } };
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Errors that say this vecvault build lacks part of the lazy-loading API.
const MISSING_FEATURE = /has not landed|rejected by this build|has no db\./;




const LIB_DIRS = { vecvault: VECVAULT_MODULE, hnswlib: path.join(__dirname, 'node_modules', 'hnswlib-node') };

// The addon may be rebuilt by someone else while we run: a failed require is
// retried for a minute before it counts.
function loadVecvault() {
  for (let attempt = 1; ; attempt++) {
    try {
      return require(VECVAULT_MODULE).VectorDB;
    } catch (err) {
      const msg = String(err.message).split('\n')[0];
      if (attempt >= 7) throw new Error(`vecvault did not load from ${VECVAULT_MODULE} (run \`npm run build\` in the repo root): ${msg}`);
      log(`[lazy] require(vecvault) failed (${msg}); the addon may be being rebuilt, retrying in 10 s`);
      for (const k of Object.keys(require.cache)) if (k.startsWith(VECVAULT_MODULE + path.sep)) delete require.cache[k];
      sleepSync(10e3);
    }
  }
}

// Which build of the addon a child measured: others rebuild it while we run,
// and a report that mixes builds says so.
function addonStamp() {
  try {
    const st = fs.statSync(path.join(VECVAULT_MODULE, 'build', 'Release', 'vecvault.node'));
    return `${st.mtime.toISOString()} ${st.size}`;
  } catch { return null; }
}

// ---------------------------------------------------------------- data

const datasetName = (tag) => `synthetic-${tag}-${sizeParams(tag).dim}-angular`; // ann.js's name

function baseData(p) {
  return data.synthetic(p.n, p.dim, { seed: p.seed, clusters: p.clusters, normalize: true }).data;
}

// Queries as ann.js and session.js make them: the same centres, seed 2.
function queryData(p, nq) {
  return data.synthetic(nq, p.dim, { seed: 2, clusters: p.clusters, normalize: true }).data;
}

// session.js's fingerprint (sha256 of the first 1000 generated rows), so its
// params.json can be checked with the same rule it uses itself.
function dataFingerprint(p) {
  const head = data.synthetic(Math.min(p.n, 1000), p.dim, { seed: p.seed, clusters: p.clusters, normalize: true }).data;
  return crypto.createHash('sha256').update(Buffer.from(head.buffer, head.byteOffset, head.byteLength)).digest('hex').slice(0, 16);
}

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
// larger than the true k-th neighbour's. Exact distances come from the top-100
// ground truth; an id outside it is farther than the 10th, so a miss.
function recallOf(ids, nq, k, gt) {
  let hits = 0;
  for (let q = 0; q < nq; q++) {
    const g = q * gt.k;
    const kth = gt.dists[g + k - 1];
    const threshold = kth + Math.abs(kth) * 1e-9 + 1e-12;
    const seen = new Set();
    for (let j = 0; j < k; j++) {
      const id = ids[q * k + j];
      if (id < 0 || seen.has(id)) continue;
      seen.add(id);
      for (let t = 0; t < gt.k; t++) {
        if (gt.ids[g + t] === id) { if (gt.dists[g + t] <= threshold) hits++; break; }
      }
    }
  }
  return hits / (nq * k);
}

// ---------------------------------------------------------------- measuring in a child

function latencyStats(lat) {
  const v = Float64Array.from(lat).sort();
  const at = (q) => v[Math.min(v.length - 1, Math.floor(q * v.length))];
  let sum = 0;
  for (const x of v) sum += x;
  return { n: v.length, meanMs: sum / v.length, p50Ms: at(0.5), p95Ms: at(0.95), p99Ms: at(0.99), maxMs: v[v.length - 1], qps: (1000 * v.length) / sum };
}

function dist(values) {
  const s = latencyStats(values);
  return { mean: s.meanMs, p50: s.p50Ms, p95: s.p95Ms, p99: s.p99Ms, max: s.maxMs };
}

// Cache counters over a stretch of queries. `bytes` is sampled after every
// query (outside the timed window): its maximum must stay within capacity.
function cacheProbe(db) {
  if (!db || typeof db.cacheStats !== 'function') return null;
  const probe = { max: 0, over: 0, samples: 0, capacity: 0 };
  probe.sample = () => {
    const s = db.cacheStats();
    probe.samples++;
    probe.capacity = s.capacityBytes;
    if (s.bytes > probe.max) probe.max = s.bytes;
    if (s.bytes > s.capacityBytes) probe.over++;
    return s;
  };
  return probe;
}

function cacheDelta(a, b, nq) {
  if (!a || !b) return null;
  const d = {};
  for (const f of ['hits', 'misses', 'evictions', 'bytesRead']) d[f] = b[f] - a[f];
  d.hitRate = d.hits + d.misses > 0 ? d.hits / (d.hits + d.misses) : null;
  d.chunksPerQuery = d.misses / nq;
  d.bytesReadPerQuery = d.bytesRead / nq;
  return d;
}

// One pass over the queries, one call per query on the JS thread. Latency is
// per call; QPS = queries / summed latency (the same rule for every mode).
function pass(ctx, search, probe) {
  const { nq } = ctx;
  const ids = new Int32Array(nq * K).fill(-1);
  const lat = new Float64Array(nq);
  const c0 = probe ? probe.sample() : null;
  let lastLog = now();
  for (let i = 0; i < nq; i++) {
    const t0 = process.hrtime.bigint();
    const r = search(i);
    lat[i] = Number(process.hrtime.bigint() - t0) / 1e6;
    ctx.toIds(r, ids, i * K);
    if (probe) probe.sample();
    if (now() - lastLog > 60) { lastLog = now(); log(`[lazy]   ${ctx.task}: ${i + 1}/${nq} queries of a pass`); }
  }
  const c1 = probe ? probe.sample() : null;
  return { ids, lat, cache: cacheDelta(c0, c1, nq) };
}

// A warm measurement: passes until minTime seconds of search time; recall
// from the first of them.
function warmPasses(ctx, search, probe) {
  const first = pass(ctx, search, probe);
  const lats = [first.lat];
  let total = first.lat.reduce((a, b) => a + b, 0) / 1000;
  const cache = [first.cache];
  while (total < ctx.minTime && lats.length < 50) {
    const r = pass(ctx, search, probe);
    lats.push(r.lat);
    cache.push(r.cache);
    total += r.lat.reduce((a, b) => a + b, 0) / 1000;
  }
  const all = new Float64Array(lats.reduce((a, l) => a + l.length, 0));
  let off = 0;
  for (const l of lats) { all.set(l, off); off += l.length; }
  const sumCache = cache[0] ? cacheDelta({ hits: 0, misses: 0, evictions: 0, bytesRead: 0 },
    cache.reduce((a, c) => ({ hits: a.hits + c.hits, misses: a.misses + c.misses, evictions: a.evictions + c.evictions, bytesRead: a.bytesRead + c.bytesRead }),
      { hits: 0, misses: 0, evictions: 0, bytesRead: 0 }), all.length) : null;
  return { ids: first.ids, passes: lats.length, ...latencyStats(all), cache: sumCache };
}

const summarizePass = (r) => ({ ...latencyStats(r.lat), cache: r.cache });

function makeCtx(o, p) {
  const nq = Math.round(Number(o.queries));
  const queries = queryData(p, nq);
  const q = (i) => queries.subarray(i * p.dim, (i + 1) * p.dim);
  return {
    task: o.worker, p, nq, queries, q, settings: o.settings, s0: o.settings[0], efSettings: efSettings(o.settings), minTime: Number(o.minTime),
    toIds(r, ids, off) { for (let j = 0; j < r.length && j < K; j++) ids[off + j] = Number(r[j].id); },
  };
}

function grade(o, ctx, ids, nq = ctx.nq) {
  if (!o.gt) return null;
  const gt = readGtFile(o.gt);
  return recallOf(ids, Math.min(nq, gt.nq), K, gt);
}

// A search setting is { ef, rerank }; rerank null = the engine's default, and
// only lazy searches get it (eager and hnswlib-node searches have no rerank).
const searchOpts = (st, lazy) => (lazy && st.rerank !== null ? { efSearch: st.ef, rerank: st.rerank } : { efSearch: st.ef });
const settingLabel = (st) => `ef ${st.ef}${st.rerank === null ? '' : ` rerank ${st.rerank}`}`;
const sameSetting = (a, b) => a.ef === b.ef && a.rerank === b.rerank;

// The headline setting first, then the other efs at the headline rerank,
// then the other reranks at the headline ef.
function searchSettings(efs, reranks) {
  const out = [{ ef: efs[0], rerank: reranks[0] }];
  for (const ef of efs.slice(1)) out.push({ ef, rerank: reranks[0] });
  for (const rerank of reranks.slice(1)) out.push({ ef: efs[0], rerank });
  return out.filter((st, i) => out.findIndex((x) => sameSetting(x, st)) === i);
}

// For searches without rerank: one setting per ef, headline first.
function efSettings(settings) {
  const out = [];
  for (const st of settings) if (!out.some((x) => x.ef === st.ef)) out.push({ ef: st.ef, rerank: null });
  return out;
}

// Fails with a message that names what this build lacks, not with a
// TypeError deep inside a measurement.
function requireApi(db, names) {
  const missing = names.filter((n) => typeof db[n] !== 'function');
  if (missing.length) {
    throw new Error(`this vecvault build has no ${missing.map((n) => `db.${n}()`).join(', ')} (lazy loading is not in ${VECVAULT_MODULE})`);
  }
}

async function loadLazy(VectorDB, dir, cacheMb) {
  try {
    return await VectorDB.load(dir, { key: KEY, lazy: true, cacheSizeMb: cacheMb });
  } catch (err) {
    if (err.code === 'ERR_INVALID_ARGUMENT' && /lazy|cacheSizeMb/.test(err.message)) {
      throw new Error(`VectorDB.load(dir, { lazy: true, cacheSizeMb: ${cacheMb} }) is rejected by this build: lazy loading has not landed yet (${err.code}: ${err.message})`);
    }
    throw err;
  }
}

function firstSearch(db, ctx, lazy) {
  try {
    return db.search(ctx.q(0), K, searchOpts(ctx.s0, lazy));
  } catch (err) {
    if (err.code === 'ERR_INVALID_ARGUMENT' && /rerank/.test(err.message)) {
      throw new Error(`db.search(q, k, { rerank }) is rejected by this build (${err.message}); run without --rerank`);
    }
    throw err;
  }
}

function lazyFlags(db) {
  const ls = db.loadStats || {};
  if (ls.lazy !== true) log(`[lazy] WARNING: loaded with lazy: true but loadStats.lazy is ${ls.lazy} (a format version 1 session, or an engine that read everything)`);
  return ls;
}

// The sweep after the headline setting: one untimed warm-up pass per setting
// (another beam touches other chunks), then warm passes.
function sweep(o, ctx, makeSearch, probe, settings = ctx.settings) {
  const out = [];
  for (const st of settings.slice(1)) {
    const search = makeSearch(st);
    pass(ctx, search, probe);
    const w = warmPasses(ctx, search, probe);
    out.push({ ...st, ...w, ids: undefined, recall: grade(o, ctx, w.ids) });
  }
  return out;
}

const TASKS = {
  // ---- preparation (once per size, cached)

  async gt(o, p) {
    const base = baseData(p);
    const queries = queryData(p, Number(o.queries));
    const t = now();
    const gt = await data.groundTruth(datasetName(o.size), base, queries, p.dim, p.metric, GT_K, { log });
    return { file: gt.file, cached: gt.cached, nq: queries.length / p.dim, k: gt.k, sec: now() - t };
  },

  // A version-2 session from session.js's cached (possibly version-1) one:
  // loaded eagerly, saved in full into a new directory.
  async convert(o) {
    const VectorDB = loadVecvault();
    const srcVersion = (await VectorDB.inspect(o.src)).version;
    let t = now();
    const db = await VectorDB.load(o.src, { key: KEY, lazy: false });
    const loadSec = now() - t;
    const tmp = `${o.dest}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    t = now();
    const save = await db.save(tmp);
    const saveSec = now() - t;
    const count = db.size;
    db.close();
    fs.rmSync(o.dest, { recursive: true, force: true });
    fs.renameSync(tmp, o.dest);
    return { route: 'converted', from: o.src, srcVersion, loadSec, saveSec, save, count, formatVersion: (await VectorDB.inspect(o.dest)).version };
  },

  // As session.js builds its encrypted session (addBatchAsync, all cores).
  async 'build-vecvault'(o, p) {
    const VectorDB = loadVecvault();
    const built = await buildVecvault(VectorDB, p, o.dest, true);
    return { route: 'built', ...built, formatVersion: (await VectorDB.inspect(o.dest)).version };
  },

  // As session.js: hnswlib-node's single-threaded addPoint loop.
  async 'build-hnswlib'(o, p) {
    return buildHnswlib(p, o.dest);
  },

  async inspect(o) {
    return { version: (await loadVecvault().inspect(o.dir)).version };
  },

  // ---- measurements

  // Lazy open to first result, then the 1000 queries at cacheSizeMb (memory
  // after them), then warm passes and the ef sweep at the same bound.
  async open(o, p) {
    const VectorDB = loadVecvault();
    const ctx = makeCtx(o, p);
    const cacheMb = Number(o.cacheMb);
    gc();
    const out = { rssBefore: memStatus().rss, cacheSizeMb: cacheMb };
    const c0 = cpuSnapshot();
    const t = now();
    const db = await loadLazy(VectorDB, o.dir, cacheMb);
    out.loadSec = now() - t;
    const first = firstSearch(db, ctx, true);
    out.firstResultSec = now() - t;
    out.otherLoad = { open: otherLoad(c0, cpuSnapshot()) };
    out.top1 = first.length ? Number(first[0].id) : null;
    out.loadStats = lazyFlags(db);
    out.count = db.size;
    out.rssAfterOpen = memStatus().rss;
    // Without cacheStats() (an engine half way there) memory and speed are
    // still measured; the cache columns stay empty and the run says why.
    const probe = cacheProbe(db);
    if (!probe) out.missing = ['db.cacheStats()'];
    const stats = () => (probe ? db.cacheStats() : null);
    out.cacheAfterFirst = stats();

    const search = (st) => { const so = searchOpts(st, true); return (i) => db.search(ctx.q(i), K, so); };
    const c1 = cpuSnapshot();
    const steady = pass(ctx, search(ctx.s0), probe);
    out.otherLoad.steady = otherLoad(c1, cpuSnapshot());
    gc();
    out.rssAfterQueries = process.memoryUsage().rss;
    out.peakAfterQueries = memStatus().peak;
    out.cacheAfterQueries = stats();
    out.budgetBytes = ((out.cacheAfterQueries && out.cacheAfterQueries.capacityBytes) || cacheMb * MIB) + TARGETS.residentBytesPerVector * p.n;
    out.steady = summarizePass(steady);

    const c2 = cpuSnapshot();
    const warm = warmPasses(ctx, search(ctx.s0), probe);
    out.otherLoad.warm = otherLoad(c2, cpuSnapshot());
    // With a cache much smaller than the data (1M at 150 MB) a pass can take
    // minutes: the sweep at this bound is skipped when it would exceed its
    // budget (the full-cache and cold runs still sweep).
    const sweepSec = (2 * ctx.nq * warm.meanMs / 1000) * (ctx.settings.length - 1);
    if (sweepSec > Number(o.sweepBudget)) {
      out.sweep = [];
      out.sweepSkipped = `a pass takes ${fmt(ctx.nq * warm.meanMs / 1000, 0)} s; the sweep would take about ${fmt(sweepSec, 0)} s (> --sweep-budget ${o.sweepBudget})`;
      log(`[lazy] open: sweep at cacheSizeMb ${cacheMb} skipped: ${out.sweepSkipped}`);
    } else {
      out.sweep = sweep(o, ctx, search, probe);
    }
    if (probe) {
      Object.assign(out, { maxCacheBytes: probe.max, capacityBytes: probe.capacity, samplesOverCapacity: probe.over, cacheSamples: probe.samples });
    }
    out.cacheEnd = stats();
    db.close();

    out.steady.recall = grade(o, ctx, steady.ids);
    out.warm = { ...warm, ids: undefined, recall: grade(o, ctx, warm.ids) };
    return out;
  },

  // Every query starts with an empty cache: setCacheSize(1e-6) drops every
  // chunk, then the bound goes back. Chunks per query = cache misses.
  async cold(o, p) {
    const VectorDB = loadVecvault();
    const ctx = makeCtx(o, p);
    const cacheMb = Number(o.cacheMb);
    const nc = Math.min(ctx.nq, Math.round(Number(o.coldQueries)));
    const db = await loadLazy(VectorDB, o.dir, cacheMb);
    const out = { loadStats: lazyFlags(db), cacheSizeMb: cacheMb, queries: nc, bySetting: [] };
    requireApi(db, ['cacheStats', 'setCacheSize']);
    const probe = cacheProbe(db);
    const c0 = cpuSnapshot();
    // Cold queries are slow (every one reads its chunks again): the headline
    // setting only, unless --cold-sweep.
    for (const st of o.coldSweep ? ctx.settings : [ctx.s0]) {
      const so = searchOpts(st, true);
      const chunks = new Float64Array(nc), bytes = new Float64Array(nc), lat = new Float64Array(nc);
      const ids = new Int32Array(nc * K).fill(-1);
      let notEmptied = 0;
      for (let i = 0; i < nc; i++) {
        db.setCacheSize(1e-6);
        const s0 = db.cacheStats();
        if (s0.bytes !== 0 || (s0.chunksCached || 0) !== 0) notEmptied++;
        db.setCacheSize(cacheMb);
        const t0 = process.hrtime.bigint();
        const r = db.search(ctx.q(i), K, so);
        lat[i] = Number(process.hrtime.bigint() - t0) / 1e6;
        const s1 = probe.sample();
        chunks[i] = s1.misses - s0.misses;
        bytes[i] = s1.bytesRead - s0.bytesRead;
        ctx.toIds(r, ids, i * K);
      }
      out.bySetting.push({ ...st, chunks: dist(chunks), bytesRead: dist(bytes), latency: latencyStats(lat), notEmptied, recall: grade(o, ctx, ids, nc) });
    }
    out.otherLoad = { cold: otherLoad(c0, cpuSnapshot()) };
    out.maxCacheBytes = probe.max;
    out.samplesOverCapacity = probe.over;
    db.close();
    return out;
  },

  // Lazy, with a cache that holds every chunk (preloaded): the best warm case.
  async full(o, p) {
    const VectorDB = loadVecvault();
    const ctx = makeCtx(o, p);
    const cacheMb = Number(o.cacheMb);
    const t = now();
    const db = await loadLazy(VectorDB, o.dir, cacheMb);
    const out = { loadSec: now() - t, loadStats: lazyFlags(db), cacheSizeMb: cacheMb };
    const probe = cacheProbe(db);
    if (!probe) out.missing = ['db.cacheStats()'];
    const stats = () => (probe ? db.cacheStats() : null);
    if (typeof db.preload === 'function') {
      const t1 = now();
      out.preloaded = await db.preload();
      out.preloadSec = now() - t1;
    } else {
      out.preloadSec = null;
      log('[lazy] WARNING: this build has no db.preload(); the warm-up pass fills the cache instead');
    }
    out.cacheAfterPreload = stats();
    const search = (st) => { const so = searchOpts(st, true); return (i) => db.search(ctx.q(i), K, so); };
    out.firstPass = summarizePass(pass(ctx, search(ctx.s0), probe));
    const c0 = cpuSnapshot();
    const warm = warmPasses(ctx, search(ctx.s0), probe);
    out.otherLoad = { warm: otherLoad(c0, cpuSnapshot()) };
    gc();
    out.rss = memStatus().rss;
    out.cacheAfterWarm = stats();
    out.sweep = sweep(o, ctx, search, probe);
    if (probe) Object.assign(out, { maxCacheBytes: probe.max, samplesOverCapacity: probe.over });
    db.close();
    out.warm = { ...warm, ids: undefined, recall: grade(o, ctx, warm.ids) };
    return out;
  },

  // The in-memory reference: the same session loaded eagerly.
  async inmem(o, p) {
    const VectorDB = loadVecvault();
    const ctx = makeCtx(o, p);
    gc();
    const out = { rssBefore: memStatus().rss };
    const c0 = cpuSnapshot();
    const t = now();
    const db = await VectorDB.load(o.dir, { key: KEY, lazy: false });
    out.loadSec = now() - t;
    firstSearch(db, ctx, false);
    out.firstResultSec = now() - t;
    out.otherLoad = { open: otherLoad(c0, cpuSnapshot()) };
    out.loadStats = db.loadStats;
    out.count = db.size;
    gc();
    out.rssAfterOpen = memStatus().rss;
    const search = (st) => { const so = searchOpts(st, false); return (i) => db.search(ctx.q(i), K, so); };
    out.firstPass = summarizePass(pass(ctx, search(ctx.s0)));
    const c1 = cpuSnapshot();
    const warm = warmPasses(ctx, search(ctx.s0));
    out.otherLoad.warm = otherLoad(c1, cpuSnapshot());
    gc();
    out.rssAfterQueries = memStatus().rss;
    out.sweep = sweep(o, ctx, search, null, ctx.efSettings);
    db.close();
    out.warm = { ...warm, ids: undefined, recall: grade(o, ctx, warm.ids) };
    return out;
  },

  // hnswlib-node: readIndex + first search of the same data, RSS after
  // readIndex, and its search at the same ef for reference.
  async hnswlib(o, p) {
    const { HierarchicalNSW } = require('hnswlib-node');
    const ctx = makeCtx(o, p);
    const arrays = Array.from({ length: ctx.nq }, (_, i) => Array.from(ctx.q(i)));
    ctx.toIds = (r, ids, off) => { for (let j = 0; j < r.neighbors.length && j < K; j++) ids[off + j] = r.neighbors[j]; };
    gc();
    const out = { rssBefore: memStatus().rss };
    const c0 = cpuSnapshot();
    const t = now();
    const index = new HierarchicalNSW(p.metric, p.dim);
    await index.readIndex(o.hnsw);
    out.loadSec = now() - t;
    index.setEf(ctx.s0.ef);
    const first = index.searchKnn(arrays[0], K);
    out.firstResultSec = now() - t;
    out.otherLoad = { open: otherLoad(c0, cpuSnapshot()) };
    out.top1 = first.neighbors[0];
    out.count = index.getCurrentCount();
    gc();
    out.rssAfterOpen = memStatus().rss;
    // setEf once per pass, not per query: its cost is no part of a search
    const search = (st) => { index.setEf(st.ef); return (i) => index.searchKnn(arrays[i], K); };
    out.firstPass = summarizePass(pass(ctx, search(ctx.s0)));
    const warm = warmPasses(ctx, search(ctx.s0));
    out.sweep = sweep(o, ctx, search, null, ctx.efSettings);
    out.warm = { ...warm, ids: undefined, recall: grade(o, ctx, warm.ids) };
    return out;
  },
};

async function runWorker(o) {
  const task = TASKS[o.worker];
  if (!task) throw new Error(`lazy.js: unknown worker task ${o.worker}`);
  const out = await task(o, sizeParams(o.size));
  out.peakFinal = memStatus().peak;
  out.addon = addonStamp();
  process.stdout.write(JSON.stringify(out) + '\n');
}

// ---------------------------------------------------------------- parent: children

// `nice` marks one-off heavy work (builds, ground truth): the machine is
// shared, measurements are not niced.
function runChild(task, o, extra, { timeoutMin = o.timeoutMin, nice = false } = {}) {
  const args = ['--expose-gc', __filename, '--worker', task];
  for (const [k, v] of Object.entries(extra)) {
    if (v === true) args.push(`--${k}`);
    else if (v !== undefined && v !== false) args.push(`--${k}`, String(v));
  }
  const [cmd, argv] = nice && fs.existsSync('/usr/bin/nice') ? ['/usr/bin/nice', ['-n', '19', process.execPath, ...args]] : [process.execPath, args];
  return runJsonChild(cmd, argv, { timeoutMin, cwd: __dirname, label: `${task}: ` });
}

// An error that says a feature is missing is final; anything else (a crash
// while the addon was swapped under us, say) gets one more try.
async function runMeasurement(task, o, extra) {
  let r = await runChild(task, o, extra);
  if (r.error && !MISSING_FEATURE.test(r.error)) {
    log(`[lazy] ${task} failed (${r.error}); retrying once in 20 s`);
    await sleep(20e3);
    const again = await runChild(task, o, extra);
    r = again.error ? again : { ...again, retriedAfter: r.error };
  }
  return r;
}

// ---------------------------------------------------------------- parent: cache

const lazyDir = (tag) => path.join(LAZY_DIR, tag);
const lazyMetaPath = (tag) => path.join(lazyDir(tag), 'params.json');
const lazySession = (tag) => path.join(lazyDir(tag), 'vecvault-enc');
const lazyHnswlib = (tag) => path.join(lazyDir(tag), 'hnswlib.bin');

function readJson(file) {
  try { return JSON.parse(fs.readFileSync(file, 'utf8')); } catch { return null; }
}

function writeMeta(tag, meta) {
  const tmp = `${lazyMetaPath(tag)}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(meta, null, 2) + '\n');
  fs.renameSync(tmp, lazyMetaPath(tag));
}

function lazyMeta(tag, p, fp) {
  const meta = readJson(lazyMetaPath(tag));
  if (meta && meta.cacheVersion === CACHE_VERSION && meta.fingerprint === fp && JSON.stringify(meta.params) === JSON.stringify(p)) return meta;
  return { cacheVersion: CACHE_VERSION, params: p, fingerprint: fp, built: {}, gt: {} };
}

// session.js's cached artefact `what` ('vecvault-enc', 'hnswlib'), by its own
// validity rule: same data and graph parameters, built by the installed
// library version, file present.
function sessionJsArtefact(tag, p, fp, what, file) {
  const meta = readJson(path.join(SESSIONS_DIR, tag, 'params.json'));
  const full = path.join(SESSIONS_DIR, tag, file);
  const lib = what.startsWith('vecvault') ? 'vecvault' : what;
  const ok = meta && meta.cacheVersion === SESSION_CACHE_VERSION && meta.fingerprint === fp &&
    JSON.stringify(meta.params) === JSON.stringify(p) && meta.built && meta.built[what] &&
    meta.built[what].version === readVersion(LIB_DIRS[lib]) && fs.existsSync(full);
  return ok ? full : null;
}

// In a child: the parent never maps the addon, which may be rebuilt under us.
async function inspectVersion(o, dir) {
  if (!fs.existsSync(path.join(dir, 'manifest.json'))) return null;
  const r = await runChild('inspect', o, { size: o.sizeList[0], dir });
  if (r.error) { log(`[lazy] inspect ${dir}: ${r.error}`); return null; }
  return r.version;
}

async function ensureGroundTruth(tag, p, o, meta) {
  const key = `q${o.queries}`;
  const rec = meta.gt[key];
  if (rec && fs.existsSync(rec.file)) {
    try {
      const gt = readGtFile(rec.file);
      if (gt.nq === o.queries && gt.k === GT_K) { log(`[lazy] ${tag}: cached ground truth (${rec.file})`); return rec.file; }
    } catch { /* recompute */ }
  }
  log(`[lazy] ${tag}: ground truth for ${o.queries} queries (exact, plain JS; at 1M this takes a while, once)`);
  const r = await runChild('gt', o, { size: tag, queries: o.queries }, { timeoutMin: o.timeoutMin * 8, nice: true });
  if (r.error) throw new Error(`ground truth for ${tag} failed: ${r.error}`);
  meta.gt[key] = { file: r.file, nq: r.nq, k: r.k, at: new Date().toISOString(), sec: r.sec, cached: r.cached };
  writeMeta(tag, meta);
  return r.file;
}

async function ensureSession(tag, p, o, meta, fp) {
  const dir = lazySession(tag);
  const rec = meta.built['vecvault-enc'];
  const version = rec && !o.rebuild ? await inspectVersion(o, dir) : null;
  if (rec && version !== null && version >= 2 && rec.version === readVersion(VECVAULT_MODULE)) {
    log(`[lazy] ${tag}: cached format-${version} session (${dir})`);
    return { ...rec, formatVersion: version, dir, cached: true };
  }
  if (rec && !o.rebuild) log(`[lazy] ${tag}: cached session is format version ${version}; preparing a new one`);
  const src = sessionJsArtefact(tag, p, fp, 'vecvault-enc', 'vecvault-enc');
  let r;
  if (src) {
    log(`[lazy] ${tag}: converting session.js's cached session ${src} (load eagerly, save in full)`);
    r = await runChild('convert', o, { size: tag, src, dest: dir });
  } else {
    log(`[lazy] ${tag}: building the session from data (n=${p.n}, M=${p.m}, efConstruction=${p.efConstruction}); cached for later runs`);
    r = await runChild('build-vecvault', o, { size: tag, dest: dir }, { timeoutMin: o.timeoutMin * 8, nice: true });
  }
  if (r.error) throw new Error(`preparing the ${tag} session failed: ${r.error}`);
  log(`[lazy] ${tag}:   saved in ${r.saveSec.toFixed(2)} s, format version ${r.formatVersion}`);
  if (!(r.formatVersion >= 2)) {
    log(`[lazy] ${tag}: WARNING: this build still writes format version ${r.formatVersion}: lazy loads of it read everything. It is re-prepared on the next run.`);
  }
  meta.built['vecvault-enc'] = { version: readVersion(VECVAULT_MODULE), at: new Date().toISOString(), disk: diskUsage(dir), ...r };
  writeMeta(tag, meta);
  return { ...meta.built['vecvault-enc'], dir, cached: false };
}

async function ensureHnswlib(tag, p, o, meta, fp) {
  const shared = sessionJsArtefact(tag, p, fp, 'hnswlib', 'hnswlib.bin');
  if (shared) { log(`[lazy] ${tag}: hnswlib-node index from session.js's cache (${shared})`); return { file: shared, source: 'session.js' }; }
  const file = lazyHnswlib(tag);
  const rec = meta.built.hnswlib;
  if (rec && rec.version === readVersion(LIB_DIRS.hnswlib) && fs.existsSync(file)) {
    log(`[lazy] ${tag}: cached hnswlib-node index (${file})`);
    return { file, source: 'lazy.js', ...rec };
  }
  log(`[lazy] ${tag}: building the hnswlib-node index (single-threaded addPoint, under nice; at 1M this takes a while, once)`);
  const r = await runChild('build-hnswlib', o, { size: tag, dest: file }, { timeoutMin: o.timeoutMin * 8, nice: true });
  if (r.error) throw new Error(`building the hnswlib-node index for ${tag} failed: ${r.error}`);
  log(`[lazy] ${tag}:   built in ${r.buildSec.toFixed(1)} s`);
  meta.built.hnswlib = { version: readVersion(LIB_DIRS.hnswlib), at: new Date().toISOString(), ...r };
  writeMeta(tag, meta);
  return { file, source: 'lazy.js', ...meta.built.hnswlib };
}

// ---------------------------------------------------------------- parent: summaries

// Median of every numeric leaf over runs of the same shape (the first run
// gives everything else).
function medianDeep(runs) {
  const first = runs[0];
  if (typeof first === 'number') return median(runs);
  if (Array.isArray(first)) return first.map((_, i) => medianDeep(runs.map((r) => r && r[i])));
  if (first && typeof first === 'object') {
    const out = {};
    for (const k of Object.keys(first)) out[k] = medianDeep(runs.map((r) => (r ? r[k] : undefined)));
    return out;
  }
  return first;
}

function summarize(runs) {
  const ok = runs.filter((r) => !r.error);
  if (ok.length === 0) return { error: [...new Set(runs.map((r) => r.error))].join('; ') };
  const s = medianDeep(ok);
  s.runs = ok.length;
  s.errors = runs.filter((r) => r.error).map((r) => r.error);
  // "never exceeds" is about the worst run, not the median one
  if (ok[0].maxCacheBytes !== undefined) s.maxCacheBytes = Math.max(...ok.map((r) => r.maxCacheBytes));
  if (ok[0].samplesOverCapacity !== undefined) s.samplesOverCapacity = Math.max(...ok.map((r) => r.samplesOverCapacity));
  s.maxOtherLoad = Math.max(0, ...ok.flatMap((r) => Object.values(r.otherLoad || {}).filter((v) => v !== null)));
  return s;
}

const ok = (r) => r && !r.error;
const div = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? a / b : null);

// Every checked target of one size: { measured, target, pass } (pass null = not measured / not applicable).
function checks(sz) {
  const { results: r, params: p } = sz;
  const open = r.open, cold = r.cold, full = r.full, inmem = r.inmem, h = r.hnswlib;
  const c = {};
  const check = (name, measured, target, pass, applies = true) => {
    c[name] = { measured, target, pass: measured === null || measured === undefined || !applies ? null : pass };
  };
  const openSec = ok(open) ? open.firstResultSec : null;
  check('openSec', openSec, `< ${TARGETS.openSec1m} s at 1M`, openSec < TARGETS.openSec1m, p.n >= 1e6);
  const speedup = ok(h) ? div(h.firstResultSec, openSec) : null;
  check('openVsReadIndex', speedup, `>= ${TARGETS.openVsReadIndex}x`, speedup >= TARGETS.openVsReadIndex);
  check('rss', ok(open) ? open.rssAfterQueries : null, ok(open) ? open.budgetBytes : null, ok(open) && open.rssAfterQueries <= open.budgetBytes);
  const maxBytes = ok(open) && open.maxCacheBytes !== undefined ? Math.max(open.maxCacheBytes, ok(cold) ? cold.maxCacheBytes : 0) : null;
  check('cacheBound', maxBytes, ok(open) ? open.capacityBytes : null,
    ok(open) && open.samplesOverCapacity === 0 && (!ok(cold) || cold.samplesOverCapacity === 0) && maxBytes <= open.capacityBytes);
  const coldChunks = ok(cold) ? cold.bySetting[0].chunks.mean : null;
  check('coldChunks', coldChunks, `<= ${TARGETS.coldChunksPerQuery}`, coldChunks <= TARGETS.coldChunksPerQuery);
  const recall = ok(open) ? open.warm.recall : null;
  check('recall', recall, `>= ${TARGETS.recall}`, recall >= TARGETS.recall);
  const warmRatio = ok(full) && ok(inmem) ? div(full.warm.qps, inmem.warm.qps) : null;
  check('warmOverInMemory', warmRatio, `>= ${TARGETS.warmOverInMemory}x`, warmRatio >= TARGETS.warmOverInMemory);
  c.warmOverInMemory.recallGap = ok(full) && ok(inmem) ? full.warm.recall - inmem.warm.recall : null;
  // The same ratio where both reach the recall target (best over the sweep):
  // a lazy search that is fast because it finds less does not pass.
  const mr = matchedRecall(sz);
  if (ok(full) && ok(inmem) && (!mr.full || !mr.inmem)) {
    check('warmOverInMemoryMatched', `${mr.full ? 'eager' : 'lazy'} < ${TARGETS.recall}`, `>= ${TARGETS.warmOverInMemory}x`, mr.full ? null : false);
  } else {
    check('warmOverInMemoryMatched', mr.fullOverInmem, `>= ${TARGETS.warmOverInMemory}x`, mr.fullOverInmem >= TARGETS.warmOverInMemory);
  }
  check('lazy', ok(open) ? open.loadStats.lazy : null, 'true', ok(open) && open.loadStats.lazy === true);
  return c;
}

// One run's measurement at a search setting: the headline is `warm`, the
// rest are in `sweep` (eager and hnswlib-node runs: by ef alone).
function atSetting(sz, r, st, lazy) {
  if (!ok(r)) return null;
  const s0 = sz.settings[0];
  if (lazy ? sameSetting(st, s0) : st.ef === s0.ef) return r.warm;
  return r.sweep.find((x) => (lazy ? sameSetting(x, st) : x.ef === st.ef)) || null;
}

// Highest QPS among a run's settings whose recall reaches the target.
function bestAtRecall(sz, r, lazy, target = TARGETS.recall) {
  let best = null;
  for (const st of sz.settings) {
    const m = atSetting(sz, r, st, lazy);
    if (m && m.recall >= target && (!best || m.qps > best.qps)) best = { ...(lazy ? st : { ef: st.ef, rerank: null }), qps: m.qps, recall: m.recall };
  }
  return best;
}

function matchedRecall(sz) {
  const { open, full, inmem, hnswlib: h } = sz.results;
  const m = { full: bestAtRecall(sz, full, true), open: bestAtRecall(sz, open, true), inmem: bestAtRecall(sz, inmem, false), hnswlib: bestAtRecall(sz, h, false) };
  m.fullOverInmem = m.full && m.inmem ? m.full.qps / m.inmem.qps : null;
  return m;
}

const fmtBest = (b) => (b ? `${fmt(b.qps, 0)} (${settingLabel(b)})` : 'not reached');

// The first plan for lazy loading, at 100K: load < 5 s, warm search < 100 ms,
// memory < 200 MB with 10 chunks cached. Memory comes from the default-bound
// run when it held 10 chunks, else from the run whose cache holds everything.
function seedPlan(sz) {
  const { open, full } = sz.results;
  if (!ok(open)) return null;
  const want = Math.min(SEED_PLAN.chunksCached, open.loadStats.chunkCount || SEED_PLAN.chunksCached);
  const fromOpen = open.cacheAfterQueries && open.cacheAfterQueries.chunksCached >= want;
  const mem = fromOpen ? { rss: open.rssAfterQueries, chunks: open.cacheAfterQueries.chunksCached, from: `cacheSizeMb ${open.cacheSizeMb}` }
    : ok(full) ? { rss: full.rss, chunks: full.cacheAfterWarm ? full.cacheAfterWarm.chunksCached : '?', from: `cacheSizeMb ${full.cacheSizeMb}` } : null;
  return {
    loadSec: open.firstResultSec, loadBetter: div(SEED_PLAN.loadSec, open.firstResultSec),
    warmP99Ms: open.warm.p99Ms, warmBetter: div(SEED_PLAN.warmSearchMs, open.warm.p99Ms),
    memoryMB: mem ? mem.rss / 1e6 : null, memoryChunks: mem ? mem.chunks : null, memoryFrom: mem ? mem.from : null,
    memoryBetter: mem ? div(SEED_PLAN.memoryMB, mem.rss / 1e6) : null,
  };
}

// ---------------------------------------------------------------- report

const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? '-' : Number(v).toFixed(d));
const mb = (v) => fmt(v === null || v === undefined ? null : v / 1e6, 1);
const pad = (s, w) => String(s).padStart(w);
const padr = (s, w) => String(s).padEnd(w);
const row = (cells, widths) => cells.map((c, i) => (i === 0 ? padr(c, widths[0]) : pad(c, widths[i]))).join('');
const verdict = (pass) => (pass === null || pass === undefined ? '-' : pass ? 'PASS' : 'FAIL');

function printSize(sz, o) {
  const p = (s = '') => console.log(s);
  const { params: pr, results: res, session: ses } = sz;
  const { open, cold, full, inmem, hnswlib: h } = res;
  const chunkCount = ok(open) ? open.loadStats.chunkCount : ok(inmem) ? inmem.loadStats.chunkCount : '?';
  p();
  p(`== lazy loading: synthetic ${sz.size} x ${pr.dim} ${pr.metric}, M=${pr.m} efConstruction=${pr.efConstruction}, ` +
    `chunkSize=${pr.chunkSize} (${chunkCount} chunks), encrypted; k=${K}, ${settingLabel(sz.settings[0])}; ` +
    `medians of ${sz.repeats} fresh processes`);
  p(`   session: format version ${ses.formatVersion}, ${ses.route === 'converted' ? `converted from ${ses.from} (format ${ses.srcVersion}; eager load ${fmt(ses.loadSec)} s)` : 'built from data'}; ` +
    `full save ${fmt(ses.saveSec)} s, ${mb(ses.save && ses.save.bytesWritten)} MB written${ses.cached ? ' (cached from an earlier run)' : ''}`);
  if (ses.addon && sz.addonNow && ses.addon !== sz.addonNow) {
    p(`   WARNING: the session was saved by an older addon build (${ses.addon}; now ${sz.addonNow}); what a save decides (PQ codes, chunk order) ` +
      'is that build\'s: --rebuild measures the current one');
  }
  for (const [name, v] of Object.entries(res)) if (v && v.error) p(`NOT MEASURED ${name}: ${v.error}`);
  for (const [name, v] of Object.entries(res)) if (ok(v) && v.missing) p(`PARTLY MEASURED ${name}: this build has no ${v.missing.join(', ')}`);

  p();
  p('open (fresh process, chunk cache empty; OS page cache warm)');
  const ow = [34, 9, 16, 14, 14];
  p(row(['', 'load s', 'to 1st result s', 'RSS open MB', 'bytes read MB'], ow));
  if (ok(open)) p(row([`vecvault lazy (cacheSizeMb ${open.cacheSizeMb})`, fmt(open.loadSec, 3), fmt(open.firstResultSec, 3), mb(open.rssAfterOpen), mb(open.loadStats.bytesRead)], ow));
  if (ok(inmem)) p(row(['vecvault eager (lazy: false)', fmt(inmem.loadSec, 3), fmt(inmem.firstResultSec, 3), mb(inmem.rssAfterOpen), mb(inmem.loadStats.bytesRead)], ow));
  if (ok(h)) p(row(['hnswlib-node readIndex', fmt(h.loadSec, 3), fmt(h.firstResultSec, 3), mb(h.rssAfterOpen), '-'], ow));
  if (ok(open) && ok(h)) p(`  hnswlib-node readIndex to first result / vecvault lazy open to first result: ${fmt(div(h.firstResultSec, open.firstResultSec), 1)}x (target >= ${TARGETS.openVsReadIndex}x)`);
  if (ok(open) && open.cacheAfterFirst) {
    p(`  the lazy open read ${mb(open.loadStats.bytesRead)} MB; its first query then read ${open.cacheAfterFirst.misses} chunks (${mb(open.cacheAfterFirst.bytesRead)} MB)`);
  }
  if (ok(open) && open.loadStats.lazy !== true) p(`  WARNING: loadStats.lazy is ${open.loadStats.lazy}: the session was read eagerly`);

  if (ok(open)) {
    p();
    p(`memory after open + ${o.queries} queries (cacheSizeMb ${open.cacheSizeMb}, after GC)`);
    p(`  RSS ${mb(open.rssAfterQueries)} MB vs budget ${mb(open.budgetBytes)} MB (cache bound ${mb(open.budgetBytes - TARGETS.residentBytesPerVector * pr.n)} MB + ${TARGETS.residentBytesPerVector} B x ${pr.n}): ` +
      `${verdict(open.rssAfterQueries <= open.budgetBytes)}   (RSS of a bare child before load: ${mb(open.rssBefore)} MB)`);
    if (open.cacheAfterQueries) p(`  cache bytes, max of ${open.cacheSamples} samples (one after every query): ${mb(open.maxCacheBytes)} MB of ${mb(open.capacityBytes)} MB: ` +
      `${verdict(open.samplesOverCapacity === 0 && open.maxCacheBytes <= open.capacityBytes)}; ` +
      `${open.cacheAfterQueries.chunksCached} chunks cached, ${open.cacheAfterQueries.evictions} evictions so far`);
    if (ok(h)) p(`  hnswlib-node RSS after readIndex: ${mb(h.rssAfterOpen)} MB (${fmt(div(h.rssAfterOpen, open.rssAfterQueries), 1)}x vecvault lazy's)`);
    if (ok(inmem)) p(`  vecvault eager RSS after the same queries: ${mb(inmem.rssAfterQueries)} MB`);
  }

  p();
  p(`search (single thread, one query per call, k=${K}, ${settingLabel(sz.settings[0])}${sz.settings[0].rerank === null ? ', rerank: the engine default' : ''})`);
  const sw = [36, 9, 9, 9, 9, 11, 13, 10];
  p(row(['', 'QPS', 'p50 ms', 'p95 ms', 'p99 ms', 'recall@10', 'chunks/query', 'hit rate'], sw));
  const sRow = (label, s, c) => {
    if (!s) return;
    p(row([label, fmt(s.qps, 0), fmt(s.p50Ms, 3), fmt(s.p95Ms, 3), fmt(s.p99Ms, 3), fmt(s.recall, 4),
      c ? fmt(c.chunksPerQuery, 3) : '-', c && c.hitRate !== null ? fmt(c.hitRate, 4) : '-'], sw));
  };
  if (ok(open)) {
    sRow(`steady: 1st pass, ${open.cacheSizeMb} MB cache`, open.steady, open.steady.cache);
    sRow(`warm: next passes, ${open.cacheSizeMb} MB cache`, open.warm, open.warm.cache);
  }
  if (ok(full)) sRow(`warm: ${full.cacheSizeMb} MB cache (everything)`, full.warm, full.warm.cache);
  if (ok(cold)) {
    const c = cold.bySetting[0];
    p(row([`cold: empty cache, ${cold.queries} queries`, fmt(c.latency.qps, 0), fmt(c.latency.p50Ms, 3), fmt(c.latency.p95Ms, 3), fmt(c.latency.p99Ms, 3),
      fmt(c.recall, 4), fmt(c.chunks.mean, 3), '-'], sw));
  }
  if (ok(inmem)) sRow('in memory (lazy: false)', inmem.warm, null);
  if (ok(h)) sRow('hnswlib-node (readIndex)', h.warm, null);
  if (ok(cold)) {
    const c = cold.bySetting[0];
    p(`  cold chunks per query: mean ${fmt(c.chunks.mean, 2)}, p50 ${fmt(c.chunks.p50, 0)}, p95 ${fmt(c.chunks.p95, 0)}, p99 ${fmt(c.chunks.p99, 0)}, max ${fmt(c.chunks.max, 0)}; ` +
      `${mb(c.bytesRead.mean)} MB read per query${c.notEmptied ? `; WARNING: setCacheSize(1e-6) left chunks cached before ${c.notEmptied} queries` : ''}`);
  }
  if (ok(full) && ok(inmem)) {
    p(`  warm lazy (everything cached) / in memory QPS: ${fmt(div(full.warm.qps, inmem.warm.qps))}x; at cacheSizeMb ${ok(open) ? open.cacheSizeMb : '-'}: ${ok(open) ? fmt(div(open.warm.qps, inmem.warm.qps)) : '-'}x`);
    if (Math.abs(full.warm.recall - inmem.warm.recall) > RECALL_SLACK) {
      p(`  NOTE: at the same efSearch lazy recall is ${fmt(full.warm.recall, 4)} and in-memory ${fmt(inmem.warm.recall, 4)}: compare QPS at matched recall (sweep below)`);
    }
  }
  if (ok(full) && full.preloadSec !== null && full.cacheAfterPreload) p(`  preload() of the full cache: ${fmt(full.preloadSec)} s, ${full.cacheAfterPreload.chunksCached} chunks, ${mb(full.cacheAfterPreload.bytes)} MB`);

  if (sz.settings.length > 1) {
    p();
    p('sweep: QPS / recall@10 (lazy at cacheSizeMb: chunks per query in brackets; cold: chunks per query; eager and hnswlib-node have no rerank)');
    const ew = [20, 28, 12, 20, 20, 20];
    p(row(['', `lazy ${o.cacheMb} MB warm`, 'cold chunks', 'lazy full cache', 'in memory', 'hnswlib-node'], ew));
    const qr = (s) => (s ? `${fmt(s.qps, 0)} / ${fmt(s.recall, 4)}` : '-');
    const order = [...sz.settings].sort((a, b) => a.ef - b.ef || (a.rerank || 0) - (b.rerank || 0));
    for (const st of order) {
      const ow2 = atSetting(sz, open, st, true);
      const ce = ok(cold) ? cold.bySetting.find((b) => sameSetting(b, st)) : null;
      p(row([settingLabel(st), ow2 ? `${qr(ow2)} (${fmt(ow2.cache && ow2.cache.chunksPerQuery, 3)})` : '-', ce ? fmt(ce.chunks.mean, 2) : '-',
        qr(atSetting(sz, full, st, true)), qr(atSetting(sz, inmem, st, false)), qr(atSetting(sz, h, st, false))], ew));
    }
  }
  if (ok(open) && open.sweepSkipped && sz.settings.length > 1) p(`  (lazy ${o.cacheMb} MB sweep skipped: ${open.sweepSkipped})`);
  const m = sz.matched;
  if (m) {
    p(`best QPS with recall@10 >= ${TARGETS.recall} over these settings: lazy everything cached ${fmtBest(m.full)}, lazy ${o.cacheMb} MB ${fmtBest(m.open)}, ` +
      `in memory ${fmtBest(m.inmem)}, hnswlib-node ${fmtBest(m.hnswlib)}; lazy (everything cached) / in memory ${fmt(m.fullOverInmem)}x`);
  }

  if (sz.seedPlan) {
    const s = sz.seedPlan;
    p();
    p('against the seed plan at 100K');
    p(`  load < ${SEED_PLAN.loadSec} s:           open to first result ${fmt(s.loadSec, 3)} s   (${fmt(s.loadBetter, 0)}x better)`);
    p(`  warm search < ${SEED_PLAN.warmSearchMs} ms:     p99 ${fmt(s.warmP99Ms, 3)} ms   (${fmt(s.warmBetter, 0)}x better)`);
    p(`  memory < ${SEED_PLAN.memoryMB} MB with ${SEED_PLAN.chunksCached} chunks cached: RSS ${fmt(s.memoryMB, 1)} MB with ${s.memoryChunks} chunks cached at ${s.memoryFrom}   ` +
      `(${s.memoryBetter === null ? '-' : s.memoryBetter >= 1 ? `${fmt(s.memoryBetter)}x better` : `${fmt(1 / s.memoryBetter)}x OVER`})`);
  }

  const counts = Object.entries(res).filter(([, v]) => ok(v) && v.count !== undefined && v.count !== pr.n);
  if (counts.length) p(`WARNING: wrong vector count in ${counts.map(([k, v]) => `${k} (${v.count})`).join(', ')}`);
  const busy = Object.entries(res).filter(([, v]) => ok(v) && v.maxOtherLoad > BUSY_CORES);
  if (busy.length) p(`WARNING: other processes used CPU during ${busy.map(([k, v]) => `${k} (${fmt(v.maxOtherLoad, 2)} cores)`).join(', ')}. Timings are noisy.`);
  const builds = new Set(Object.values(sz.runs).flat().filter((r) => r && !r.error && r.addon).map((r) => r.addon));
  if (builds.size > 1) p(`WARNING: the vecvault addon was rebuilt during this size's runs (${builds.size} builds measured: ${[...builds].join('; ')})`);
  const retried = Object.entries(sz.runs).filter(([, rs]) => rs.some((r) => r.retriedAfter));
  if (retried.length) p(`NOTE: retried after a failure: ${retried.map(([k]) => k).join(', ')} (see the JSON)`);
}

function printSummary(report) {
  const p = (s = '') => console.log(s);
  const sizes = report.sizes;
  if (!sizes.length) return;
  const w = [50, ...sizes.map(() => 22), 28];
  p();
  p(`== summary (medians of ${report.options.repeats} fresh processes; ${settingLabel(report.options.settings[0])}; cacheSizeMb ${report.options.cacheMb})`);
  p(row(['', ...sizes.map((s) => s.size), 'target'], w));
  const cell = (c, show) => (!c || c.measured === null || c.measured === undefined ? 'not measured' : `${show(c.measured)} ${verdict(c.pass)}`);
  const line = (label, name, show, target) => p(row([label, ...sizes.map((s) => cell(s.checks[name], show)), target], w));
  line('open to first result, lazy (s)', 'openSec', (v) => fmt(v, 3), `< ${TARGETS.openSec1m} s at 1M`);
  line('  hnswlib-node readIndex+1st / vecvault lazy', 'openVsReadIndex', (v) => `${fmt(v, 1)}x`, `>= ${TARGETS.openVsReadIndex}x`);
  line(`RSS after open + ${report.options.queries} queries (MB)`, 'rss', (v) => mb(v), `cacheSizeMb + ${TARGETS.residentBytesPerVector} B x n`);
  p(row(['  budget (MB)', ...sizes.map((s) => mb(s.checks.rss.target)), ''], w));
  line('max cache bytes, sampled per query (MB)', 'cacheBound', (v) => mb(v), '<= capacityBytes');
  line('cold: chunks per query (mean)', 'coldChunks', (v) => fmt(v, 2), `<= ${TARGETS.coldChunksPerQuery}`);
  line(`warm recall@10 (cacheSizeMb ${report.options.cacheMb})`, 'recall', (v) => fmt(v, 4), `>= ${TARGETS.recall}`);
  line('warm QPS, everything cached / in memory', 'warmOverInMemory', (v) => `${fmt(v)}x`, `>= ${TARGETS.warmOverInMemory}x`);
  p(row(['  recall@10 lazy - in memory, same setting', ...sizes.map((s) => (s.checks.warmOverInMemory.recallGap === null ? '-' : fmt(s.checks.warmOverInMemory.recallGap, 4))), `within ${RECALL_SLACK}`], w));
  line(`  ... at matched recall >= ${TARGETS.recall} (best of sweep)`, 'warmOverInMemoryMatched', (v) => (typeof v === 'string' ? v : `${fmt(v)}x`), `>= ${TARGETS.warmOverInMemory}x`);
  line('loaded lazily (loadStats.lazy)', 'lazy', (v) => String(v), 'true');
  const info = (label, f) => p(row([label, ...sizes.map((s) => { try { const v = f(s); return v === null || v === undefined ? '-' : v; } catch { return '-'; } }), ''], w));
  p();
  info('session format version / full save (s)', (s) => `v${s.session.formatVersion} / ${fmt(s.session.saveSec)}`);
  info('steady (1st pass): hit rate', (s) => fmt(s.results.open.steady.cache.hitRate, 4));
  info('steady (1st pass): p50 / p99 ms', (s) => `${fmt(s.results.open.steady.p50Ms, 2)} / ${fmt(s.results.open.steady.p99Ms, 2)}`);
  info(`warm QPS at cacheSizeMb ${report.options.cacheMb}`, (s) => fmt(s.results.open.warm.qps, 0));
  info('warm QPS, everything cached', (s) => fmt(s.results.full.warm.qps, 0));
  info('in-memory QPS / recall@10', (s) => `${fmt(s.results.inmem.warm.qps, 0)} / ${fmt(s.results.inmem.warm.recall, 4)}`);
  info('hnswlib-node QPS / recall@10', (s) => `${fmt(s.results.hnswlib.warm.qps, 0)} / ${fmt(s.results.hnswlib.warm.recall, 4)}`);
  info('cold query p50 / p99 ms', (s) => `${fmt(s.results.cold.bySetting[0].latency.p50Ms, 2)} / ${fmt(s.results.cold.bySetting[0].latency.p99Ms, 2)}`);
  info('eager load to 1st result (s)', (s) => fmt(s.results.inmem.firstResultSec, 3));
  info('hnswlib-node readIndex to 1st result (s)', (s) => fmt(s.results.hnswlib.firstResultSec, 3));
  info('hnswlib-node RSS after readIndex / vecvault lazy', (s) => `${fmt(div(s.results.hnswlib.rssAfterOpen, s.results.open.rssAfterQueries), 1)}x`);
}


// ---------------------------------------------------------------- main

function fullCacheMb(o, p) {
  if (o.fullCacheMb !== undefined) return Number(o.fullCacheMb);
  return Math.max(o.cacheMb, Math.ceil((p.n * p.dim * 4 * 1.3) / MIB));
}

async function runSize(tag, o, report) {
  const p = sizeParams(tag);
  fs.mkdirSync(lazyDir(tag), { recursive: true });
  const fp = dataFingerprint(p);
  const meta = lazyMeta(tag, p, fp);
  const gtFile = await ensureGroundTruth(tag, p, o, meta);
  const session = await ensureSession(tag, p, o, meta, fp);
  const hnsw = o.skipPeers ? null : await ensureHnswlib(tag, p, o, meta, fp);

  const common = { size: tag, dir: session.dir, gt: gtFile, queries: o.queries, ef: o.ef, rerank: o.rerank, 'min-time': o.minTime };
  const jobs = [
    ['open', 'open', { ...common, 'cache-mb': o.cacheMb, 'sweep-budget': o.sweepBudget }],
    ['cold', 'cold', { ...common, 'cache-mb': o.cacheMb, 'cold-queries': o.coldQueries, 'cold-sweep': o.coldSweep }],
    ['full', 'full', { ...common, 'cache-mb': fullCacheMb(o, p) }],
    ['inmem', 'inmem', common],
  ];
  if (hnsw) jobs.push(['hnswlib', 'hnswlib', { ...common, hnsw: hnsw.file }]);
  const runs = Object.fromEntries(jobs.map(([name]) => [name, []]));
  const final = new Set(); // jobs whose feature is missing: no point repeating them
  for (let rep = 0; rep < o.repeats; rep++) {
    for (const [name, task, extra] of jobs) {
      if (final.has(name)) continue;
      log(`[lazy] ${tag}: ${name} (${rep + 1}/${o.repeats})`);
      const r = await runMeasurement(task, o, { ...extra, rep });
      if (r.error && MISSING_FEATURE.test(r.error)) final.add(name);
      runs[name].push(r);
    }
  }
  const results = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, summarize(v)]));
  const sz = {
    size: tag, params: p, settings: o.settings, repeats: o.repeats, cache: lazyDir(tag),
    session: { ...session, dir: session.dir }, hnswlib: hnsw, groundTruth: gtFile, results, runs,
  };
  sz.addonNow = addonStamp();
  sz.checks = checks(sz);
  sz.matched = matchedRecall(sz);
  sz.seedPlan = p.n === 100000 ? seedPlan(sz) : null;
  report.sizes.push(sz);
  printSize(sz, o);
}

// Prints the tables of a saved JSON report again (checks recomputed).
function reprint(file) {
  const report = JSON.parse(fs.readFileSync(file, 'utf8'));
  const o = { queries: report.options.queries, cacheMb: report.options.cacheMb };
  const sizes = report.sizes.filter((s) => !s.error);
  for (const sz of sizes) {
    sz.checks = checks(sz);
    sz.matched = matchedRecall(sz);
    printSize(sz, o);
  }
  printSummary({ ...report, sizes });
}

async function main(argv) {
  const o = parseArgs(argv);
  if (o.help) { console.log(HELP); return; }
  if (o.worker) return runWorker(o);
  if (o.print) return reprint(o.print);

  const started = new Date();
  const report = {
    bench: 'lazy', started: started.toISOString(), machine: machineInfo(),
    versions: Object.fromEntries(Object.entries(LIB_DIRS).map(([k, d]) => [k, readVersion(d)])),
    targets: TARGETS, seedPlan: SEED_PLAN,
    options: { sizes: o.sizeList, repeats: o.repeats, queries: o.queries, coldQueries: o.coldQueries, cacheMb: o.cacheMb, settings: o.settings, minTime: o.minTime, coldSweep: o.coldSweep, skipPeers: o.skipPeers },
    sizes: [],
  };
  const file = o.out || path.join(RESULTS_DIR, `lazy-${started.toISOString().slice(0, 19).replace(/:/g, '-')}.json`);
  const write = () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  };
  for (const tag of o.sizeList) {
    try {
      await runSize(tag, o, report);
    } catch (err) {
      console.log(`\n== ${tag}: FAILED: ${err.message}`);
      report.sizes.push({ size: tag, error: err.message });
    }
    write(); // partial results survive a later size's failure
  }
  report.sizes = report.sizes.filter((s) => !s.error).concat(report.sizes.filter((s) => s.error));
  printSummary({ ...report, sizes: report.sizes.filter((s) => !s.error) });
  report.finished = new Date().toISOString();
  write();
  console.log(`\nJSON: ${path.relative(process.cwd(), file)}`);
  if (report.sizes.some((s) => s.error)) process.exitCode = 1;
}

// ---------------------------------------------------------------- arguments

const HELP = `node bench/lazy.js [options]      (or: npm run bench -- lazy [options])
  --sizes LIST        comma list of 10k, 100k, 1m, ... (default 100k,1m)
  --repeats N         fresh processes per measurement; medians reported (default 3)
  --queries N         queries for the steady/warm passes and recall (default 1000)
  --cold-queries N    queries run on an empty cache (default 200)
  --cache-mb MB       cacheSizeMb of the lazy runs (default 150)
  --full-cache-mb MB  cacheSizeMb of the "everything cached" run (default: 1.3x the raw vectors)
  --ef LIST           efSearch; the first is the headline, the rest a sweep (default 64,32,128,256,512)
  --rerank LIST       rerank of lazy searches: integers or "default" (the engine's choice);
                      the first is the headline, the rest a sweep at the headline ef (default: default)
  --cold-sweep        run the cold queries at every sweep setting, not only the headline
  --sweep-budget S    skip the sweep at --cache-mb when it would take longer (default 300)
  --min-time S        minimum seconds of search per warm measurement (default 1)
  --rebuild           prepare the format-2 session again (from session.js's cache if valid)
  --skip-peers        no hnswlib-node
  --timeout-min M     per measuring child process (default 60; preparation gets 8x)
  --out FILE          JSON output (default bench/results/lazy-<date>.json)
  --print FILE        print the tables of a JSON report again, measuring nothing
Caches (outside the repo): ~/.cache/vecvault-bench/lazy/<size>/ (session, hnswlib-node
index unless session.js has one, params.json) and ground truth in ~/.cache/vecvault-bench/.`;

function parseArgs(argv) {
  const o = {
    sizes: '100k,1m', repeats: '3', queries: '1000', coldQueries: '200', cacheMb: '150', ef: '64,32,128,256,512', rerank: 'default', minTime: '1', sweepBudget: '300',
    timeoutMin: '60', skipPeers: false, rebuild: false, coldSweep: false,
  };
  const names = {
    '--sizes': 'sizes', '--repeats': 'repeats', '--queries': 'queries', '--cold-queries': 'coldQueries', '--cache-mb': 'cacheMb',
    '--full-cache-mb': 'fullCacheMb', '--ef': 'ef', '--rerank': 'rerank', '--min-time': 'minTime', '--sweep-budget': 'sweepBudget', '--timeout-min': 'timeoutMin', '--out': 'out', '--print': 'print',
    // worker-only
    '--worker': 'worker', '--size': 'size', '--dir': 'dir', '--gt': 'gt', '--hnsw': 'hnsw', '--src': 'src', '--dest': 'dest', '--rep': 'rep',
  };
  parseOptions('lazy.js', argv, o, names, { '--skip-peers': 'skipPeers', '--rebuild': 'rebuild', '--cold-sweep': 'coldSweep' },
    ['repeats', 'queries', 'coldQueries', 'cacheMb', 'minTime', 'sweepBudget', 'timeoutMin']);
  o.repeats = Math.round(o.repeats);
  o.queries = Math.round(o.queries);
  o.coldQueries = Math.round(o.coldQueries);
  if (o.fullCacheMb !== undefined && !(Number(o.fullCacheMb) > 0)) throw new RangeError('lazy.js: --full-cache-mb must be a positive number');
  const efs = [...new Set(String(o.ef).split(',').map((s) => Number(s.trim())))];
  if (efs.some((e) => !(Number.isInteger(e) && e > 0))) throw new RangeError(`lazy.js: --ef must be a comma list of positive integers, got ${o.ef}`);
  const reranks = [...new Set(String(o.rerank).split(',').map((s) => (s.trim() === 'default' ? null : Number(s.trim()))))];
  if (reranks.some((r) => r !== null && !(Number.isInteger(r) && r > 0))) {
    throw new RangeError(`lazy.js: --rerank must be a comma list of positive integers or "default", got ${o.rerank}`);
  }
  o.settings = searchSettings(efs, reranks);
  o.sizeList = String(o.sizes).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const s of o.sizeList) sizeParams(s); // throws on a bad size
  return o;
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    // A missing feature is a finding, not a crash: its message says it all.
    console.error(err && err.stack && !MISSING_FEATURE.test(err.message) ? err.stack : `Error: ${err && err.message}`);
    process.exit(1);
  });
}

module.exports = { parseArgs, recallOf, readGtFile, medianDeep };
