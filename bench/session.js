'use strict';
// Sessions: how fast vecvault saves and opens a database on disk (encrypted
// and not, full and incremental), how much disk and memory that costs, and
// how it compares with hnswlib-node's writeIndex/readIndex and usearch's
// save/load/view of the same data.
//
// Each size's indexes are built once and cached outside the repo under
// ~/.cache/vecvault-bench/sessions/<size>/ (see README.md). Every measurement
// then runs in a fresh child process (`node --expose-gc bench/session.js
// --worker <task> ...`) that prints one JSON object, so peak RSS (VmHWM) is
// that operation's own. Timings are medians over --repeats children.
//
// Usage: node bench/session.js [--sizes 100k,1m] [--skip-peers] [--repeats 3] [--rebuild] [--out FILE]

const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const data = require('./data');

const REPO = path.join(__dirname, '..');
const VECVAULT_MODULE = process.env.VECVAULT_MODULE ? path.resolve(process.env.VECVAULT_MODULE) : REPO;
const RESULTS_DIR = path.join(__dirname, 'results');
const SESSIONS_DIR = path.join(data.CACHE_DIR, 'sessions');
const CACHE_VERSION = 1;
const DIM = 384;
const METRIC = 'cosine';
const K = 10;
const UPSERT_FRACTION = 0.01;
const BUSY_CORES = 0.2; // other processes' CPU above which a timing is flagged
// A fixed, public benchmark key: the cached encrypted session must reopen in
// later runs. Never use a key derived like this for real data.
const KEY = crypto.createHash('sha256').update('vecvault-bench session key v1').digest();

const TARGETS = {
  encLoadSec100k: 0.5, // eager load of 100K x 384, encrypted
  encOverPlain: 1.3, // encrypted save and load within 1.3x of unencrypted
  incrementalPct: 5, // a 1% change writes < 5% of a full save's bytes
};

// ---------------------------------------------------------------- parameters

function parseSize(s) {
  const m = /^(\d+)(k|m)?$/i.exec(String(s).trim());
  if (!m) throw new RangeError(`session.js: bad size ${s} (e.g. 10k, 100k, 1m)`);
  const n = Number(m[1]) * ({ k: 1e3, m: 1e6 }[(m[2] || '').toLowerCase()] || 1);
  if (n < 1000) throw new RangeError(`session.js: size ${s} is too small (at least 1k)`);
  return { tag: String(s).trim().toLowerCase(), n };
}

// The benchmark is about storage, not graph quality: at 1M every library
// builds with efConstruction 100 to keep the one-off build affordable.
function sizeParams(tag) {
  const { n } = parseSize(tag);
  return {
    n, dim: DIM, metric: METRIC, seed: 1, clusters: Math.max(8, Math.round(Math.sqrt(n))),
    m: 16, efConstruction: n >= 1e6 ? 100 : 200, chunkSize: 10000,
  };
}

