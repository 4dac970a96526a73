'use strict';
// Lazy loading against its targets: an encrypted session opened lazily with a
// cache of a fifth of its vectors, against the same session loaded into
// memory and against hnswlib-node's readIndex of the same vectors, on
// embedding-like 384-D data (1M by default) and Fashion-MNIST. It prints one
// table per dataset, each row with its measured value, its reference, the
// ratio and pass/fail, and writes the JSON to bench/results/.
//
// Preparation (bench/lazy/prepare.js, cached in ~/.cache/vecvault-bench/lazy3/)
// happens once; every measurement is then a fresh child process
// (bench/lazy/tasks.js), so memory, cache and timings are each its own.
// bench/README.md describes the rows.
//
// Usage: node bench/lazy.js [--size 1m] [--datasets embedding,fashion] [--repeats 3]
//          [--queries 1000] [--rebuild] [--resave] [--skip-peers] [--out FILE] [--print FILE]

const fs = require('fs');
const path = require('path');
const { dataset } = require('./lazy/datasets');
const { ensure } = require('./lazy/prepare');
const { rows, sameResults, printDataset, TARGETS } = require('./lazy/report');
const { MIB } = require('./lazy/tasks');
const { parseOptions, machineInfo, readVersion, runJsonChild } = require('./measure');

const REPO = path.join(__dirname, '..');
const VECVAULT_MODULE = process.env.VECVAULT_MODULE ? path.resolve(process.env.VECVAULT_MODULE) : REPO;
const RESULTS_DIR = path.join(__dirname, 'results');
const TASKS_JS = path.join(__dirname, 'lazy', 'tasks.js');
const log = (...a) => console.error(...a);

async function child(task, o, args) {
  log(`[lazy] ${args.dataset === 'fashion' ? 'fashion' : `${args.size}-embedding`}: ${task}`);
  const r = await runJsonChild(process.execPath, ['--expose-gc', TASKS_JS, task, '--json', JSON.stringify({ ...args, task })],
    { timeoutMin: o.timeoutMin, label: `${task}: ` });
  if (r.error) log(`[lazy] ${task} failed: ${r.error}`);
  return r;
}

async function runDataset(name, o) {
  const ds = dataset(name, o.size);
  const prep = await ensure(ds, { size: o.size, queries: o.queries, rebuild: o.rebuild, resave: o.resave, skipPeers: o.skipPeers });
  const raw = ds.n * ds.dim * 4;
  const cacheMb = o.cacheMb || raw / 5 / MIB;
  // Everything cached: the vectors plus room for what a cached page or chunk
  // holds besides them (ids, metadata, the cache's own bookkeeping).
  const fullCacheMb = o.fullCacheMb || (raw * 1.5) / MIB + 64;
  const args = {
    dataset: ds.kind, size: o.size, session: prep.session, gt: prep.gt, hnswlib: prep.hnswlib, queries: o.queries,
    cacheMb, fullCacheMb, efs: o.efs, minTime: o.minTime, detQueries: o.detQueries, detCacheMb: [raw / 20 / MIB, cacheMb, fullCacheMb],
    inflight: o.inflight, threads: o.threads, concurrentQueries: o.queries,
  };
  const results = { open: [], hnswlib: [] };
  for (let i = 0; i < o.repeats; i++) { // interleaved, so drift hits both alike
    results.open.push(await child('open', o, args));
    if (prep.hnswlib) results.hnswlib.push(await child('hnswlib', o, args));
  }
  for (const task of ['lazy', 'inmem', 'warm', 'same', 'concurrent']) results[task] = await child(task, o, args);
  const d = {
    dataset: ds.id, describe: ds.describe, n: ds.n, dim: ds.dim, metric: ds.metric, queries: o.queries, cacheMb, fullCacheMb,
    session: prep.session, sessionVersion: prep.sessionVersion, engineVersion: prep.engineVersion, prepared: prep.params, results,
  };
  d.same = sameResults(results.same, results.lazy, results.inmem);
  d.rows = rows(d);
  for (const t of ['lazy', 'inmem', 'warm']) if (results[t]) delete results[t].ids; // graded already; the JSON stays small
  if (results.same && results.same.runs) for (const r of results.same.runs) { delete r.cold; delete r.warm; }
  printDataset(d);
  return d;
}

async function main(argv) {
  const o = parseArgs(argv);
  if (o.help) { console.log(HELP); return; }
  if (o.print) {
    const rep = JSON.parse(fs.readFileSync(o.print, 'utf8'));
    for (const d of rep.datasets) if (d.rows) printDataset(d);
    return;
  }
  const started = new Date();
  const report = {
    bench: 'lazy', started: started.toISOString(), machine: machineInfo(), targets: TARGETS,
    versions: { vecvault: readVersion(VECVAULT_MODULE), hnswlib: readVersion(path.join(__dirname, 'node_modules', 'hnswlib-node')) },
    options: { ...o, help: undefined }, datasets: [],
  };
  const file = o.out || path.join(RESULTS_DIR, `lazy-${o.size}-${started.toISOString().slice(0, 19).replace(/:/g, '-')}.json`);
  const write = () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  };
  for (const name of o.datasetList) {
    try {
      report.datasets.push(await runDataset(name, o));
    } catch (err) {
      console.log(`\n== ${name}: FAILED: ${err.message}`);
      report.datasets.push({ dataset: name, error: err.message });
      process.exitCode = 1;
    }
    write(); // a later dataset's failure keeps this one's results
  }
  report.finished = new Date().toISOString();
  write();
  console.log(`\nJSON: ${path.relative(process.cwd(), file)}`);
}

