'use strict';
// vecvault bench <base-file>: recall@k and queries per second of an HNSW
// index on the user's own vectors, for a few efSearch values, against an
// exact ground truth from a flat index; a table, --json, and an SVG plot.
const fs = require('node:fs');
const path = require('node:path');
const { setImmediate: yieldToLoop } = require('node:timers/promises');
const { VecvaultError, abortError } = require('../errors');
const { LIMITS, METRICS, defaultThreads } = require('../options');
const { usageError } = require('./args');
const { withProgress } = require('./progress');
const { table } = require('./format');
const { readVectors, FORMAT_NAMES } = require('./vectors');
const { benchSvg } = require('./plot');

const DEFAULT_EF = [16, 32, 64, 128, 256];
const DEFAULT_SEED = 1;
// Vectors per addBatchAsync call and queries per ground-truth call: progress
// moves between calls, and a batch's item objects stay few.
const ADD_BATCH = 10000;
const TRUTH_BATCH = 64;
// One-query-per-call latency: back to the event loop this often, so Ctrl-C is seen.
const LATENCY_YIELD = 64;
// Seconds each efSearch's batch and one-per-call runs are repeated for, at least.
const DEFAULT_MIN_TIME = 0.25;

/* ------------------------------------------------------------- options */

function integer(values, name, fallback, min, max) {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw usageError(`--${name} must be an integer in ${min}..${max}, got "${raw}"`);
  return n;
}

function efList(raw) {
  if (raw === undefined) return DEFAULT_EF;
  const parts = raw.split(',').map((s) => s.trim());
  const efs = parts.map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
  if (parts.length === 0 || !efs.every((e) => e >= 1 && e <= LIMITS.maxEf)) {
    throw usageError(`--ef must be a comma-separated list of integers in 1..${LIMITS.maxEf}, got "${raw}"`);
  }
  return [...new Set(efs)];
}

function parseOptions(values) {
  const metric = values.metric ?? 'cosine';
  if (!Object.hasOwn(METRICS, metric)) throw usageError(`--metric must be one of ${Object.keys(METRICS).join(', ')}, got "${metric}"`);
  if (values.format !== undefined && !FORMAT_NAMES.includes(values.format)) {
    throw usageError(`--format must be one of ${FORMAT_NAMES.join(', ')}, got "${values.format}"`);
  }
  const o = {
    queries: values.queries,
    format: values.format,
    metric,
    k: integer(values, 'k', 10, 1, 100000),
    efs: efList(values.ef),
    m: integer(values, 'm', 16, 2, LIMITS.maxM),
    efConstruction: integer(values, 'ef-construction', 200, 1, LIMITS.maxEf),
    queriesCount: integer(values, 'queries-count', undefined, 1, 1e9),
    seed: integer(values, 'seed', DEFAULT_SEED, 0, 2 ** 32 - 1),
    threads: integer(values, 'threads', defaultThreads(), 1, LIMITS.maxThreads),
    minTime: minTimeOption(values['min-time']),
    plot: values.plot,
  };
  if (o.plot !== undefined) checkPlotTarget(o.plot);
  return o;
}

function minTimeOption(raw) {
  if (raw === undefined) return DEFAULT_MIN_TIME;
  const n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
  if (!(n <= 3600)) throw usageError(`--min-time must be a number of seconds in 0..3600, got "${raw}"`);
  return n;
}

/** Fails before the work, not after it, when the plot could not be written. */
function checkPlotTarget(file) {
  const dir = path.dirname(path.resolve(file));
  let st;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    throw new VecvaultError(`cannot write the plot ${file}: ${err.message}`, err.code === 'ENOENT' ? 'ERR_NOT_FOUND' : 'ERR_IO', { cause: err });
  }
  if (!st.isDirectory()) throw new VecvaultError(`cannot write the plot ${file}: ${dir} is not a directory`, 'ERR_IO');
}