// Builds the benchmark database with addBatchAsync (all cores) and saves it
// to `dest` atomically, encrypted with the bench key when `enc` (also used by
// lazy.js).
async function buildVecvault(VectorDB, p, dest, enc) {
  const base = baseData(p);
  const items = new Array(p.n);
  for (let i = 0; i < p.n; i++) items[i] = { id: String(i), vector: base.subarray(i * p.dim, (i + 1) * p.dim) };
  const db = new VectorDB({
    dimension: p.dim, metric: p.metric, hnsw: { m: p.m, efConstruction: p.efConstruction }, chunkSize: p.chunkSize,
    encryptAtRest: enc, ...(enc ? { key: KEY } : {}),
  });
  let t = now();
  await db.addBatchAsync(items);
  const buildSec = now() - t;
  const tmp = `${dest}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  t = now();
  const save = await db.save(tmp);
  const saveSec = now() - t;
  db.close();
  fs.rmSync(dest, { recursive: true, force: true });
  fs.renameSync(tmp, dest);
  return { buildSec, saveSec, save, threads: os.cpus().length };
}

// hnswlib-node's single-threaded addPoint loop, written to `dest` atomically
// (also used by lazy.js).
async function buildHnswlib(p, dest) {
  const { HierarchicalNSW } = require('hnswlib-node');
  const base = baseData(p);
  const index = new HierarchicalNSW(p.metric, p.dim);
  index.initIndex(p.n, p.m, p.efConstruction, 100);
  let t = now();
  for (let i = 0; i < p.n; i++) index.addPoint(Array.from(base.subarray(i * p.dim, (i + 1) * p.dim)), i);
  const buildSec = now() - t;
  const tmp = `${dest}.tmp-${process.pid}`;
  t = now();
  await index.writeIndex(tmp);
  const saveSec = now() - t;
  fs.renameSync(tmp, dest);
  return { buildSec, saveSec, threads: 1 };
}

function baseData(p) {
  return data.synthetic(p.n, p.dim, { seed: p.seed, clusters: p.clusters, normalize: true }).data;
}

// The generator is seeded, so the first rows of a size's data depend only on
// its parameters: fingerprinting 1000 of them catches a changed generator
// without generating a million vectors in the parent.
function dataFingerprint(p) {
  const head = data.synthetic(Math.min(p.n, 1000), p.dim, { seed: p.seed, clusters: p.clusters, normalize: true }).data;
  const h = crypto.createHash('sha256').update(Buffer.from(head.buffer, head.byteOffset, head.byteLength));
  return h.digest('hex').slice(0, 16);
}

function queryVector(p) {
  return data.synthetic(1, p.dim, { seed: 2, clusters: p.clusters, normalize: true }).data;
}

// ---------------------------------------------------------------- cache

const CACHE_FILES = {
  'vecvault-plain': 'vecvault-plain',
  'vecvault-enc': 'vecvault-enc',
  hnswlib: 'hnswlib.bin',
  usearch: 'index.usearch',
};

const cacheDir = (tag) => path.join(SESSIONS_DIR, tag);
const cachePath = (tag, what) => path.join(cacheDir(tag), CACHE_FILES[what]);
const metaPath = (tag) => path.join(cacheDir(tag), 'params.json');


const LIB_DIRS = {
  vecvault: VECVAULT_MODULE,
  hnswlib: path.join(__dirname, 'node_modules', 'hnswlib-node'),
  usearch: path.join(__dirname, 'node_modules', 'usearch'),
};
const libOf = (what) => (what.startsWith('vecvault') ? 'vecvault' : what);

// Which cached artefacts can be reused: same data and graph parameters, the
// file present, built by the library version installed now.
function cacheState(tag, p, fp) {
  let meta = null;
  try { meta = JSON.parse(fs.readFileSync(metaPath(tag), 'utf8')); } catch { /* none yet */ }
  const same = meta && meta.cacheVersion === CACHE_VERSION && meta.fingerprint === fp &&
    JSON.stringify(meta.params) === JSON.stringify(p);
  if (!same) meta = { cacheVersion: CACHE_VERSION, params: p, fingerprint: fp, built: {} };
  const valid = {};
  for (const what of Object.keys(CACHE_FILES)) {
    const b = meta.built[what];
    valid[what] = Boolean(same && b && b.version === readVersion(LIB_DIRS[libOf(what)]) && fs.existsSync(cachePath(tag, what)));
  }
  return { meta, same, valid };
}

function writeMeta(tag, meta) {
  const tmp = `${metaPath(tag)}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(meta, null, 2) + '\n');
  fs.renameSync(tmp, metaPath(tag));
}

// ---------------------------------------------------------------- measuring

const { now, cpuSnapshot, otherLoad, parseOptions, memStatus, diskUsage, readVersion, machineInfo, runJsonChild } = require('./measure');
const log = (...a) => console.error(...a);
const gc = () => { if (global.gc) { global.gc(); global.gc(); } };

// Current and peak resident set from /proc (bytes); peak is VmHWM.

// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so
// the peak of an operation is measured apart from the load that preceded it.
function resetPeak() {
  try { fs.writeFileSync('/proc/self/clear_refs', '5'); return true; } catch { return false; }
}


// du: allocated bytes (st_blocks) and apparent bytes of a file or directory.

function fsyncFile(file) {
  const fd = fs.openSync(file, 'r+');
  try { const t = now(); fs.fsyncSync(fd); return now() - t; } finally { fs.closeSync(fd); }
}

// k distinct ids in [0, n), seeded: the same rows are upserted in every run.
function pickIds(n, k, seed) {
  const rng = data.makeRng(seed);
  const seen = new Set();
  while (seen.size < k) seen.add(rng.next() % n);
  return [...seen];
}

// ---------------------------------------------------------------- worker tasks

function loadVecvault() {
  try {
    return require(VECVAULT_MODULE).VectorDB;
  } catch (err) {
    throw new Error(`vecvault did not load from ${VECVAULT_MODULE} (run \`npm run build\` in the repo root): ${String(err.message).split('\n')[0]}`);
  }
}

