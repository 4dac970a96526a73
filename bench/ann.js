'use strict';
// Approximate-nearest-neighbour speed and quality of vecvault's HNSW
// against hnswlib-node and usearch, with the same graph parameters.
//
// The parent process loads each dataset once, makes sure the exact ground
// truth is cached, then runs every library in its own child process
// (`node --expose-gc bench/ann.js --worker --lib L --dataset D ...`) one after
// the other, so memory numbers are clean and QPS runs see the same machine
// state. A child prints one JSON object on stdout; its log goes to stderr.
//
// Usage: node bench/ann.js [--dataset fashion|embedding10k|embedding100k|embedding1m|synthetic10k|synthetic100k|synthetic1m|all]
//          [--queries 1000] [--libs vecvault,hnswlib,usearch] [--ef 16,32,...] [--out FILE]

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const data = require('./data');

const REPO = path.join(__dirname, '..');
// Another vecvault checkout or install can be measured with VECVAULT_MODULE=path.
const VECVAULT_MODULE = process.env.VECVAULT_MODULE ? path.resolve(process.env.VECVAULT_MODULE) : REPO;
const RESULTS_DIR = path.join(__dirname, 'results');
const GT_K = 100;
const LIB_NAMES = { vecvault: 'vecvault', hnswlib: 'hnswlib-node', usearch: 'usearch' };
const RECALL_TARGETS = [0.95, 0.99];
const BUSY_CORES = 0.2; // other processes' CPU above which a timing is flagged

// ---------------------------------------------------------------- datasets

const SYNTHETIC_DIM = 384;

function syntheticDataset(n, tag) {
  return {
    name: `synthetic-${tag}-${SYNTHETIC_DIM}-angular`,
    metric: 'cosine',
    load(nq) {
      const base = data.synthetic(n, SYNTHETIC_DIM, { seed: 1 });
      const queries = data.synthetic(nq, SYNTHETIC_DIM, { seed: 2, clusters: base.clusters });
      return { base: base.data, queries: queries.data, dim: SYNTHETIC_DIM, params: base.params };
    },
  };
}

function embeddingDataset(n, tag) {
  return {
    name: `embedding-${tag}-${SYNTHETIC_DIM}-angular`,
    metric: 'cosine',
    load(nq) {
      const base = data.embedding(n, SYNTHETIC_DIM, { seed: 1 });
      const queries = data.embedding(nq, SYNTHETIC_DIM, { seed: 2, clusters: base.clusters });
      return { base: base.data, queries: queries.data, dim: SYNTHETIC_DIM, params: base.params };
    },
  };
}

const DATASETS = {
  fashion: {
    name: 'fashion-mnist-784-euclidean',
    metric: 'l2',
    load(nq) {
      const f = data.loadFashionMnist();
      if (nq > f.nTest) throw new RangeError(`--queries: fashion-mnist has only ${f.nTest} test vectors`);
      return { base: f.train, queries: f.test.slice(0, nq * f.dim), dim: f.dim, params: { source: data.FASHION_DIR } };
    },
  },
  synthetic10k: syntheticDataset(10000, '10k'),
  synthetic100k: syntheticDataset(100000, '100k'),
  synthetic1m: syntheticDataset(1000000, '1m'),
  embedding10k: embeddingDataset(10000, '10k'),
  embedding100k: embeddingDataset(100000, '100k'),
  embedding1m: embeddingDataset(1000000, '1m'),
};
// Embedding-shaped data is the yardstick; isotropic clusters are a stress case.
const DEFAULT_DATASETS = ['fashion', 'embedding100k'];

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const o = {
    dataset: 'all', queries: 1000, libs: 'vecvault,hnswlib,usearch', ef: '16,32,64,128,256,512',
    k: 10, m: 16, efConstruction: 200, out: null, worker: false, lib: null, timeoutMin: 60, minTime: 0.5,
  };
  const names = {
    '--dataset': 'dataset', '--queries': 'queries', '--libs': 'libs', '--ef': 'ef', '--k': 'k', '--m': 'm',
    '--ef-construction': 'efConstruction', '--out': 'out', '--lib': 'lib', '--timeout-min': 'timeoutMin',
    '--min-time': 'minTime',
  };
  parseOptions('ann.js', argv, o, names, { '--worker': 'worker' }, ['queries', 'k', 'm', 'efConstruction', 'timeoutMin', 'minTime']);
  o.efs = String(o.ef).split(',').map(Number);
  if (o.efs.some((e) => !Number.isInteger(e) || e <= 0)) throw new RangeError('ann.js: --ef must be a list of positive integers');
  o.libList = String(o.libs).split(',').map((s) => s.trim()).filter(Boolean);
  for (const l of o.libList) if (!LIB_NAMES[l]) throw new Error(`ann.js: unknown library ${l} (known: ${Object.keys(LIB_NAMES).join(', ')})`);
  o.datasetList = o.dataset === 'all' ? DEFAULT_DATASETS : String(o.dataset).split(',');
  for (const d of o.datasetList) if (!DATASETS[d]) throw new Error(`ann.js: unknown dataset ${d} (known: ${Object.keys(DATASETS).join(', ')}, all)`);
  return o;
}

