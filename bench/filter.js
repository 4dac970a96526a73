'use strict';
// Filtered search: QPS, recall@10 against the exact filtered answer and the
// number of results, at selectivities from 50% down to 0.01%, for vecvault
// (in memory and lazily loaded) against hnswlib-node's filter callback and
// LanceDB's prefiltered `where` query, on the same vectors, metadata,
// filters and queries.
//
// Datasets: embedding-like 384-D vectors (data.embedding, the lazy bench's
// cached base.f32) with synthetic metadata (filter/cases.js), and
// Fashion-MNIST with its class label. The parent builds the filters, checks
// that their three translations count the same rows, computes the exact
// filtered ground truth (brute force over the matching rows, cached where
// data.groundTruth caches), then runs each system in its own child
// (filter/systems.js) and grades the ids the children return.
//
// Usage: node bench/filter.js [--dataset embedding|fashion|both] [--size 100k|10k] [--queries 200]
//          [--libs vecvault,lazy,hnswlib,lancedb] [--hnsw-ef 64,256] [--rebuild] [--out FILE]

const fs = require('fs');
const path = require('path');
const data = require('./data');
const ds_ = require('./lazy/datasets');
const { groundTruth: nativeGroundTruth } = require('./lazy/gt');
const { parseOptions, runJsonChild, machineInfo, readVersion, now } = require('./measure');
const cases_ = require('./filter/cases');
const { SYSTEMS, K } = require('./filter/systems');

const REPO = path.join(__dirname, '..');
const VECVAULT_MODULE = process.env.VECVAULT_MODULE ? path.resolve(process.env.VECVAULT_MODULE) : REPO;
const CACHE = path.join(data.CACHE_DIR, 'filter');
const RESULTS = path.join(__dirname, 'results', 'filter.json');
const LIBS = ['vecvault', 'lazy', 'hnswlib', 'lancedb'];
const BUSY_CORES = 0.2;
const RECALL_TARGET = 0.95;
const SPEEDUP_TARGET = 2; // vecvault over hnswlib-node's filter callback at 1%
const log = (...a) => console.error(...a);

const HELP = `node bench/filter.js [options]
  --dataset NAME     embedding | fashion | both (default both)
  --size SIZE        embedding set: 100k (default) or 10k (a quick check); Fashion-MNIST is always 60K
  --queries N        queries per filter (default 200)
  --libs LIST        vecvault,lazy,hnswlib,lancedb (default: all; lazy = vecvault loaded lazily)
  --hnsw-ef LIST     hnswlib-node efSearch values (default 64,256)
  --vv-ef LIST       vecvault (in memory) also at these efSearch values, besides its default 64 (default 256)
  --lance-nprobes N  LanceDB IVF_PQ probes (default 20, its default)
  --lance-refine N   LanceDB IVF_PQ refine factor (default 10)
  --min-time S       minimum timed seconds per filter and system (default 0.5)
  --max-time S       a system slower than this per filter answers fewer queries (default 20; the table says how many)
  --plans LIST       also run vecvault (in memory) with each plan forced: scan,graph,acorn (default: none)
  --rebuild          build vecvault's session again (otherwise cached under ~/.cache/vecvault-bench/filter/)
  --out FILE         JSON report (default bench/results/filter.json)`;