const usearchConfig = (p) => ({
  dimensions: p.dim, metric: 'cos', quantization: 'f32', connectivity: p.m, expansion_add: p.efConstruction,
  expansion_search: 64, multi: false,
});

const TASKS = {
  // Builds: all cores for vecvault (addBatchAsync) and usearch; hnswlib-node
  // has no parallel insert from JS, so its addPoint loop runs on one thread.
  async 'build-vecvault'(o, p) {
    return buildVecvault(loadVecvault(), p, o.dest, o.enc === '1');
  },

  async 'build-hnswlib'(o, p) {
    return buildHnswlib(p, o.dest);
  },

  async 'build-usearch'(o, p) {
    const usearch = require('usearch');
    const base = baseData(p);
    const keys = new BigUint64Array(p.n);
    for (let i = 0; i < p.n; i++) keys[i] = BigInt(i);
    const index = new usearch.Index(usearchConfig(p));
    let t = now();
    index.add(keys, base, 0);
    const buildSec = now() - t;
    const tmp = `${o.dest}.tmp-${process.pid}`;
    t = now();
    index.save(tmp);
    const saveSec = now() - t;
    fs.renameSync(tmp, o.dest);
    return { buildSec, saveSec, threads: os.cpus().length };
  },

  // Full save of a database in memory (the cached session, loaded eagerly)
  // into a new directory, then an incremental save after upserting 1% of ids.
  async 'vv-save'(o, p) {
    const VectorDB = loadVecvault();
    const enc = o.enc === '1';
    const db = await VectorDB.load(o.src, enc ? { key: KEY } : {});
    const out = { count: db.size, loadStats: db.loadStats };
    gc();
    out.rssBefore = memStatus().rss;
    out.peakReset = resetPeak();
    const dir = path.join(o.tmp, `vv-${enc ? 'enc' : 'plain'}-${process.pid}`);
    try {
      let c0 = cpuSnapshot();
      let t = now();
      out.full = await db.save(dir);
      out.fullSec = now() - t;
      out.otherLoad = { full: otherLoad(c0, cpuSnapshot()) };
      out.peakSave = memStatus().peak;
      out.disk = diskUsage(dir);

      const ids = pickIds(p.n, Math.max(1, Math.round(p.n * UPSERT_FRACTION)), 7);
      const vecs = data.synthetic(ids.length, p.dim, { seed: 3, clusters: p.clusters, normalize: true }).data;
      t = now();
      for (let i = 0; i < ids.length; i++) db.add(String(ids[i]), vecs.subarray(i * p.dim, (i + 1) * p.dim));
      out.upserts = ids.length;
      out.upsertSec = now() - t;
      gc();
      out.rssBeforeIncremental = memStatus().rss;
      resetPeak();
      c0 = cpuSnapshot();
      t = now();
      out.incremental = await db.save(dir);
      out.incrementalSec = now() - t;
      out.otherLoad.incremental = otherLoad(c0, cpuSnapshot());
      out.peakIncremental = memStatus().peak;
      out.diskAfterIncremental = diskUsage(dir);
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return out;
  },

  async 'vv-load'(o, p) {
    const VectorDB = loadVecvault();
    const enc = o.enc === '1';
    const q = queryVector(p);
    gc();
    const out = { rssBefore: memStatus().rss };
    const c0 = cpuSnapshot();
    const t = now();
    const db = await VectorDB.load(o.src, enc ? { key: KEY } : {});
    out.loadSec = now() - t;
    const r = db.search(q, K);
    out.firstResultSec = now() - t;
    out.otherLoad = { load: otherLoad(c0, cpuSnapshot()) };
    Object.assign(out, { peak: memStatus().peak, rssAfter: memStatus().rss });
    out.loadStats = db.loadStats;
    out.count = db.size;
    out.top1 = r.length ? Number(r[0].id) : null;
    out.disk = diskUsage(o.src);
    db.close();
    return out;
  },

  async 'hnswlib-write'(o, p) {
    const { HierarchicalNSW } = require('hnswlib-node');
    const index = new HierarchicalNSW(p.metric, p.dim);
    await index.readIndex(o.src);
    gc();
    const out = { count: index.getCurrentCount(), rssBefore: memStatus().rss, peakReset: resetPeak() };
    return peerSave(out, path.join(o.tmp, `hnswlib-${process.pid}.bin`), (file) => index.writeIndex(file));
  },

  async 'hnswlib-read'(o, p) {
    const { HierarchicalNSW } = require('hnswlib-node');
    const q = Array.from(queryVector(p));
    gc();
    const out = { rssBefore: memStatus().rss };
    const c0 = cpuSnapshot();
    const t = now();
    const index = new HierarchicalNSW(p.metric, p.dim);
    await index.readIndex(o.src);
    out.loadSec = now() - t;
    const r = index.searchKnn(q, K);
    out.firstResultSec = now() - t;
    out.otherLoad = { load: otherLoad(c0, cpuSnapshot()) };
    Object.assign(out, { peak: memStatus().peak, rssAfter: memStatus().rss });
    out.count = index.getCurrentCount();
    out.top1 = r.neighbors[0];
    out.disk = diskUsage(o.src);
    return out;
  },

  async 'usearch-save'(o, p) {
    const usearch = require('usearch');
    const index = new usearch.Index(usearchConfig(p));
    index.load(o.src);
    gc();
    const out = { count: index.size(), rssBefore: memStatus().rss, peakReset: resetPeak() };
    return peerSave(out, path.join(o.tmp, `usearch-${process.pid}.usearch`), (file) => index.save(file));
  },

  // mode 'load' reads the file into memory; 'view' memory-maps it (pages are
  // read on demand, so RSS counts only what the first search touched).
  async 'usearch-open'(o, p) {
    const usearch = require('usearch');
    const q = queryVector(p);
    gc();
    const out = { mode: o.mode, rssBefore: memStatus().rss };
    const c0 = cpuSnapshot();
    const t = now();
    const index = new usearch.Index(usearchConfig(p));
    if (o.mode === 'view') index.view(o.src); else index.load(o.src);
    out.loadSec = now() - t;
    const r = index.search(q, K, 1);
    out.firstResultSec = now() - t;
    out.otherLoad = { load: otherLoad(c0, cpuSnapshot()) };
    Object.assign(out, { peak: memStatus().peak, rssAfter: memStatus().rss });
    out.count = index.size();
    out.top1 = Number(r.keys[0]);
    out.disk = diskUsage(o.src);
    return out;
  },
};

async function runWorker(o) {
  const task = TASKS[o.worker];
  if (!task) throw new Error(`session.js: unknown worker task ${o.worker}`);
  const out = await task(o, sizeParams(o.size));
  out.peakFinal = memStatus().peak;
  process.stdout.write(JSON.stringify(out) + '\n');
}

// ---------------------------------------------------------------- parent

function runChild(task, o, extra, timeoutMin = o.timeoutMin) {
  const args = ['--expose-gc', __filename, '--worker', task, '--size', extra.size];
  for (const [k, v] of Object.entries(extra)) if (k !== 'size') args.push(`--${k}`, String(v));
  return runJsonChild(process.execPath, args, { timeoutMin, cwd: __dirname, label: `${task}: ` });
}

async function ensureCache(tag, p, o) {
  fs.mkdirSync(cacheDir(tag), { recursive: true });
  const fp = dataFingerprint(p);
  const state = cacheState(tag, p, fp);
  if (o.rebuild || !state.same) {
    for (const what of Object.keys(CACHE_FILES)) fs.rmSync(cachePath(tag, what), { recursive: true, force: true });
    state.meta.built = {};
    for (const what of Object.keys(state.valid)) state.valid[what] = false;
  }
  const wanted = ['vecvault-plain', 'vecvault-enc', ...(o.skipPeers ? [] : ['hnswlib', 'usearch'])];
  for (const what of wanted) {
    if (state.valid[what]) { log(`[session] ${tag}: cached ${what} (${cachePath(tag, what)})`); continue; }
    log(`[session] ${tag}: building ${what} (n=${p.n}, M=${p.m}, efConstruction=${p.efConstruction}); cached for later runs`);
    const task = what.startsWith('vecvault') ? 'build-vecvault' : `build-${what}`;
    // A one-off 1M single-threaded hnswlib build can take far longer than a measurement.
    const r = await runChild(task, o, { size: tag, dest: cachePath(tag, what), ...(what === 'vecvault-enc' ? { enc: 1 } : {}) },
      o.timeoutMin * 8);
    if (r.error) throw new Error(`building ${what} for ${tag} failed: ${r.error}`);
    log(`[session] ${tag}:   ${what} built in ${r.buildSec.toFixed(1)} s (${r.threads} threads), written in ${r.saveSec.toFixed(1)} s`);
    state.meta.built[what] = { version: readVersion(LIB_DIRS[libOf(what)]), at: new Date().toISOString(), ...r };
    writeMeta(tag, state.meta);
  }
  return state.meta;
}

// Every measurement, one fresh child each, repetitions interleaved so that
// a burst of load from elsewhere does not hit all repeats of one operation.
function plan(o, tag, p) {
  const src = (what) => cachePath(tag, what);
  const jobs = [
    ['vv-save plain', 'vv-save', { src: src('vecvault-plain'), enc: 0 }],
    ['vv-save enc', 'vv-save', { src: src('vecvault-enc'), enc: 1 }],
    ['vv-load plain', 'vv-load', { src: src('vecvault-plain'), enc: 0 }],
    ['vv-load enc', 'vv-load', { src: src('vecvault-enc'), enc: 1 }],
  ];
  if (!o.skipPeers) {
    jobs.push(
      ['hnswlib write', 'hnswlib-write', { src: src('hnswlib') }],
      ['hnswlib read', 'hnswlib-read', { src: src('hnswlib') }],
      ['usearch save', 'usearch-save', { src: src('usearch') }],
      ['usearch load', 'usearch-open', { src: src('usearch'), mode: 'load' }],
      ['usearch view', 'usearch-open', { src: src('usearch'), mode: 'view' }]);
  }
  return jobs.map(([name, task, extra]) => ({ name, task, extra: { size: tag, tmp: o.tmpDir, ...extra } }));
}

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const h = v.length >> 1;
  return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

// Medians of the fields the report uses; the raw runs stay in the JSON.
function summarize(runs) {
  const ok = runs.filter((r) => !r.error);
  if (ok.length === 0) return { error: runs.map((r) => r.error).join('; ') };
  const m = (f) => median(ok.map(f));
  const s = {
    runs: ok.length,
    errors: runs.filter((r) => r.error).map((r) => r.error),
    count: ok[0].count,
    rssBefore: m((r) => r.rssBefore),
    diskAllocated: m((r) => r.disk && r.disk.allocated),
    diskApparent: m((r) => r.disk && r.disk.apparent),
    diskFiles: ok[0].disk ? ok[0].disk.files : null,
    maxOtherLoad: Math.max(0, ...ok.flatMap((r) => Object.values(r.otherLoad || {}).filter((v) => v !== null))),
  };
  if (ok[0].loadSec !== undefined) {
    Object.assign(s, {
      loadSec: m((r) => r.loadSec), firstResultSec: m((r) => r.firstResultSec), peak: m((r) => r.peak),
      rssAfter: m((r) => r.rssAfter), top1: ok[0].top1,
    });
    if (ok[0].loadStats) s.loadTimeMs = m((r) => r.loadStats.loadTimeMs);
    if (ok[0].loadStats) s.bytesRead = ok[0].loadStats.bytesRead;
  }
  if (ok[0].saveSec !== undefined) {
    Object.assign(s, { saveSec: m((r) => r.saveSec), fsyncSec: m((r) => r.fsyncSec), peakSave: m((r) => r.peakSave), peakReset: ok[0].peakReset });
  }
  if (ok[0].full) {
    Object.assign(s, {
      saveSec: m((r) => r.full.timeMs / 1000), peakSave: m((r) => r.peakSave), peakReset: ok[0].peakReset,
      bytesWritten: m((r) => r.full.bytesWritten), full: ok[0].full.full,
      incremental: {
        upserts: ok[0].upserts, upsertSec: m((r) => r.upsertSec), saveSec: m((r) => r.incremental.timeMs / 1000),
        bytesWritten: m((r) => r.incremental.bytesWritten), full: ok[0].incremental.full,
        chunksWritten: ok[0].incremental.chunksWritten, chunksReused: ok[0].incremental.chunksReused,
        indexSegmentsWritten: ok[0].incremental.indexSegmentsWritten,
        pctOfFull: m((r) => (100 * r.incremental.bytesWritten) / r.full.bytesWritten),
        peakOverhead: m((r) => r.peakIncremental - r.rssBeforeIncremental),
      },
    });
  }
  return s;
}

function ratios(res, n) {
  const g = (k, f) => (res[k] && !res[k].error ? res[k][f] : null);
  const div = (a, b) => (a !== null && b !== null && b > 0 ? a / b : null);
  const encLoad = g('vv-load enc', 'loadTimeMs');
  return {
    encLoadSec: encLoad === null ? null : encLoad / 1000,
    encLoadTargetApplies: n === 100000,
    encOverPlainSave: div(g('vv-save enc', 'saveSec'), g('vv-save plain', 'saveSec')),
    encOverPlainLoad: div(g('vv-load enc', 'loadTimeMs'), g('vv-load plain', 'loadTimeMs')),
    incrementalPctPlain: res['vv-save plain'] && res['vv-save plain'].incremental ? res['vv-save plain'].incremental.pctOfFull : null,
    incrementalPctEnc: res['vv-save enc'] && res['vv-save enc'].incremental ? res['vv-save enc'].incremental.pctOfFull : null,
    encLoadOverHnswlibRead: div(encLoad === null ? null : encLoad / 1000, g('hnswlib read', 'loadSec')),
    encFirstResultOverHnswlib: div(g('vv-load enc', 'firstResultSec'), g('hnswlib read', 'firstResultSec')),
    encLoadOverUsearchLoad: div(encLoad === null ? null : encLoad / 1000, g('usearch load', 'loadSec')),
    encSaveOverHnswlibWriteFsync: div(g('vv-save enc', 'saveSec'),
      g('hnswlib write', 'saveSec') === null ? null : g('hnswlib write', 'saveSec') + g('hnswlib write', 'fsyncSec')),
  };
}

// ---------------------------------------------------------------- report

const MB = 1e6;
const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));
const mb = (v) => fmt(v === null || v === undefined ? null : v / MB, 1);
const pad = (s, w) => String(s).padStart(w);
const padr = (s, w) => String(s).padEnd(w);
const row = (cells, widths) => cells.map((c, i) => (i === 0 ? padr(c, widths[0]) : pad(c, widths[i]))).join('');

