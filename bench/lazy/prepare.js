'use strict';
// Prepares what the lazy benchmark measures, once per dataset, and caches it
// outside the repo (see datasets.js for the layout): the base vectors, exact
// ground truth (top-100, brute force in C or on JS worker threads, never vecvault), an
// encrypted session built with vecvault's defaults, hnswlib-node's index of
// the same vectors with the same M/efConstruction, and, when the engine now
// writes a newer format than the cached session has, a re-saved copy.
//
// Each step runs in its own child process (`nice`, so a build in the
// background leaves the machine usable) and records what it did in
// params.json. Run it alone to prepare ahead of a measurement:
//   node bench/lazy/prepare.js --size 1m [--datasets embedding,fashion] [--rebuild] [--resave]

const fs = require('fs');
const os = require('os');
const path = require('path');
const ds_ = require('./datasets');
const { spawnSync } = require('child_process');
const { groundTruth: nativeGroundTruth, compileOnce, writeF32 } = require('./gt');
const { now, parseOptions, diskUsage, runJsonChild } = require('../measure');

const REPO = path.join(__dirname, '..', '..');
const VECVAULT_MODULE = process.env.VECVAULT_MODULE ? path.resolve(process.env.VECVAULT_MODULE) : REPO;
const GT_K = 100;
const HNSWBUILD = path.join(__dirname, 'hnswbuild.cc');
const HNSWLIB_SRC = path.join(__dirname, '..', 'node_modules', 'hnswlib-node', 'src'); // its hnswlib headers
const BATCH = 50000; // rows per addBatch call
const log = (...a) => console.error(...a);

function vecvault() {
  return require(VECVAULT_MODULE).VectorDB;
}

// vecvault's defaults (`new VectorDB({ dimension, metric })` plus the key),
// addBatch in large batches on all cores, then one full save into `dest`.
async function buildSession(VectorDB, ds, dest) {
  const base = ds_.baseVectors(ds);
  const db = new VectorDB({ dimension: ds.dim, metric: ds.metric, encryptAtRest: true, key: ds_.KEY });
  let t = now();
  for (let b = 0; b < ds.n; b += BATCH) {
    const e = Math.min(ds.n, b + BATCH);
    const items = new Array(e - b);
    for (let i = b; i < e; i++) items[i - b] = { id: String(i), vector: base.subarray(i * ds.dim, (i + 1) * ds.dim) };
    db.addBatch(items);
    log(`[prepare] ${ds.id}: session ${e}/${ds.n} added (${(now() - t).toFixed(0)} s)`);
  }
  const buildSec = now() - t;
  const { save, saveSec } = await saveInto(db, dest);
  db.close();
  const info = await VectorDB.inspect(dest);
  return { dir: dest, buildSec, saveSec, save, threads: os.cpus().length, version: info.version, hnsw: info.hnsw, disk: diskUsage(dest) };
}

// hnswbuild.cc, or hnswlib-node's own loop, into `dest` (renamed into place whole).
async function buildHnswlib(ds, dest) {
  const base = ds_.baseVectors(ds);
  const tmp = `${dest}.tmp-${process.pid}`;
  const t = now();
  const bin = compileOnce(HNSWBUILD, 'c++', ['-O3', '-march=native', '-std=c++17', '-pthread', '-I', HNSWLIB_SRC], [], log);
  let threads = 1;
  if (bin) {
    threads = os.cpus().length;
    const file = ds.kind === 'embedding' ? ds_.baseFile(ds) : `${tmp}.f32`;
    if (file !== ds_.baseFile(ds)) writeF32(file, base);
    const r = spawnSync(bin, [file, ds.n, ds.dim, ds.metric, ds_.GRAPH.m, ds_.GRAPH.efConstruction, threads, tmp].map(String),
      { stdio: ['ignore', 'inherit', 'inherit'] });
    if (file !== ds_.baseFile(ds)) fs.rmSync(file, { force: true });
    if (r.error || r.status !== 0) throw new Error(`hnswbuild failed (${r.error ? r.error.message : `exit ${r.status}`})`);
  } else {
    const { HierarchicalNSW } = require('hnswlib-node');
    const index = new HierarchicalNSW(ds.metric, ds.dim);
    index.initIndex(ds.n, ds_.GRAPH.m, ds_.GRAPH.efConstruction, 100);
    for (let i = 0; i < ds.n; i++) index.addPoint(Array.from(base.subarray(i * ds.dim, (i + 1) * ds.dim)), i);
    await index.writeIndex(tmp);
  }
  fs.renameSync(tmp, dest);
  return { file: dest, buildSec: now() - t, threads, native: Boolean(bin), ...ds_.GRAPH, bytes: fs.statSync(dest).size };
}

