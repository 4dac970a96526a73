'use strict';
// Compact codes for lazy search, compared: PQ, OPQ, RaBitQ (1 to 4 bits per
// dimension) and 4-bit scalar codes, on Fashion-MNIST (784-D, l2) and
// embedding-like 384-D cosine data. For each code: bytes per vector,
// training time, recall@10 after re-ranking the R best by code distance
// (R = 10..160; a full scan over the codes per query, so only the ranking
// is measured), and the cost of one code distance in random order (as a
// graph walk asks for them), of a sequential scan, and of preparing a query.
//
// Usage: node bench/codes.js [--dataset fashion|embedding100k|all] [--queries N] [--configs a,b,...]
//   (or `npm run bench -- codes ...`). Data and ground truth are written as
//   raw float32 / int32 files under ~/.cache/vecvault-bench/codes/, the C
//   program bench/codes/codes_bench.c (built here with make) measures, and
//   this script prints a table and writes bench/results/codes-<dataset>.json.
//   Single-threaded apart from training and ground truth (2 threads).

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const data = require('./data');
const { parseOptions } = require('./measure');

const OUT_DIR = path.join(data.CACHE_DIR, 'codes');
const SRC_DIR = path.join(__dirname, 'codes');
const BIN = path.join(SRC_DIR, 'build', 'codes_bench');
const K = 10;

function configsFor(dim) {
  const m8 = dim / 8, m4 = dim / 4; // a byte per 8 or per 4 floats (both divide 384 and 784)
  return [`pq:m=${m8}`, `pq:m=${m4}`, `opq:m=${m8}`, `opq:m=${m4}`,
    'rabitq:bits=1', 'rabitq:bits=2', 'rabitq:bits=3', 'rabitq:bits=4', 'sq4'];
}

// The same datasets (and so the same cached ground truth) as ann.js.
const { DATASETS: ANN_DATASETS } = require('./ann');
const DATASETS = { fashion: ANN_DATASETS.fashion, embedding100k: ANN_DATASETS.embedding100k };

function writeRaw(file, arr) {
  fs.writeFileSync(file, Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength));
}

async function runDataset(key, o) {
  const ds = DATASETS[key];
  console.error(`[codes] ${ds.name}: loading`);
  const { base, queries, dim } = ds.load(o.queries);
  const n = base.length / dim, nq = queries.length / dim;
  // k = 100 shares the ground-truth cache with ann.js; the first 10 columns are the top-10.
  const gt = await data.groundTruth(ds.name, base, queries, dim, ds.metric, 100, { threads: 2 });
  const top = new Int32Array(nq * K);
  for (let q = 0; q < nq; q++) top.set(gt.ids.subarray(q * gt.k, q * gt.k + K), q * K);
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const files = ['base', 'queries', 'gt'].map((s) => path.join(OUT_DIR, `${ds.name}.${s}.bin`));
  writeRaw(files[0], base); writeRaw(files[1], queries); writeRaw(files[2], top);
  const configs = o.configs ? String(o.configs).split(',').map((s) => s.replace(/;/g, ',')) : configsFor(dim);
  const rows = [];
  let kernels = null;
  for (const cfg of configs) { // one process per config, so a crash or a slow one is contained and reported
    console.error(`[codes] ${ds.name}: ${cfg}`);
    const out = execFileSync(BIN, [...files, String(n), String(nq), String(dim), ds.metric === 'l2' ? 'l2' : 'cosine', cfg],
      { encoding: 'utf8', maxBuffer: 1 << 20 });
    for (const line of out.trim().split('\n')) {
      const r = JSON.parse(line);
      if (r.kernels) { kernels = kernels || r.kernels; continue; } // the same for every config
      if (r.config === 'exact-f32' && rows.some((x) => x.config === 'exact-f32')) continue;
      rows.push(r);
    }
  }
  return { dataset: ds.name, n, nq, dim, metric: ds.metric, rows, kernels };
}

function table(res) {
  const lines = [];
  const rs = (res.rows.find((r) => r.recall) || { rerank: [] }).rerank;
  lines.push(`${res.dataset}: ${res.n} base, ${res.nq} queries, ${res.dim}-D ${res.metric}`);
  lines.push(`| code | B/vec | train s | ${rs.map((r) => `R=${r}`).join(' | ')} | ns/code random | ns/code scan | query µs |`);
  lines.push(`|---|---:|---:|${rs.map(() => '---:').join('|')}|---:|---:|---:|`);
  for (const r of res.rows) {
    if (r.error !== undefined) { lines.push(`| ${r.config} | error ${r.error} |`); continue; }
    if (!r.recall) { lines.push(`| exact float32 | ${r.bytes} | | ${rs.map(() => '').join(' | ')} | ${r.ns_random.toFixed(1)} | | |`); continue; }
    lines.push(`| ${r.config} | ${r.bytes} | ${r.train_s.toFixed(1)} | ${r.recall.map((x) => x.toFixed(3)).join(' | ')} | ` +
      `${r.ns_random.toFixed(1)} | ${r.ns_scan.toFixed(1)} | ${r.query_us.toFixed(1)} |`);
  }
  if (res.kernels) {
    const keys = Object.keys(res.kernels[0]).filter((k) => k !== 'isa' && k !== 'sink');
    lines.push('', `kernels alone (ns per code, hot in L1; adc_mM: PQ/OPQ with M bytes; planesB: RaBitQ with B bits, 4 = SQ4):`);
    lines.push(`| isa | ${keys.join(' | ')} |`, `|---|${keys.map(() => '---:').join('|')}|`);
    for (const k of res.kernels) lines.push(`| ${k.isa} | ${keys.map((x) => k[x].toFixed(1)).join(' | ')} |`);
  }
  return lines.join('\n');
}

async function main(argv) {
  const o = parseOptions('codes.js', argv, { dataset: 'all', queries: 1000, configs: null },
    { '--dataset': 'dataset', '--queries': 'queries', '--configs': 'configs' }, {}, ['queries']);
  if (o.help) {
    console.log('node bench/codes.js [--dataset fashion|embedding100k|all] [--queries N] [--configs pq:m=48,rabitq:bits=2;...]');
    console.log('  (inside a config, separate keys with ";": opq:m=48;rounds=2)');
    return 0;
  }
  const list = o.dataset === 'all' ? Object.keys(DATASETS) : String(o.dataset).split(',');
  for (const d of list) if (!DATASETS[d]) throw new Error(`codes.js: unknown dataset ${d}`);
  execFileSync('make', ['-s', '-C', SRC_DIR], { stdio: 'inherit' });
  for (const d of list) {
    const res = await runDataset(d, o);
    const file = path.join(__dirname, 'results', `codes-${d}.json`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(res, null, 2));
    console.log(table(res) + '\n');
  }
  return 0;
}

main(process.argv.slice(2)).then((c) => { process.exitCode = c; }, (e) => { console.error(e.stack || e.message); process.exitCode = 1; });