const HELP = `node bench/ann.js [options]
  --dataset NAME      fashion | embedding{10k,100k,1m} | synthetic{10k,100k,1m} | all (default: all = fashion,embedding100k)
  --queries N         number of queries (default 1000)
  --libs LIST         vecvault,hnswlib,usearch (default: all three)
  --ef LIST           efSearch sweep (default 16,32,64,128,256,512)
  --k K               neighbours per query for recall@K (default 10)
  --m M               HNSW M (default 16)
  --ef-construction N HNSW efConstruction (default 200)
  --min-time S        minimum seconds of timed search per ef value (default 0.5)
  --out FILE          JSON output (default bench/results/ann-<date>.json)`;

// ---------------------------------------------------------------- adapters

// Each adapter wraps one library behind the same small interface. build*()
// returns an opaque index; prepare(index, ef) returns a search function
// (queryIndex -> raw result) for that efSearch; ids(raw) -> number[].
const ADAPTERS = {
  vecvault(ctx) {
    let VectorDB;
    try {
      ({ VectorDB } = require(VECVAULT_MODULE));
    } catch (err) {
      const first = String(err.message).split('\n')[0];
      throw new Error(`vecvault did not load from ${VECVAULT_MODULE} (is the addon built? run \`npm run build\` in the repo root): ${first}`);
    }
    const { base, dim, n, metric, m, efConstruction, queries } = ctx;
    // Created before the memory baseline: the items are the caller's input.
    const items = new Array(n);
    for (let i = 0; i < n; i++) items[i] = { id: String(i), vector: base.subarray(i * dim, (i + 1) * dim) };
    const qs = Array.from({ length: ctx.nq }, (_, i) => queries.subarray(i * dim, (i + 1) * dim));
    const make = (threads) => new VectorDB({
      dimension: dim, metric, index: 'hnsw', hnsw: { m, efConstruction, efSearch: 64 }, ...(threads ? { threads } : {}),
    });
    return {
      version: readVersion(VECVAULT_MODULE),
      buildSingle() { const db = make(1); db.addBatch(items); return db; },
      async buildParallel() { const db = make(0); await db.addBatchAsync(items); return db; },
      parallelThreads: os.cpus().length,
      prepare(db, ef) { const k = ctx.k; return (i) => db.search(qs[i], k, { efSearch: ef }); },
      ids(raw) { return raw.map((r) => parseInt(r.id, 10)); },
      free(db) { db.close(); },
    };
  },

  hnswlib(ctx) {
    const { HierarchicalNSW } = require('hnswlib-node');
    const { base, dim, n, metric, m, efConstruction, queries } = ctx;
    const space = { l2: 'l2', cosine: 'cosine', dot: 'ip' }[metric];
    // hnswlib-node takes plain arrays only; queries are converted before timing.
    const qs = Array.from({ length: ctx.nq }, (_, i) => Array.from(queries.subarray(i * dim, (i + 1) * dim)));
    return {
      version: readVersion(path.join(__dirname, 'node_modules', 'hnswlib-node')),
      buildSingle() {
        const index = new HierarchicalNSW(space, dim);
        index.initIndex(n, m, efConstruction, 100);
        for (let i = 0; i < n; i++) index.addPoint(Array.from(base.subarray(i * dim, (i + 1) * dim)), i);
        return index;
      },
      buildParallel: null, // no multi-threaded insert is exposed to JS
      prepare(index, ef) { index.setEf(ef); const k = ctx.k; return (i) => index.searchKnn(qs[i], k); },
      ids(raw) { return raw.neighbors; },
      free() {},
    };
  },

  usearch(ctx) {
    const usearch = require('usearch');
    const { base, dim, n, metric, m, efConstruction, queries } = ctx;
    const kind = { l2: 'l2sq', cosine: 'cos', dot: 'ip' }[metric];
    const keys = new BigUint64Array(n);
    for (let i = 0; i < n; i++) keys[i] = BigInt(i);
    const qs = Array.from({ length: ctx.nq }, (_, i) => queries.subarray(i * dim, (i + 1) * dim));
    const config = (ef) => ({
      dimensions: dim, metric: kind, quantization: 'f32', connectivity: m, expansion_add: efConstruction, expansion_search: ef, multi: false,
    });
    // The JS binding fixes expansion_search at construction and has no setter,
    // but load() keeps the constructor's value: so the built graph is saved once
    // and reloaded into an index configured for each ef.
    const file = path.join(os.tmpdir(), `vecvault-bench-usearch-${process.pid}.usearch`);
    let saved = false;
    return {
      version: readVersion(path.join(__dirname, 'node_modules', 'usearch')),
      buildSingle() { const index = new usearch.Index(config(64)); index.add(keys, base, 1); return index; },
      buildParallel() { const index = new usearch.Index(config(64)); index.add(keys, base, 0); return index; },
      parallelThreads: os.cpus().length,
      prepare(index, ef) {
        if (!saved) { index.save(file); saved = true; }
        const loaded = new usearch.Index(config(ef));
        loaded.load(file);
        const k = ctx.k;
        return (i) => loaded.search(qs[i], k, 1);
      },
      // Parallel-built index: searched as built, at its construction ef (64).
      prepareAsBuilt(index) { const k = ctx.k; return (i) => index.search(qs[i], k, 1); },
      ids(raw) { return Array.from(raw.keys, Number); },
      free() {},
      cleanup() { fs.rmSync(file, { force: true }); },
    };
  },
};