/* ---------------------------------------------------------------- data */

/** mulberry32: a small seeded generator, so the held-out sample is the same on every run. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Copies `rows` (file row numbers) of `set` into a new Float32Array. */
function gather(set, rows) {
  const d = set.dimension;
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => out.set(set.data.subarray(r * d, (r + 1) * d), i * d));
  return out;
}

/**
 * Splits `set` into the base and `n` queries drawn without replacement by a
 * seeded partial Fisher-Yates shuffle. Both keep file order; the queries are
 * not indexed.
 */
function holdOut(set, n, seed) {
  const next = rng(seed);
  const order = new Uint32Array(set.count);
  for (let i = 0; i < order.length; i++) order[i] = i;
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(next() * (order.length - i));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const queryRows = Array.from(order.subarray(0, n)).sort((a, b) => a - b);
  const held = new Uint8Array(set.count);
  for (const r of queryRows) held[r] = 1;
  const baseRows = [];
  for (let r = 0; r < set.count; r++) if (!held[r]) baseRows.push(r);
  return { baseRows, base: gather(set, baseRows), queries: gather(set, queryRows) };
}

/** Under cosine a zero vector has no direction: named here, with its file and row. */
function checkNonZero(set) {
  const d = set.dimension;
  for (let r = 0; r < set.count; r++) {
    let any = false;
    for (let j = r * d; j < (r + 1) * d && !any; j++) any = set.data[j] !== 0;
    if (!any) throw new VecvaultError(`${set.file}: vector ${r} is all zeros, which has no direction under the cosine metric (use --metric l2 or dot)`, 'ERR_INVALID_VECTOR');
  }
}

async function readSet(file, o, io, label) {
  const set = await withProgress(`read ${label}`, io, (onProgress) => readVectors(file, { format: o.format, onProgress, signal: io.signal }));
  if (o.metric === 'cosine') checkNonZero(set);
  return set;
}

/** The base (indexed) and query vectors, with what the report says about them. */
async function loadData(baseFile, o, io) {
  const all = await readSet(baseFile, o, io, 'base');
  const d = all.dimension;
  if (o.queries !== undefined) {
    const q = await readSet(o.queries, o, io, 'queries');
    if (q.dimension !== d) {
      throw new VecvaultError(`the queries ${o.queries} have dimension ${q.dimension}, the base ${baseFile} has ${d}`, 'ERR_DIMENSION_MISMATCH');
    }
    if (all.count < o.k) throw usageError(`--k is ${o.k}, but ${baseFile} holds only ${all.count} vectors`);
    const n = Math.min(o.queriesCount ?? q.count, q.count);
    const ids = Array.from({ length: all.count }, (_, i) => String(i));
    return { all, ids, base: all.data, queries: q.data.subarray(0, n * d), nq: n, source: { file: o.queries, format: q.format, heldOut: false, count: n } };
  }
  const room = all.count - o.k;
  if (room < 1) throw usageError(`${baseFile} holds ${all.count} vectors: holding queries out needs more than --k (${o.k}); pass --queries <file> or a smaller --k`);
  const n = o.queriesCount ?? Math.min(room, 1000, Math.max(10, Math.floor(all.count / 100)));
  if (n > room) throw usageError(`--queries-count ${n} leaves fewer than --k (${o.k}) of the ${all.count} vectors in ${baseFile} to index`);
  const split = holdOut(all, n, o.seed);
  all.data = null; // the split holds copies: let the whole file's array go
  const ids = split.baseRows.map(String);
  return { all, ids, base: split.base, queries: split.queries, nq: n, source: { file: null, heldOut: true, seed: o.seed, count: n } };
}

/* --------------------------------------------------------------- engine */

const seconds = (start) => Number(process.hrtime.bigint() - start) / 1e9;