function printSize(sz) {
  const p = (s = '') => console.log(s);
  const { params: pr, results: res, ratios: r } = sz;
  const raw = pr.n * pr.dim * 4;
  p();
  p(`== sessions: synthetic ${sz.size} x ${pr.dim} ${pr.metric}, M=${pr.m} efConstruction=${pr.efConstruction}, ` +
    `vecvault chunkSize=${pr.chunkSize}; raw vectors ${mb(raw)} MB; medians of ${sz.repeats} fresh processes`);
  const err = Object.entries(res).filter(([, v]) => v.error);
  for (const [name, v] of err) p(`FAILED ${name}: ${v.error}`);

  p();
  p('save (into a new directory / file; page cache warm)');
  const sw = [24, 9, 10, 12, 12, 10, 12, 11, 11];
  p(row(['', 'save s', '+fsync s', 'written MB', 'on disk MB', 'disk/raw', 'RSS pre MB', 'peak MB', 'save +MB'], sw));
  const saveRow = (label, s, written, fsync) => {
    if (!s || s.error) return;
    const disk = s.diskAllocated;
    p(row([label, fmt(s.saveSec), fsync === null ? 'incl.' : fmt(fsync, 3), mb(written), mb(disk), fmt(disk / raw),
      mb(s.rssBefore), mb(s.peakSave), mb(s.peakSave - s.rssBefore)], sw));
  };
  saveRow('vecvault unencrypted', res['vv-save plain'], res['vv-save plain'] && res['vv-save plain'].bytesWritten, null);
  saveRow('vecvault encrypted', res['vv-save enc'], res['vv-save enc'] && res['vv-save enc'].bytesWritten, null);
  for (const [label, k] of [['hnswlib-node writeIndex', 'hnswlib write'], ['usearch save', 'usearch save']]) {
    const s = res[k];
    if (s && !s.error) saveRow(label, s, s.diskApparent, s.fsyncSec);
  }

  p();
  p(`incremental save after upserting ${fmt(UPSERT_FRACTION * 100, 0)}% of ids with new vectors (into the fresh full save)`);
  const iw = [24, 9, 12, 9, 12, 12, 9, 12, 11];
  p(row(['', 'upserts', 'upsert s', 'save s', 'written MB', '% of full', 'chunks', 'index segs', 'save +MB'], iw));
  for (const [label, k] of [['vecvault unencrypted', 'vv-save plain'], ['vecvault encrypted', 'vv-save enc']]) {
    const s = res[k];
    if (!s || s.error) continue;
    const i = s.incremental;
    p(row([label, i.upserts, fmt(i.upsertSec), fmt(i.saveSec), mb(i.bytesWritten), fmt(i.pctOfFull, 1),
      `${i.chunksWritten}+${i.chunksReused}`, i.indexSegmentsWritten, mb(i.peakOverhead)], iw));
  }
  p('  (chunks = written+reused; a full save would write all of them)');

  p();
  p('open (fresh process; page cache warm)');
  const lw = [24, 9, 16, 11, 12, 10, 11, 13];
  p(row(['', 'load s', 'to 1st result s', 'file MB', 'RSS pre MB', 'peak MB', 'after MB', 'peak-pre MB'], lw));
  const loadRow = (label, s) => {
    if (!s || s.error) return;
    const loadSec = s.loadTimeMs !== undefined ? s.loadTimeMs / 1000 : s.loadSec;
    p(row([label, fmt(loadSec, 3), fmt(s.firstResultSec, 3), mb(s.diskApparent), mb(s.rssBefore), mb(s.peak),
      mb(s.rssAfter), mb(s.peak - s.rssBefore)], lw));
  };
  loadRow('vecvault unencrypted', res['vv-load plain']);
  loadRow('vecvault encrypted', res['vv-load enc']);
  loadRow('hnswlib-node readIndex', res['hnswlib read']);
  loadRow('usearch load', res['usearch load']);
  loadRow('usearch view (mmap)', res['usearch view']);
  p('  (vecvault load s = loadStats.loadTimeMs; after = RSS once the first result is back)');
  if (res['usearch view']) p('  (usearch view maps the file: its RSS counts only the pages the first search touched)');

  const counts = Object.entries(res).filter(([, v]) => !v.error && v.count !== undefined && v.count !== pr.n);
  if (counts.length) p(`WARNING: wrong vector count in ${counts.map(([k, v]) => `${k} (${v.count})`).join(', ')}`);
  const busy = Object.entries(res).filter(([, v]) => !v.error && v.maxOtherLoad > BUSY_CORES);
  if (busy.length) {
    p(`WARNING: other processes used CPU during ${busy.map(([k, v]) => `${k} (${fmt(v.maxOtherLoad, 2)} cores)`).join(', ')}. Timings are noisy.`);
  }
  for (const k of ['vv-save plain', 'vv-save enc']) {
    const v = res[k];
    if (v && !v.error && (v.full !== true || v.incremental.full !== false)) {
      p(`WARNING: ${k}: the first save was ${v.full ? 'full' : 'incremental'}, the second ${v.incremental.full ? 'full' : 'incremental'} (expected full, then incremental)`);
    }
  }
  const noReset = Object.entries(res).filter(([, v]) => !v.error && v.peakReset === false);
  if (noReset.length) p('WARNING: could not reset VmHWM (/proc/self/clear_refs): save peaks include the load before them.');

  p();
  p('targets');
  const tw = [52, 12, 12, 8];
  const verdict = (v, ok) => (v === null ? '-' : ok ? 'ok' : 'MISSED');
  p(row(['', 'measured', 'target', ''], tw));
  p(row([`eager load, encrypted${r.encLoadTargetApplies ? '' : ' (target is for 100K)'}`, `${fmt(r.encLoadSec, 3)} s`,
    `< ${TARGETS.encLoadSec100k} s`, r.encLoadTargetApplies ? verdict(r.encLoadSec, r.encLoadSec < TARGETS.encLoadSec100k) : ''], tw));
  p(row(['encrypted / unencrypted full save', `${fmt(r.encOverPlainSave)}x`, `<= ${TARGETS.encOverPlain}x`,
    verdict(r.encOverPlainSave, r.encOverPlainSave <= TARGETS.encOverPlain)], tw));
  p(row(['encrypted / unencrypted load', `${fmt(r.encOverPlainLoad)}x`, `<= ${TARGETS.encOverPlain}x`,
    verdict(r.encOverPlainLoad, r.encOverPlainLoad <= TARGETS.encOverPlain)], tw));
  for (const [label, v] of [['incremental (1% upserted) / full bytes, unencrypted', r.incrementalPctPlain],
    ['incremental (1% upserted) / full bytes, encrypted', r.incrementalPctEnc]]) {
    p(row([label, `${fmt(v, 1)} %`, `< ${TARGETS.incrementalPct} %`, verdict(v, v < TARGETS.incrementalPct)], tw));
  }
  if (r.encLoadOverHnswlibRead !== null || r.encLoadOverUsearchLoad !== null) {
    p();
    p('ratios against the peers (lower is better for vecvault)');
    p(`  vecvault encrypted load / hnswlib-node readIndex:          ${fmt(r.encLoadOverHnswlibRead)}x`);
    p(`  ... to first result, same pair:                            ${fmt(r.encFirstResultOverHnswlib)}x`);
    p(`  vecvault encrypted load / usearch load:                    ${fmt(r.encLoadOverUsearchLoad)}x`);
    p(`  vecvault encrypted save (fsyncs) / hnswlib writeIndex+fsync: ${fmt(r.encSaveOverHnswlibWriteFsync)}x`);
  }
}