function parseArgs(argv) {
  const o = {
    dataset: 'both', size: '100k', queries: 200, libs: LIBS.join(','), hnswEf: '64,256', vvEf: '256', lanceNprobes: 20, lanceRefine: 10,
    minTime: 0.5, maxTime: 20, plans: '', rebuild: false, out: RESULTS, worker: null, timeoutMin: 120,
  };
  parseOptions('filter.js', argv, o, {
    '--dataset': 'dataset', '--size': 'size', '--queries': 'queries', '--libs': 'libs', '--hnsw-ef': 'hnswEf', '--vv-ef': 'vvEf',
    '--lance-nprobes': 'lanceNprobes', '--lance-refine': 'lanceRefine', '--min-time': 'minTime', '--max-time': 'maxTime', '--plans': 'plans', '--out': 'out',
    '--worker': 'worker', '--timeout-min': 'timeoutMin',
  }, { '--rebuild': 'rebuild' }, ['queries', 'lanceNprobes', 'lanceRefine', 'minTime', 'maxTime', 'timeoutMin']);
  o.queries = Math.round(o.queries);
  o.datasets = o.dataset === 'both' ? ['embedding', 'fashion'] : [o.dataset];
  for (const d of o.datasets) if (d !== 'embedding' && d !== 'fashion') throw new RangeError(`filter.js: unknown dataset ${d} (embedding, fashion or both)`);
  if (!['100k', '10k'].includes(o.size)) throw new RangeError('filter.js: --size is 100k or 10k');
  o.libList = String(o.libs).split(',').map((s) => s.trim()).filter(Boolean);
  for (const l of o.libList) if (!LIBS.includes(l)) throw new RangeError(`filter.js: unknown library ${l} (known: ${LIBS.join(', ')})`);
  o.planList = String(o.plans).split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of o.planList) if (!['scan', 'graph', 'acorn'].includes(p)) throw new RangeError(`filter.js: unknown plan ${p} (scan, graph, acorn)`);
  o.hnswEfs = String(o.hnswEf).split(',').map(Number);
  o.vvEfs = String(o.vvEf).split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (o.vvEfs.some((e) => !Number.isInteger(e) || e <= 0)) throw new RangeError('filter.js: --vv-ef must be positive integers');
  if (o.hnswEfs.some((e) => !Number.isInteger(e) || e <= 0)) throw new RangeError('filter.js: --hnsw-ef must be positive integers');
  return o;
}

// ---------------------------------------------------------------- datasets

// Vectors, queries, metadata columns and resolved filters, the same in the
// parent and in every child (everything is deterministic).
function loadDataset(name, size, nq) {
  const ds = ds_.dataset(name, name === 'fashion' ? null : size);
  const base = ds_.baseVectors(ds);
  const queries = ds.queries(nq);
  const cols = name === 'fashion' ? cases_.fashionColumns(data.loadFashionLabels().train) : cases_.embeddingColumns(ds.n);
  const cases = cases_.resolveCases(cols, name === 'fashion' ? cases_.fashionCases(cols) : cases_.embeddingCases(cols));
  const queryList = Array.from({ length: nq }, (_, i) => queries.subarray(i * ds.dim, (i + 1) * ds.dim));
  return {
    name, ds, base, queries, queryList, cols, cases, dim: ds.dim, n: ds.n, nq, metric: ds.metric,
    session: path.join(CACHE, ds.id, 'session'), hnswlib: path.join(ds.dir, 'hnswlib.bin'),
  };
}

// Exact filtered top-k: brute force over the matching rows only, natively
// when a compiler is there (lazy/gt.js), cached like every other ground truth.
async function filteredGroundTruth(d) {
  const out = [];
  for (const c of d.cases) {
    if (c.rows.length === 0) { out.push({ k: 0, ids: new Int32Array(0), dists: new Float64Array(0) }); continue; }
    const sub = new Float32Array(c.rows.length * d.dim);
    for (let j = 0; j < c.rows.length; j++) sub.set(d.base.subarray(c.rows[j] * d.dim, (c.rows[j] + 1) * d.dim), j * d.dim);
    const name = `filter-${d.ds.gtName}-${c.family}-${c.target}`;
    await nativeGroundTruth(name, sub, d.queries, d.dim, d.metric, K, { log });
    const gt = await data.groundTruth(name, sub, d.queries, d.dim, d.metric, K, { log });
    out.push({ k: gt.k, ids: Int32Array.from(gt.ids, (j) => (j >= 0 ? c.rows[j] : -1)), dists: gt.dists });
  }
  return out;
}

// ---------------------------------------------------------------- the parent side

function childArgs(system, name, o) {
  return ['--expose-gc', '--max-old-space-size=8192', __filename, '--worker', system, '--dataset', name, '--size', o.size,
    '--queries', String(o.queries), '--hnsw-ef', o.hnswEfs.join(','), '--vv-ef', o.vvEfs.join(','), '--lance-nprobes', String(o.lanceNprobes),
    '--lance-refine', String(o.lanceRefine), '--min-time', String(o.minTime), '--max-time', String(o.maxTime), '--plans', o.planList.join(',')];
}