const HELP = `node bench/lazy.js [options]      (or: npm run bench -- lazy [options])
  --size S            size of the embedding-like data: 10k, 100k, 200k, 500k, 1m (default 1m)
                      (--sizes is accepted for the same, one size)
  --datasets LIST     embedding, fashion or both (default embedding,fashion)
  --repeats N         fresh processes for the open-to-first-result row; median (default 3)
  --queries N         queries of every pass, graded against exact top-100 (default 1000)
  --det-queries N     queries of the same-results check, cold and warm at 3 cache sizes (default 200;
                      --cold-queries is accepted for the same)
  --cache-mb MB       the lazy cache (default: a fifth of the vectors' bytes)
  --full-cache-mb MB  the "everything cached" cache (default: 1.5x the vectors' bytes + 64)
  --ef LIST           efSearch sweep for the matched-recall row (default 16,32,48,64,96,128,192,256,384,512)
  --min-time S        minimum seconds of search per timed measurement (default 1)
  --inflight N        searchAsync calls kept in flight in the concurrency row (default 8)
  --threads N         threads of the lazy load in the concurrency row (searchBatchAsync; default 2)
  --rebuild           prepare everything again (session, hnswlib-node index, params)
  --resave            re-save the cached session with this engine even if its format is current
  --skip-peers        no hnswlib-node (the open row then has no ratio)
  --timeout-min M     per measuring child process (default 120)
  --out FILE          JSON output (default bench/results/lazy-<size>-<date>.json)
  --print FILE        print the tables of a JSON report again, measuring nothing
Prepared data (outside the repo): ~/.cache/vecvault-bench/lazy3/<size>-embedding/ and fashion/
(base vectors, session, session-v<N>, hnswlib.bin, params.json); ground truth in
~/.cache/vecvault-bench/*.gt. A session older than the format the engine writes is re-saved
once into session-v<N> and measured there.`;

function parseArgs(argv) {
  const o = {
    size: '1m', datasets: 'embedding,fashion', repeats: '3', queries: '1000', detQueries: '200', ef: '16,32,48,64,96,128,192,256,384,512',
    minTime: '1', inflight: '8', threads: '2', timeoutMin: '120', rebuild: false, resave: false, skipPeers: false,
  };
  const names = {
    '--size': 'size', '--sizes': 'size', '--datasets': 'datasets', '--repeats': 'repeats', '--queries': 'queries', '--det-queries': 'detQueries',
    '--cold-queries': 'detQueries', '--cache-mb': 'cacheMb', '--full-cache-mb': 'fullCacheMb', '--ef': 'ef', '--min-time': 'minTime',
    '--inflight': 'inflight', '--threads': 'threads', '--timeout-min': 'timeoutMin', '--out': 'out', '--print': 'print',
    // Flags of the chunk-era script, accepted so old command lines still run:
    // the targets are measured at the engine's default options.
    '--rerank': 'ignoredRerank', '--sweep-budget': 'ignoredSweepBudget',
  };
  parseOptions('lazy.js', argv, o, names, { '--rebuild': 'rebuild', '--resave': 'resave', '--skip-peers': 'skipPeers', '--cold-sweep': 'ignoredColdSweep' },
    ['repeats', 'queries', 'detQueries', 'minTime', 'inflight', 'threads', 'timeoutMin']);
  for (const k of ['repeats', 'queries', 'detQueries', 'inflight', 'threads']) o[k] = Math.round(o[k]);
  for (const k of Object.keys(o).filter((x) => x.startsWith('ignored'))) log(`[lazy] ${k.slice(7)} is ignored: every row is measured at the engine's defaults`);
  for (const k of ['cacheMb', 'fullCacheMb']) {
    if (o[k] === undefined) continue;
    o[k] = Number(o[k]);
    if (!(o[k] > 0)) throw new RangeError(`lazy.js: --${k === 'cacheMb' ? 'cache-mb' : 'full-cache-mb'} must be a positive number`);
  }
  if (String(o.size).includes(',')) throw new RangeError('lazy.js: one size per run (--size 100k or --size 1m)');
  o.size = String(o.size).toLowerCase();
  o.efs = [...new Set(String(o.ef).split(',').map((s) => Number(s.trim())))];
  if (o.efs.some((e) => !(Number.isInteger(e) && e > 0))) throw new RangeError(`lazy.js: --ef must be a comma list of positive integers, got ${o.ef}`);
  o.datasetList = String(o.datasets).split(',').map((s) => s.trim()).filter(Boolean);
  for (const d of o.datasetList) dataset(d, o.size); // throws on a bad name or size
  return o;
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => { console.error(err.stack || err.message); process.exit(1); });
}

module.exports = { parseArgs };