function readVersion(dir) {
  try { return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version; } catch { return null; }
}

// ---------------------------------------------------------------- worker

const { now, cpuSnapshot, otherLoad, parseOptions, runJsonChild } = require('./measure');
const rss = () => process.memoryUsage.rss();
const gc = () => { if (global.gc) { global.gc(); global.gc(); } };
const log = (...a) => console.error(...a);

// ann-benchmarks' recall: a returned id counts when its exact distance is no
// larger than the true k-th neighbour's (ties and duplicates are not misses).
function recallOf(ctx, allIds) {
  const { base, queries, dim, metric, k, gt } = ctx;
  let hits = 0;
  for (let q = 0; q < allIds.length; q++) {
    const kth = gt.dists[q * gt.k + k - 1];
    const threshold = kth + Math.abs(kth) * 1e-9 + 1e-12;
    const seen = new Set();
    for (const id of allIds[q].slice(0, k)) {
      if (!(id >= 0 && id < ctx.n) || seen.has(id)) continue;
      seen.add(id);
      if (data.distance(metric, base, id, queries, q, dim) <= threshold) hits++;
    }
  }
  return hits / (allIds.length * k);
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

// One query per call from JS, single thread. The first pass is timed per query
// (latency percentiles) and graded; further untimed-by-query passes run until
// minTime seconds have been spent, so fast settings are not measured on noise.
function measureSearch(ctx, adapter, search) {
  const nq = ctx.nq;
  for (let i = 0; i < Math.min(nq, 100); i++) search(i);
  const raw = new Array(nq);
  const lat = new Float64Array(nq);
  let t = now();
  for (let i = 0; i < nq; i++) {
    const t0 = process.hrtime.bigint();
    raw[i] = search(i);
    lat[i] = Number(process.hrtime.bigint() - t0) / 1e3;
  }
  let total = now() - t, queries = nq, passes = 1;
  while (total < ctx.minTime && passes < 100) {
    t = now();
    for (let i = 0; i < nq; i++) search(i);
    total += now() - t; queries += nq; passes++;
  }
  const ids = raw.map((r) => adapter.ids(r));
  lat.sort();
  return {
    qps: queries / total,
    recall: recallOf(ctx, ids),
    latencyUs: { p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) },
    passes,
  };
}