function runChild(system, name, o, niced = false) {
  const args = childArgs(system, name, o);
  const cmd = niced ? ['nice', '-n', '10', process.execPath, ...args] : [process.execPath, ...args];
  return runJsonChild(cmd[0], cmd.slice(1), { timeoutMin: o.timeoutMin, cwd: __dirname, label: `${system}: ` });
}

// What the cached session was built from: a different one is rebuilt.
function sessionParams(d) {
  return { n: d.n, dim: d.dim, metric: d.metric, fingerprint: ds_.fingerprint(d.base), fields: Object.keys(d.cols.fields), metadata: 'cases.js v1' };
}

async function ensureSession(d, o) {
  const paramsFile = path.join(path.dirname(d.session), 'params.json');
  const want = sessionParams(d);
  let have = null;
  try { have = JSON.parse(fs.readFileSync(paramsFile, 'utf8')); } catch { /* none yet */ }
  const fresh = have && fs.existsSync(d.session) && JSON.stringify(have.data) === JSON.stringify(want) && have.build.version >= (await engineVersion());
  if (!o.rebuild && fresh) return have.build;
  log(`[filter] ${d.ds.id}: building vecvault's session with filterable ${want.fields.join(', ')} (once; cached)`);
  fs.mkdirSync(path.dirname(d.session), { recursive: true });
  const build = await runChild('vecvault-build', d.name, o, true);
  if (build.error) throw new Error(`vecvault session build failed: ${build.error}`);
  fs.writeFileSync(paramsFile, JSON.stringify({ data: want, build, module: VECVAULT_MODULE }, null, 2) + '\n');
  return build;
}

// The session format this engine writes (the lazy bench's probe): an older
// cached session is rebuilt, as the engine under test would build it.
async function engineVersion() {
  const args = [path.join(__dirname, 'lazy', 'prepare.js'), '--step', 'engine-version', '--dataset', 'embedding', '--size', '10k'];
  const r = await runJsonChild(process.execPath, args, { timeoutMin: 5, label: 'engine version: ' });
  if (r.error) throw new Error(r.error);
  return r.version;
}

async function ensureHnswlib(d) {
  if (fs.existsSync(d.hnswlib)) return;
  log(`[filter] ${d.ds.id}: building hnswlib's index (the lazy bench's, cached)`);
  const args = [path.join(__dirname, 'lazy', 'prepare.js'), '--step', 'hnswlib', '--dataset', d.name, '--size', d.name === 'fashion' ? '100k' : d.ds.id.split('-')[0]];
  const r = await runJsonChild('nice', ['-n', '10', process.execPath, ...args], { timeoutMin: 600, label: 'hnswlib build: ' });
  if (r.error) throw new Error(r.error);
}

// Recall@k against the exact filtered answer, ann-benchmarks style (a result
// counts when it matches and is no farther than the true k-th match), over
// min(k, matching) per query; results that fail the filter are counted.
function grade(d, c, gt, idLists) {
  let hits = 0, want = 0, returned = 0, wrong = 0, short = 0;
  for (let q = 0; q < idLists.length; q++) {
    const kk = gt.k;
    const kth = gt.dists[q * kk + kk - 1];
    const threshold = kth + Math.abs(kth) * 1e-9 + 1e-12;
    const ids = idLists[q];
    returned += ids.length;
    if (ids.length < Math.min(K, c.rows.length)) short++;
    const seen = new Set();
    let h = 0;
    for (const id of ids) {
      if (!(id >= 0 && id < d.n) || !c.predicate(id)) { wrong++; continue; }
      if (seen.has(id)) continue;
      seen.add(id);
      if (data.distance(d.metric, d.base, id, d.queries, q, d.dim) <= threshold) h++;
    }
    hits += Math.min(h, kk);
    want += kk;
  }
  return { recall: want ? hits / want : 1, meanResults: returned / idLists.length, wrong, short, graded: idLists.length };
}