// Two preparation runs at once (one in the background, one from lazy.js)
// must not build the same thing twice: the second waits for the first (its
// pid in <name>.building), then adopts what it built (renamed into place whole).
async function once(ds, name, dest, adopt, build) {
  const lock = path.join(ds.dir, `${name}.building`);
  await waitForOther(lock, dest);
  if (exists(dest)) return adopt();
  fs.writeFileSync(lock, String(process.pid));
  try {
    return await build();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

async function waitForOther(lock, dest) {
  for (;;) {
    let pid = 0;
    try { pid = Number(fs.readFileSync(lock, 'utf8')); } catch { return; }
    if (!pid || pid === process.pid) return;
    try { process.kill(pid, 0); } catch { return; } // gone: its lock is stale
    log(`[prepare] waiting for process ${pid}, which is building ${dest}`);
    await new Promise((r) => setTimeout(r, 60e3));
  }
}

// ---------------------------------------------------------------- steps (in a child)

// A full save into a new directory that takes `dest`'s place only once whole.
async function saveInto(db, dest) {
  const tmp = `${dest}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const t = now();
  const save = await db.save(tmp);
  const saveSec = now() - t;
  fs.rmSync(dest, { recursive: true, force: true });
  fs.renameSync(tmp, dest);
  return { save, saveSec };
}

const STEPS = {
  async base(ds) {
    const t = now();
    const v = ds_.baseVectors(ds);
    return { n: v.length / ds.dim, fingerprint: ds_.fingerprint(v), sec: now() - t };
  },

  async gt(ds, o) {
    const base = ds_.baseVectors(ds);
    const queries = ds.queries(o.queries);
    const t = now();
    const gt = await nativeGroundTruth(ds.gtName, base, queries, ds.dim, ds.metric, GT_K,
      { log, baseFile: ds.kind === 'embedding' ? ds_.baseFile(ds) : null });
    return { file: gt.file, nq: o.queries, k: gt.k, cached: gt.cached, sec: now() - t };
  },

  async session(ds) {
    const VectorDB = vecvault();
    const dest = path.join(ds.dir, 'session');
    const adopt = async () => ({ dir: dest, adopted: true, version: (await VectorDB.inspect(dest)).version, disk: diskUsage(dest) });
    return once(ds, 'session', dest, adopt, () => buildSession(VectorDB, ds, dest));
  },

  // A load and a full save into a new directory upgrades a session to the
  // format this engine writes.
  async resave(ds, o) {
    const VectorDB = vecvault();
    const src = o.src;
    const t = now();
    const db = await VectorDB.load(src, { key: ds_.KEY, lazy: false });
    const loadSec = now() - t;
    const dest = path.join(ds.dir, `session-v${o.version}`);
    const { save, saveSec } = await saveInto(db, dest);
    const count = db.size;
    db.close();
    const info = await VectorDB.inspect(dest);
    if (count !== ds.n) throw new Error(`re-saved session holds ${count} vectors, not ${ds.n}`);
    return { dir: dest, from: src, loadSec, saveSec, save, version: info.version, disk: diskUsage(dest) };
  },

  // hnswlib's index with vecvault's default M and efConstruction, built by
  // hnswbuild.cc on all cores against the headers hnswlib-node ships (its
  // own addPoint loop runs on one thread: hours at 1M on a shared machine);
  // that loop when there is no C++ compiler.
  async hnswlib(ds) {
    const dest = path.join(ds.dir, 'hnswlib.bin');
    const adopt = async () => ({ file: dest, adopted: true, ...ds_.GRAPH, bytes: fs.statSync(dest).size });
    return once(ds, 'hnswlib', dest, adopt, () => buildHnswlib(ds, dest));
  },

  // The format version this engine writes: a tiny session saved and inspected.
  async 'engine-version'() {
    const VectorDB = vecvault();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-lazy-version-'));
    try {
      const db = new VectorDB({ dimension: 4, metric: 'l2', encryptAtRest: false });
      db.add('a', [1, 2, 3, 4]);
      await db.save(path.join(dir, 's'));
      db.close();
      return { version: (await VectorDB.inspect(path.join(dir, 's'))).version };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },

  async inspect(ds, o) {
    return { version: (await vecvault().inspect(o.src)).version };
  },
};

// ---------------------------------------------------------------- the parent side

function runStep(step, ds, o, extra = {}) {
  const args = [process.execPath, '--expose-gc', '--max-old-space-size=8192', __filename, '--step', step,
    '--dataset', ds.kind, '--size', o.size, '--queries', String(o.queries)];
  for (const [k, v] of Object.entries(extra)) args.push(`--${k}`, String(v));
  const niced = o.nice === false ? args : ['nice', '-n', '10', ...args];
  return runJsonChild(niced[0], niced.slice(1), { timeoutMin: 600, label: `${ds.id} ${step}: ` }).then((r) => {
    if (r.error) throw new Error(r.error);
    return r;
  });
}

const exists = (p) => { try { fs.statSync(p); return true; } catch { return false; } };

/**
 * Makes sure every prepared file of `ds` is there, building what is missing,
 * and returns { session, sessionVersion, engineVersion, gt, hnswlib, params }.
 * o: { size, queries, rebuild, resave, skipPeers }.
 */
async function ensure(ds, o) {
  const p0 = ds_.readParams(ds);
  if (o.rebuild) {
    for (const f of ['session', 'hnswlib.bin', 'params.json']) fs.rmSync(path.join(ds.dir, f), { recursive: true, force: true });
    for (const f of exists(ds.dir) ? fs.readdirSync(ds.dir) : []) if (/^session-v\d+$/.test(f)) fs.rmSync(path.join(ds.dir, f), { recursive: true, force: true });
  }
  fs.mkdirSync(ds.dir, { recursive: true });
  let params = o.rebuild ? {} : p0;
  const t = now();

  if (ds.kind === 'embedding' && !(params.base && exists(ds_.baseFile(ds)))) {
    log(`[prepare] ${ds.id}: generating ${ds.n} base vectors`);
    params = ds_.updateParams(ds, { base: await runStep('base', ds, o) });
  }
  if (!(params.gt && params.gt.nq >= o.queries && exists(params.gt.file))) {
    log(`[prepare] ${ds.id}: exact ground truth, ${o.queries} queries`);
    params = ds_.updateParams(ds, { gt: await runStep('gt', ds, o) });
  }
  if (!(params.session && exists(params.session.dir))) {
    log(`[prepare] ${ds.id}: building the encrypted session (vecvault defaults; at 1M this takes a while)`);
    params = ds_.updateParams(ds, { session: await runStep('session', ds, o) });
  }
  const hnswFile = path.join(ds.dir, 'hnswlib.bin');
  if (!o.skipPeers && !params.hnswlib && exists(hnswFile)) {
    // Built by a `--step hnswlib` run of its own (renamed into place whole).
    params = ds_.updateParams(ds, { hnswlib: { file: hnswFile, adopted: true, ...ds_.GRAPH, bytes: fs.statSync(hnswFile).size } });
  }
  if (!o.skipPeers && !(params.hnswlib && exists(params.hnswlib.file))) {
    log(`[prepare] ${ds.id}: building hnswlib's index`);
    params = ds_.updateParams(ds, { hnswlib: await runStep('hnswlib', ds, o) });
  }

  // The engine under test may write a newer format than the cached session:
  // then the bench measures a re-saved copy, as a user's next save would make.
  const engineVersion = (await runStep('engine-version', ds, { ...o, nice: false })).version;
  let session = params.session.dir;
  let sessionVersion = (await runStep('inspect', ds, { ...o, nice: false }, { src: session })).version;
  if (sessionVersion < engineVersion || o.resave) {
    const upgraded = path.join(ds.dir, `session-v${engineVersion}`);
    if (o.resave || !exists(upgraded)) {
      log(`[prepare] ${ds.id}: re-saving the format-${sessionVersion} session as format ${engineVersion}`);
      params = ds_.updateParams(ds, { [`resave-v${engineVersion}`]: await runStep('resave', ds, o, { src: session, version: engineVersion }) });
    }
    session = upgraded;
    sessionVersion = (await runStep('inspect', ds, { ...o, nice: false }, { src: session })).version;
  }
  return { session, sessionVersion, engineVersion, gt: params.gt.file, hnswlib: params.hnswlib ? params.hnswlib.file : null, params, prepareSec: now() - t };
}

// ---------------------------------------------------------------- command line

const HELP = `node bench/lazy/prepare.js [--size 1m] [--datasets embedding,fashion] [--queries 1000] [--rebuild] [--resave] [--skip-peers]
Builds (once) and caches under ~/.cache/vecvault-bench/lazy3/: base vectors, ground truth,
the encrypted session (vecvault defaults), hnswlib-node's index; re-saves the session when
the engine writes a newer format (--resave forces it).`;

async function main(argv) {
  const o = { size: '1m', datasets: 'embedding', queries: '1000', rebuild: false, resave: false, skipPeers: false };
  parseOptions('prepare.js', argv, o,
    { '--size': 'size', '--datasets': 'datasets', '--queries': 'queries', '--step': 'step', '--dataset': 'dataset', '--src': 'src', '--version': 'version' },
    { '--rebuild': 'rebuild', '--resave': 'resave', '--skip-peers': 'skipPeers' }, ['queries']);
  if (o.help) { console.log(HELP); return; }
  o.queries = Math.round(o.queries);
  if (o.step) {
    const ds = ds_.dataset(o.dataset, o.size);
    const r = await STEPS[o.step](ds, o);
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  for (const name of String(o.datasets).split(',')) {
    const ds = ds_.dataset(name.trim(), o.size);
    const r = await ensure(ds, o);
    console.log(JSON.stringify({ dataset: ds.id, ...r, params: undefined }));
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => { console.error(err.stack || err.message); process.exit(1); });
}

module.exports = { ensure };