/** A VectorDB of every base vector (ids: file row numbers), built with progress. */
async function buildDb(VectorDB, data, ids, dbOptions, label, io) {
  const d = dbOptions.dimension;
  const db = new VectorDB({ ...dbOptions, encryptAtRest: false });
  try {
    await withProgress(
      label,
      io,
      async (onProgress) => {
        onProgress(0, ids.length);
        for (let from = 0; from < ids.length; from += ADD_BATCH) {
          const items = [];
          for (let i = from; i < Math.min(ids.length, from + ADD_BATCH); i++) items.push({ id: ids[i], vector: data.subarray(i * d, (i + 1) * d) });
          await db.addBatchAsync(items, { signal: io.signal, onProgress: (done) => onProgress(from + done, ids.length) });
        }
      },
      { unit: 'vectors' }
    );
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * The exact k nearest of every query, from a flat index (a brute-force scan
 * of every base vector): per query its ids and the k-th distance.
 */
async function groundTruth(VectorDB, data, ids, queries, nq, o, io) {
  const d = queries.length / nq;
  const start = process.hrtime.bigint();
  const db = await buildDb(VectorDB, data, ids, { dimension: d, metric: o.metric, index: 'flat', threads: o.threads }, 'ground truth: load', io);
  try {
    const truth = await withProgress(
      'ground truth: search',
      io,
      async (onProgress) => {
        const out = [];
        onProgress(0, nq);
        for (let from = 0; from < nq; from += TRUTH_BATCH) {
          const n = Math.min(TRUTH_BATCH, nq - from);
          const res = await db.searchBatchAsync(queries.subarray(from * d, (from + n) * d), o.k, { signal: io.signal });
          for (const hits of res) out.push({ ids: new Set(hits.map((h) => h.id)), kth: hits[hits.length - 1].distance });
          onProgress(from + n, nq);
        }
        return out;
      },
      { unit: 'queries' }
    );
    return { truth, seconds: seconds(start) };
  } finally {
    db.close();
  }
}

/**
 * recall@k of `results` against `truth`: the share of the true k nearest
 * found. A hit at the k-th true distance counts too, so ties among equally
 * near vectors are not held against the index.
 */
function recallOf(results, truth, k) {
  let found = 0;
  results.forEach((hits, i) => {
    const t = truth[i];
    const tie = t.kth + 1e-5 * Math.max(1, Math.abs(t.kth));
    for (const h of hits) if (t.ids.has(h.id) || h.distance <= tie) found++;
  });
  return found / (results.length * k);
}

/**
 * Throughput of searchBatchAsync of every query at once, repeated until
 * `minTime` seconds have passed (one batch of a few hundred queries is too
 * short to time); the first round's results give the recall.
 */
async function batchQps(db, queries, nq, k, efSearch, minTime, signal) {
  let res;
  let rounds = 0;
  let elapsed;
  const start = process.hrtime.bigint();
  do {
    const r = await db.searchBatchAsync(queries, k, { efSearch, signal });
    if (rounds++ === 0) res = r;
    elapsed = seconds(start);
  } while (elapsed < minTime);
  return { res, qps: (rounds * nq) / elapsed };
}

/**
 * Mean wall time of one search() per query on the JS thread, in ms, over
 * passes through the queries until `minTime` seconds have passed.
 * `onProgress(i)` during the first pass.
 */
async function meanLatency(db, queries, nq, k, efSearch, minTime, signal, onProgress) {
  const d = queries.length / nq;
  let total = 0n;
  let calls = 0;
  for (let pass = 0; pass === 0 || Number(total) / 1e9 < minTime; pass++) {
    for (let i = 0; i < nq; i++) {
      const q = queries.subarray(i * d, (i + 1) * d);
      const start = process.hrtime.bigint();
      db.search(q, k, { efSearch });
      total += process.hrtime.bigint() - start;
      calls++;
      if ((i + 1) % LATENCY_YIELD === 0 || i + 1 === nq) {
        await yieldToLoop();
        if (signal && signal.aborted) throw abortError(signal);
        if (pass === 0) onProgress(i + 1);
      }
    }
  }
  return Number(total) / 1e6 / calls;
}

async function measure(db, data, truth, o, io) {
  const { queries, nq } = data;
  const total = 2 * nq * o.efs.length;
  return withProgress(
    'search',
    io,
    async (onProgress) => {
      const results = [];
      onProgress(0, total);
      for (const [n, efSearch] of o.efs.entries()) {
        const done = 2 * nq * n;
        const { res, qps } = await batchQps(db, queries, nq, o.k, efSearch, o.minTime, io.signal);
        onProgress(done + nq, total);
        const latency = await meanLatency(db, queries, nq, o.k, efSearch, o.minTime, io.signal, (i) => onProgress(done + nq + i, total));
        results.push({ efSearch, recall: recallOf(res, truth, o.k), qps, meanLatencyMs: latency });
      }
      return results;
    },
    { unit: 'queries' }
  );
}

/* --------------------------------------------------------------- report */

function describeQueries(q, file) {
  if (q.heldOut) return `${q.count} held out of ${path.basename(file)} (seed ${q.seed}), not indexed`;
  return `${q.count} from ${q.file} (${q.format})`;
}

function resultTable(results, k) {
  const head = ['efSearch', `recall@${k}`, 'QPS (batch)', 'mean latency'];
  const rows = results.map((r) => [String(r.efSearch), r.recall.toFixed(4), String(Math.round(r.qps)), `${r.meanLatencyMs.toFixed(3)} ms`]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padStart(widths[i])).join('  ')).join('\n') + '\n';
}

function report(b, file) {
  const vps = b.build.seconds > 0 ? Math.round(b.base.count / b.build.seconds) : b.base.count;
  return (
    table([
      ['base', `${file} (${b.base.format}): ${b.base.count} vectors indexed, dimension ${b.base.dimension}`],
      ['queries', describeQueries(b.queries, file)],
      ['ground truth', `exact, from a flat index (brute force over every base vector) in ${b.groundTruth.seconds.toFixed(2)} s`],
      ['index', `hnsw, m ${b.hnsw.m}, efConstruction ${b.hnsw.efConstruction}, metric ${b.metric}, ${b.threads} thread${b.threads === 1 ? '' : 's'}`],
      ['build', `${b.build.seconds.toFixed(2)} s (${vps} vectors/s)`],
    ]) +
    '\n' +
    resultTable(b.results, b.k) +
    '\n' +
    `QPS (batch): searchBatchAsync of all ${b.queries.count} queries at once on ${b.threads} thread${b.threads === 1 ? '' : 's'}, repeated for ${b.minTime} s or more.\n` +
    `mean latency: one search() call per query, one after another on one thread, for ${b.minTime} s or more.\n` +
    (b.plot ? `plot: ${b.plot}\n` : '')
  );
}

async function writePlot(b, file) {
  const svg = benchSvg({
    title: `${path.basename(file)}: ${b.base.count} vectors × ${b.base.dimension}, k=${b.k}`,
    subtitle: `HNSW m=${b.hnsw.m} efConstruction=${b.hnsw.efConstruction}, ${b.metric}, ${b.queries.count} queries, batch QPS on ${b.threads} thread${b.threads === 1 ? '' : 's'}`,
    k: b.k,
    results: b.results,
  });
  try {
    await fs.promises.writeFile(b.plot, svg);
  } catch (err) {
    throw new VecvaultError(`cannot write the plot ${b.plot}: ${err.message}`, err.code === 'ENOENT' ? 'ERR_NOT_FOUND' : 'ERR_IO', { cause: err });
  }
}

async function run({ base: file }, values, io) {
  const o = parseOptions(values);
  // Required here, so --help works without the native addon.
  const { VectorDB } = require('../vector-db');
  const data = await loadData(file, o, io);
  const d = data.all.dimension;
  const gt = await groundTruth(VectorDB, data.base, data.ids, data.queries, data.nq, o, io);
  const start = process.hrtime.bigint();
  const db = await buildDb(VectorDB, data.base, data.ids, { dimension: d, metric: o.metric, hnsw: { m: o.m, efConstruction: o.efConstruction }, threads: o.threads }, 'build hnsw', io);
  const build = { seconds: seconds(start) };
  let results;
  try {
    results = await measure(db, data, gt.truth, o, io);
  } finally {
    db.close();
  }
  const bench = {
    base: { file, format: data.all.format, count: data.ids.length, dimension: d, fileCount: data.all.count },
    queries: data.source,
    k: o.k,
    metric: o.metric,
    hnsw: { m: o.m, efConstruction: o.efConstruction },
    threads: o.threads,
    minTime: o.minTime,
    groundTruth: { exact: true, method: 'flat index (brute force)', seconds: gt.seconds },
    build,
    results,
    plot: o.plot ?? null,
  };
  if (o.plot !== undefined) await writePlot(bench, file);
  return { json: { bench }, text: report(bench, file) };
}

module.exports = {
  summary: 'recall@k and QPS of an HNSW index on your vectors (.npy, .fvecs, JSON lines), with an SVG plot',
  usage: '<base-file> [--queries <file>] [--k 10] [--ef 16,32,64,128,256] [--metric cosine|l2|dot] [--m 16] [--ef-construction 200] [--queries-count N] [--seed 1] [--threads N] [--min-time 0.25] [--format npy|fvecs|jsonl] [--plot <out.svg>] [--json]',
  help: `Reads <base-file> and builds an HNSW index of it, then for each efSearch runs the
queries and prints recall@k (against an exact ground truth: a flat index,
brute force over every base vector), queries per second and mean latency.

Formats, by extension or --format: .npy (2-D float32 '<f4' or float64 '<f8',
C order), .fvecs (per vector an int32 dimension, then that many float32),
.jsonl/.ndjson (per line an array of numbers, or an object with a "vector" or
"embedding" array; blank lines skipped).

Options:
  --queries <file>        query vectors (the first --queries-count of them); without it,
                          a seeded sample of the base is held out as queries and not indexed
  --queries-count <n>     how many queries (default: held out, min(1000, max(10, 1%)))
  --seed <n>              seed of the held-out sample (default ${DEFAULT_SEED})
  --k <n>                 neighbours per query, recall@k (default 10)
  --ef <list>             efSearch values, comma-separated (default ${DEFAULT_EF.join(',')})
  --metric <m>            cosine, l2 or dot (default cosine)
  --m <n>                 HNSW links per node (default 16)
  --ef-construction <n>   HNSW build candidate list (default 200)
  --threads <n>           worker threads (default: all cores)
  --min-time <s>          time each efSearch's batch and one-per-call runs for at least
                          this many seconds, repeating the queries (default ${DEFAULT_MIN_TIME})
  --format <f>            npy, fvecs or jsonl, for both files (default: by extension)
  --plot <out.svg>        write recall (x) against QPS (y, log scale) as an SVG

QPS is batch throughput (searchBatchAsync of every query at once on the
worker threads); mean latency is one search() per query on one thread. Both
repeat the queries for --min-time seconds; recall is from the first round.
`,
  options: {
    queries: { type: 'string' },
    'queries-count': { type: 'string' },
    seed: { type: 'string' },
    k: { type: 'string' },
    ef: { type: 'string' },
    metric: { type: 'string' },
    m: { type: 'string' },
    'ef-construction': { type: 'string' },
    threads: { type: 'string' },
    'min-time': { type: 'string' },
    format: { type: 'string' },
    plot: { type: 'string' },
  },
  positionals: ['base'],
  run,
  // For the tests: the seeded split of a read file into base and queries.
  holdOut,
};