// The rows of one dataset's table: one per system setting.
function rowsOf(d, gts, results) {
  const rows = [];
  const add = (system, r, key = 'ids', qpsKey = 'qps') => rows.push({
    system,
    cases: r.cases.map((x, i) => ({
      qps: x[qpsKey], ...grade(d, d.cases[i], gts[i], x[key]), ...(key === 'ids' && x.bytesReadPerQuery !== undefined ? { bytesReadPerQuery: x.bytesReadPerQuery } : {}),
    })),
    otherLoad: r.otherLoad,
  });
  for (const [lib, r] of Object.entries(results)) {
    if (r.error) { rows.push({ system: lib, error: r.error }); continue; }
    if (lib === 'vecvault' || lib === 'lazy') {
      const name = lib === 'lazy' ? 'vecvault lazy' : 'vecvault';
      add(name, r);
      add(`${name} batch`, r, 'batchIds', 'batchQps');
      for (const e of r.efs || []) add(`${name} ef${e.ef}`, e);
      for (const pr of r.plans || []) add(`vecvault plan ${pr.plan}`, pr);
    } else if (lib === 'hnswlib') {
      for (const e of r.efs) add(`hnswlib ef${e.ef}`, e);
    } else if (lib === 'lancedb') {
      add('lancedb flat', r.flat);
      add('lancedb flat+scalar', r.scalar);
      add('lancedb ivf_pq', r.ivf);
    }
  }
  return rows;
}

const fmt = (v, digits = 0) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits));
const pad = (s, w) => String(s).padStart(w);
const padr = (s, w) => String(s).padEnd(w);

function printDataset(rep) {
  const p = (s = '') => console.log(s);
  p();
  p(`== ${rep.dataset}: n=${rep.n} dim=${rep.dim} metric=${rep.metric} k=${K} queries=${rep.queries} per filter`);
  p('   QPS: one query per call on the JS thread ("batch": one searchBatchAsync of all queries, all cores)');
  p('   cell: QPS / recall@10 / mean results (Nq: graded on the first N queries, the system hit --max-time)');
  p();
  const ok = rep.rows.filter((r) => !r.error);
  for (const r of rep.rows.filter((x) => x.error)) p(`${r.system}: FAILED: ${r.error}`);
  p(padr('filter', 16) + pad('selectivity', 12) + ok.map((r) => pad(r.system, 30)).join(''));
  rep.cases.forEach((c, i) => {
    p(padr(c.name, 16) + pad(`${fmt(c.selectivity * 100, 3)}%`, 12) + ok.map((r) => {
      const x = r.cases[i];
      const few = x.graded < rep.queries ? ` (${x.graded}q)` : '';
      return pad(`${fmt(x.qps)} / ${fmt(x.recall, 3)} / ${fmt(x.meanResults, 1)}${few}${x.wrong ? ' !' : ''}`, 30);
    }).join(''));
  });
  const wrong = ok.filter((r) => r.cases.some((x) => x.wrong));
  for (const r of wrong) p(`WRONG: ${r.system} returned results that fail the filter (marked !)`);
  const setup = [];
  if (rep.vecvaultBuild) setup.push(`vecvault addBatchAsync ${fmt(rep.vecvaultBuild.buildSec, 1)} s on ${rep.vecvaultBuild.threads} threads, save ${fmt(rep.vecvaultBuild.saveSec, 1)} s (cached between runs)`);
  const lance = rep.systems.lancedb;
  if (lance && !lance.error) setup.push(`LanceDB table ${fmt(lance.createSec, 1)} s, scalar indexes ${fmt(lance.scalarIndexSec, 1)} s, IVF_PQ ${fmt(lance.indexSec, 1)} s`);
  if (setup.length) p(`setup: ${setup.join('; ')}`);
  const lazy = ok.find((r) => r.system === 'vecvault lazy');
  if (lazy) p(`vecvault lazy, KiB read from storage per query: ${lazy.cases.map((x, i) => `${rep.cases[i].name} ${fmt(x.bytesReadPerQuery / 1024, 1)}`).join(', ')}`);
  const busy = ok.filter((r) => r.otherLoad !== null && r.otherLoad > BUSY_CORES);
  if (busy.length) p(`WARNING: other processes used CPU while timing (cores): ${busy.map((r) => `${r.system} ${fmt(r.otherLoad, 2)}`).join(', ')}. Timings are noisy.`);
  p();
  p('filters:');
  for (const c of rep.cases) p(`  ${padr(c.name, 14)} ${JSON.stringify(c.mongo)}   SQL: ${c.sql}`);
  const ratios = rep.ratios;
  if (ratios.columns.length) {
    p();
    p('QPS ratios (vecvault, one query per call)');
    p(padr('filter', 16) + ratios.columns.map((k) => pad(k, 30)).join(''));
    rep.cases.forEach((c, i) => p(padr(c.name, 16) + ratios.columns.map((k) => pad(fmt(ratios.values[i][k], 2), 30)).join('')));
  }
  p();
  for (const t of rep.targets) p(`${t.met ? 'met   ' : 'MISSED'}  ${t.text}`);
}