async function runWorker(o) {
  const spec = DATASETS[o.dataset];
  const d = spec.load(o.queries);
  const n = d.base.length / d.dim;
  const gt = await data.groundTruth(spec.name, d.base, d.queries, d.dim, spec.metric, GT_K, { log });
  const ctx = {
    base: d.base, queries: d.queries, dim: d.dim, n, nq: o.queries, metric: spec.metric, k: o.k,
    m: o.m, efConstruction: o.efConstruction, gt, minTime: o.minTime,
  };
  const out = { lib: LIB_NAMES[o.lib], dataset: spec.name, n, dim: d.dim };
  let adapter;
  try {
    adapter = ADAPTERS[o.lib](ctx);
  } catch (err) {
    // A library that cannot load is a result, not a crash of the whole run.
    process.stdout.write(JSON.stringify({ ...out, error: err.message }) + '\n');
    return;
  }
  out.version = adapter.version;

  out.otherLoad = {};
  gc();
  const rss0 = rss();
  log(`[${o.lib}] single-threaded build of ${n} x ${d.dim}...`);
  let c0 = cpuSnapshot();
  let t = now();
  const index = await adapter.buildSingle();
  out.buildSingleSec = now() - t;
  out.otherLoad.buildSingle = otherLoad(c0, cpuSnapshot());
  gc();
  const rss1 = rss();
  out.rssGrowthBytes = rss1 - rss0;
  out.bytesPerVector = (rss1 - rss0) / n;
  log(`[${o.lib}]   ${out.buildSingleSec.toFixed(1)} s, ${out.bytesPerVector.toFixed(0)} B/vector`);

  out.sweep = [];
  c0 = cpuSnapshot();
  for (const ef of o.efs) {
    const search = adapter.prepare(index, ef);
    const r = measureSearch(ctx, adapter, search);
    out.sweep.push({ ef, ...r });
    log(`[${o.lib}]   ef=${ef}: ${r.qps.toFixed(0)} QPS, recall@${o.k} ${r.recall.toFixed(4)}`);
    gc();
  }
  out.otherLoad.search = otherLoad(c0, cpuSnapshot());
  adapter.free(index);
  gc();

  if (adapter.buildParallel) {
    log(`[${o.lib}] parallel build (${adapter.parallelThreads} threads)...`);
    c0 = cpuSnapshot();
    t = now();
    const pindex = await adapter.buildParallel();
    out.buildParallelSec = now() - t;
    out.otherLoad.buildParallel = otherLoad(c0, cpuSnapshot());
    out.buildParallelThreads = adapter.parallelThreads;
    const search = adapter.prepareAsBuilt ? adapter.prepareAsBuilt(pindex) : adapter.prepare(pindex, 64);
    out.parallelRecallEf64 = measureSearch({ ...ctx, minTime: 0 }, adapter, search).recall;
    log(`[${o.lib}]   ${out.buildParallelSec.toFixed(1)} s, recall@${o.k} at ef=64 ${out.parallelRecallEf64.toFixed(4)}`);
    adapter.free(pindex);
  } else {
    out.buildParallelSec = null;
  }
  if (adapter.cleanup) adapter.cleanup();
  process.stdout.write(JSON.stringify(out) + '\n');
}

// ---------------------------------------------------------------- parent

function runChild(lib, dataset, o) {
  const args = ['--expose-gc', __filename, '--worker', '--lib', lib, '--dataset', dataset,
    '--queries', String(o.queries), '--ef', o.efs.join(','), '--k', String(o.k), '--m', String(o.m),
    '--ef-construction', String(o.efConstruction), '--min-time', String(o.minTime)];
  return runJsonChild(process.execPath, args, { timeoutMin: o.timeoutMin, cwd: __dirname })
    .then((r) => (r.error ? { lib: LIB_NAMES[lib], error: r.error } : r));
}

function bestQpsAtRecall(r, target) {
  if (!r || r.error) return null;
  let best = null;
  for (const s of r.sweep) if (s.recall >= target && (best === null || s.qps > best.qps)) best = { qps: s.qps, ef: s.ef, recall: s.recall };
  return best;
}

function matchedRecall(allResults) {
  const libResults = allResults.filter((r) => !r.error);
  const by = Object.fromEntries(libResults.map((r) => [r.lib, r]));
  const out = {};
  for (const target of RECALL_TARGETS) {
    const best = {};
    for (const r of libResults) best[r.lib] = bestQpsAtRecall(r, target);
    const ratio = (a, b) => (best[a] && best[b] ? best[a].qps / best[b].qps : null);
    const ratios = {};
    for (const r of libResults) if (r.lib !== 'hnswlib-node' && by['hnswlib-node']) ratios[`${r.lib}/hnswlib-node`] = ratio(r.lib, 'hnswlib-node');
    if (by.vecvault && by.usearch) ratios['vecvault/usearch'] = ratio('vecvault', 'usearch');
    out[target] = { best, ratios };
  }
  return out;
}

const fmt = (v, digits = 0) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits));
const pad = (s, w) => String(s).padStart(w);
const padr = (s, w) => String(s).padEnd(w);