// Temporary directories live next to the cache (a real disk, where /tmp may
// be tmpfs); one per run, and leftovers of runs that died are removed.
function makeTmpRoot() {
  const root = path.join(SESSIONS_DIR, 'tmp');
  fs.mkdirSync(root, { recursive: true });
  for (const e of fs.readdirSync(root)) {
    const pid = Number((/^run-(\d+)$/.exec(e) || [])[1]);
    let alive = false;
    try { if (pid) { process.kill(pid, 0); alive = true; } } catch { /* gone */ }
    if (!alive) fs.rmSync(path.join(root, e), { recursive: true, force: true });
  }
  const dir = path.join(root, `run-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

async function main(argv) {
  const o = parseArgs(argv);
  if (o.help) { console.log(HELP); return; }
  if (o.worker) return runWorker(o);

  const started = new Date();
  o.tmpDir = makeTmpRoot();
  const cleanup = () => fs.rmSync(o.tmpDir, { recursive: true, force: true });
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  const report = {
    bench: 'session', started: started.toISOString(), machine: machineInfo(),
    versions: Object.fromEntries(Object.entries(LIB_DIRS).map(([k, d]) => [k, readVersion(d)])),
    targets: TARGETS, upsertFraction: UPSERT_FRACTION, repeats: o.repeats, sizes: [],
  };
  try {
    for (const tag of o.sizeList) {
      const p = sizeParams(tag);
      const meta = await ensureCache(tag, p, o);
      const jobs = plan(o, tag, p);
      const runs = Object.fromEntries(jobs.map((j) => [j.name, []]));
      for (let rep = 0; rep < o.repeats; rep++) {
        for (const j of jobs) {
          log(`[session] ${tag}: ${j.name} (${rep + 1}/${o.repeats})`);
          runs[j.name].push(await runChild(j.task, o, { ...j.extra, rep }));
        }
      }
      const results = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, summarize(v)]));
      const sz = { size: tag, params: p, cache: cacheDir(tag), build: meta.built, repeats: o.repeats, results, ratios: ratios(results, p.n), runs };
      report.sizes.push(sz);
      printSize(sz);
    }
  } finally {
    cleanup();
  }
  report.finished = new Date().toISOString();
  const file = o.out || path.join(RESULTS_DIR, `session-${started.toISOString().slice(0, 19).replace(/:/g, '-')}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nJSON: ${path.relative(process.cwd(), file)}`);
}

// ---------------------------------------------------------------- arguments

const HELP = `node bench/session.js [options]      (or: npm run bench -- session [options])
  --sizes LIST      comma list of 10k, 100k, 1m, ... (default 100k)
  --skip-peers      vecvault only (no hnswlib-node, no usearch)
  --repeats N       fresh processes per measurement; medians reported (default 3)
  --rebuild         rebuild the cached indexes in ~/.cache/vecvault-bench/sessions/<size>/
  --timeout-min M   per measuring child process (default 60; builds get 8x)
  --out FILE        JSON output (default bench/results/session-<date>.json)`;

/** Times a peer library's save into `file`, then its fsync, peak RSS and
 * size on disk, and removes the file. */
async function peerSave(out, file, save) {
  try {
    const c0 = cpuSnapshot();
    const t = now();
    await save(file);
    out.saveSec = now() - t;
    out.otherLoad = { save: otherLoad(c0, cpuSnapshot()) };
    out.peakSave = memStatus().peak;
    out.fsyncSec = fsyncFile(file);
    out.disk = diskUsage(file);
  } finally {
    fs.rmSync(file, { force: true });
  }
  return out;
}

function parseArgs(argv) {
  const o = { sizes: '100k', repeats: '3', timeoutMin: '60', skipPeers: false, rebuild: false };
  const names = {
    '--sizes': 'sizes', '--repeats': 'repeats', '--out': 'out', '--timeout-min': 'timeoutMin',
    // worker-only
    '--worker': 'worker', '--size': 'size', '--src': 'src', '--dest': 'dest', '--tmp': 'tmp', '--enc': 'enc',
    '--mode': 'mode', '--rep': 'rep',
  };
  parseOptions('session.js', argv, o, names, { '--skip-peers': 'skipPeers', '--rebuild': 'rebuild' }, ['repeats', 'timeoutMin']);
  o.repeats = Math.round(o.repeats);
  o.sizeList = String(o.sizes).split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of o.sizeList) parseSize(s);
  return o;
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  });
}

module.exports = { parseArgs, sizeParams, summarize, median, buildHnswlib, buildVecvault };