function ratiosOf(rows) {
  const by = Object.fromEntries(rows.filter((r) => !r.error).map((r) => [r.system, r]));
  const columns = Object.keys(by).filter((s) => /^(hnswlib|lancedb)/.test(s)).filter(() => by.vecvault).map((s) => `vecvault/${s}`);
  const values = (by.vecvault ? by.vecvault.cases : []).map((_, i) => Object.fromEntries(columns.map((k) => {
    const other = by[k.slice('vecvault/'.length)].cases[i].qps;
    return [k, by.vecvault.cases[i].qps / other];
  })));
  return { columns, values };
}

function targetsOf(rep) {
  const by = Object.fromEntries(rep.rows.filter((r) => !r.error).map((r) => [r.system, r]));
  const out = [];
  for (const sys of Object.keys(by).filter((x) => x.startsWith('vecvault') && !x.includes(' batch') && !x.includes(' plan '))) {
    if (!by[sys]) continue;
    const worst = Math.min(...by[sys].cases.map((x) => x.recall));
    const exact = by[sys].cases.every((x) => x.short === 0 && x.wrong === 0);
    out.push({ met: worst >= RECALL_TARGET, text: `${sys}: recall@10 >= ${RECALL_TARGET} at every selectivity (lowest ${fmt(worst, 3)})` });
    out.push({ met: exact, text: `${sys}: min(k, matching) results, every one matching, for every query` });
  }
  const hnsw = Object.keys(by).filter((s) => s.startsWith('hnswlib')).sort((a, b) => Number(a.slice(9)) - Number(b.slice(9)));
  if (by.vecvault && hnsw.length) {
    rep.cases.forEach((c, i) => {
      if (c.target !== 0.01) return;
      const r = hnsw.map((h) => `${fmt(by.vecvault.cases[i].qps / by[h].cases[i].qps, 2)}x ${h} (recall ${fmt(by[h].cases[i].recall, 3)})`);
      const first = by.vecvault.cases[i].qps / by[hnsw[0]].cases[i].qps;
      out.push({ met: first >= SPEEDUP_TARGET, text: `${c.name}: vecvault QPS >= ${SPEEDUP_TARGET}x hnswlib-node's filter callback: ${r.join(', ')}` });
    });
  }
  return out;
}