function printDataset(ds) {
  const p = (s = '') => console.log(s);
  p();
  p(`== ${ds.dataset}: n=${ds.n} dim=${ds.dim} metric=${ds.metric} k=${ds.k} queries=${ds.queries} M=${ds.m} efConstruction=${ds.efConstruction}`);
  p(`   (raw float32 vector = ${ds.dim * 4} B)`);
  p();
  p(`${padr('library', 14)}${pad('build 1T s', 12)}${pad('build all s', 13)}${pad('B/vector', 10)}${pad('recall ef64 (all-core build)', 30)}`);
  for (const r of ds.libs) {
    if (r.error) { p(`${padr(r.lib, 14)}  FAILED: ${r.error}`); continue; }
    const par = r.buildParallelSec === null ? 'n/a' : `${fmt(r.buildParallelSec, 1)} (${r.buildParallelThreads}T)`;
    p(`${padr(r.lib, 14)}${pad(fmt(r.buildSingleSec, 1), 12)}${pad(par, 13)}${pad(fmt(r.bytesPerVector), 10)}${pad(r.parallelRecallEf64 === undefined ? 'n/a' : fmt(r.parallelRecallEf64, 4), 30)}`);
  }
  const ok = ds.libs.filter((r) => !r.error);
  if (ok.length === 0) return;
  const busy = ok.filter((r) => Object.values(r.otherLoad || {}).some((v) => v !== null && v > BUSY_CORES));
  if (busy.length) {
    const what = busy.map((r) => `${r.lib} ${Object.entries(r.otherLoad).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ')}`);
    p(`WARNING: other processes used CPU during the run (cores): ${what.join('; ')}. Timings are noisy.`);
  }
  p();
  p(`single-thread search, one query per call: QPS / recall@${ds.k} (p50 latency us)`);
  p(padr('efSearch', 10) + ok.map((r) => pad(r.lib, 30)).join(''));
  for (let i = 0; i < ok[0].sweep.length; i++) {
    const ef = ok[0].sweep[i].ef;
    p(padr(ef, 10) + ok.map((r) => {
      const s = r.sweep[i];
      return pad(`${fmt(s.qps)} / ${fmt(s.recall, 4)} (${fmt(s.latencyUs.p50)})`, 30);
    }).join(''));
  }
  p();
  p('best QPS with recall >= target (efSearch)');
  const ratioKeys = [...new Set(Object.values(ds.matched).flatMap((m) => Object.keys(m.ratios)))];
  p(padr('target', 8) + ok.map((r) => pad(r.lib, 18)).join('') + ratioKeys.map((k) => pad(k, 24)).join(''));
  for (const [target, m] of Object.entries(ds.matched)) {
    p(padr(target, 8) + ok.map((r) => {
      const b = m.best[r.lib];
      return pad(b ? `${fmt(b.qps)} (${b.ef})` : 'not reached', 18);
    }).join('') + ratioKeys.map((k) => pad(fmt(m.ratios[k], 2), 24)).join(''));
  }
}

function machineInfo() {
  let commit = null;
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { /* no commits yet */ }
  const cpus = os.cpus();
  return { cpu: cpus[0] && cpus[0].model, cores: cpus.length, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.version, platform: `${os.platform()}-${os.arch()}`, commit };
}

// Loads the dataset and computes (or finds cached) ground truth once, so the
// children only read it; the vectors are dropped before the children start.
async function prepareDataset(spec, nq) {
  log(`[ann] ${spec.name}: loading`);
  const d = spec.load(nq);
  await data.groundTruth(spec.name, d.base, d.queries, d.dim, spec.metric, GT_K, { log });
  return { n: d.base.length / d.dim, dim: d.dim, params: d.params };
}

async function main(argv) {
  const o = parseArgs(argv);
  if (o.help) { console.log(HELP); return; }
  if (o.worker) return runWorker({ ...o, dataset: o.datasetList[0] });

  const started = new Date();
  const report = {
    bench: 'ann', started: started.toISOString(), machine: machineInfo(),
    params: { queries: o.queries, k: o.k, m: o.m, efConstruction: o.efConstruction, efSearch: o.efs, libs: o.libList },
    datasets: [],
  };
  for (const name of o.datasetList) {
    const spec = DATASETS[name];
    const meta = await prepareDataset(spec, o.queries);
    const libs = [];
    for (const lib of o.libList) libs.push(await runChild(lib, name, o));
    const ds = {
      dataset: spec.name, key: name, metric: spec.metric, k: o.k, queries: o.queries, m: o.m, efConstruction: o.efConstruction,
      ...meta, libs,
    };
    ds.matched = matchedRecall(libs);
    report.datasets.push(ds);
    printDataset(ds);
  }
  report.finished = new Date().toISOString();
  const file = o.out || path.join(RESULTS_DIR, `ann-${started.toISOString().slice(0, 19).replace(/:/g, '-')}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nJSON: ${path.relative(process.cwd(), file)}`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  });
}

module.exports = { parseArgs, matchedRecall, DATASETS };