async function runDataset(name, o) {
  const t = now();
  log(`[filter] ${name}: loading`);
  const d = loadDataset(name, o.size, o.queries);
  for (const c of d.cases) {
    const off = c.selectivity / c.target;
    if (off > 1.3 || off < 1 / 1.3) log(`[filter] warning: ${c.name} has selectivity ${fmt(c.selectivity * 100, 3)}%, off its target`);
  }
  const gts = await filteredGroundTruth(d);
  const results = {};
  // A system that cannot be prepared is a failed row, not the end of the run.
  const prepared = {};
  const prepare = async (libs, fn) => {
    if (!o.libList.some((l) => libs.includes(l))) return null;
    try { return await fn(); } catch (err) { for (const l of libs) prepared[l] = { error: err.message }; return null; }
  };
  const build = await prepare(['vecvault', 'lazy'], () => ensureSession(d, o));
  await prepare(['hnswlib'], () => ensureHnswlib(d));
  for (const lib of o.libList) {
    results[lib] = prepared[lib] || await runChild(lib === 'lazy' ? 'vecvault-lazy' : lib, name, o);
  }
  // Each system's count of every filter must agree with the reference evaluator.
  const countChecks = [];
  for (const [lib, r] of Object.entries(results)) {
    if (r.error) continue;
    const counts = lib === 'lancedb' ? r.counts : r.cases && r.cases[0] && r.cases[0].count !== undefined ? r.cases.map((x) => x.count) : null;
    if (!counts) continue;
    d.cases.forEach((c, i) => { if (counts[i] !== c.rows.length) countChecks.push(`${lib} counts ${counts[i]} rows for ${c.name}, the reference ${c.rows.length}`); });
  }
  const rows = rowsOf(d, gts, results);
  const rep = {
    dataset: `${d.ds.gtName}`, key: name, n: d.n, dim: d.dim, metric: d.metric, queries: d.nq,
    cases: d.cases.map((c) => ({ name: c.name, family: c.family, target: c.target, selectivity: c.selectivity, matching: c.rows.length, mongo: c.mongo, sql: c.sql })),
    rows, countChecks, vecvaultBuild: build,
    systems: Object.fromEntries(Object.entries(results).map(([k, r]) => [k, r.error ? { error: r.error } : summaryOf(r)])),
    sec: now() - t,
  };
  rep.ratios = ratiosOf(rows);
  rep.targets = targetsOf(rep);
  for (const m of countChecks) rep.targets.push({ met: false, text: m });
  printDataset(rep);
  return rep;
}

// A child's result without its id lists (those are graded into the rows).
function summaryOf(r) {
  const strip = (x) => ({ ...x, cases: x.cases.map(({ ids, batchIds, ...rest }) => rest) });
  const out = r.cases ? strip(r) : { ...r };
  for (const k of ['flat', 'scalar', 'ivf']) if (out[k]) out[k] = strip(out[k]);
  if (out.plans) out.plans = out.plans.map(strip);
  if (out.efs) out.efs = out.efs.map(strip);
  return out;
}

// ---------------------------------------------------------------- the child side

async function runWorker(o) {
  const d = loadDataset(o.datasets[0], o.size, o.queries);
  const ctx = {
    ...d, key: ds_.KEY, module: VECVAULT_MODULE, metadataOf: cases_.metadataOf, minTime: o.minTime, maxTime: o.maxTime, plans: o.planList, hnswEfs: o.hnswEfs, vvEfs: o.vvEfs,
    lanceNprobes: o.lanceNprobes, lanceRefine: o.lanceRefine, tmpRoot: path.join(CACHE, 'tmp'),
  };
  fs.mkdirSync(ctx.tmpRoot, { recursive: true });
  const fn = SYSTEMS[o.worker];
  if (!fn) throw new Error(`filter.js: unknown worker ${o.worker}`);
  const r = await fn(ctx);
  process.stdout.write(JSON.stringify(r) + '\n');
}

async function main(argv) {
  const o = parseArgs(argv);
  if (o.help) { console.log(HELP); return; }
  if (o.worker) return runWorker(o);
  const started = new Date();
  const report = {
    bench: 'filter', started: started.toISOString(), machine: machineInfo(), vecvault: { module: VECVAULT_MODULE, version: readVersion(VECVAULT_MODULE) },
    params: {
      size: o.size, queries: o.queries, k: K, libs: o.libList, hnswEf: o.hnswEfs, vecvaultEf: ['default (64)', ...o.vvEfs],
      lanceNprobes: o.lanceNprobes, lanceRefine: o.lanceRefine, minTime: o.minTime, maxTime: o.maxTime, plans: o.planList,
    },
    datasets: [],
  };
  for (const name of o.datasets) report.datasets.push(await runDataset(name, o));
  report.finished = new Date().toISOString();
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nJSON: ${path.relative(process.cwd(), o.out)}`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  });
}

module.exports = { parseArgs, loadDataset };
