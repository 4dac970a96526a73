'use strict';
// The filtered benchmark's measurements, one system per child process
// (`node --expose-gc bench/filter.js --worker <system> ...`). A child
// searches every case with the same queries, one query per call on the JS
// thread, and returns the ids it got; the parent grades them (recall, every
// result matching, how many came back), so no system grades itself.
//
// systems:
//   vecvault-build  builds the encrypted session with the filterable fields
//                   (addBatchAsync, all cores) and saves it into the cache
//   vecvault        that session loaded into memory (lazy: false)
//   vecvault-lazy   the same session loaded lazily (the default cache)
//   hnswlib         hnswlib-node's index of the same vectors (lazy bench's
//                   cache), searchKnn with a JS filter callback over columns
//   lancedb         a LanceDB table of vectors and metadata: a prefiltered
//                   flat search, the same with scalar indexes on the
//                   metadata columns, then with an IVF_PQ vector index too

const fs = require('fs');
const os = require('os');
const path = require('path');
const { now, cpuSnapshot, otherLoad, readVersion } = require('../measure');

const K = 10;
const WARMUP = 20; // queries per case before timing
const log = (...a) => console.error(...a);
const gc = () => { if (global.gc) { global.gc(); global.gc(); } };

// Times `search(q)` over every query: one pass graded, then more passes
// until minTime seconds (at most 20 passes). A system slower than maxTime
// seconds for the first pass stops there (after at least WARMUP queries) and
// is graded on the queries it answered. Works for sync and async searches.
async function timeCase(nq, search, { minTime, maxTime }) {
  for (let i = 0; i < Math.min(WARMUP, nq); i++) await search(i);
  const ids = [];
  let t = now();
  for (let i = 0; i < nq; i++) {
    ids.push(await search(i));
    if (i + 1 >= WARMUP && now() - t > maxTime) break;
  }
  let total = now() - t, done = ids.length, passes = 1;
  while (done === nq && total < minTime && passes < 20) {
    t = now();
    for (let i = 0; i < nq; i++) await search(i);
    total += now() - t; done += nq; passes++;
  }
  return { qps: done / total, ids, passes, searches: Math.min(WARMUP, nq) + done };
}

async function runCases(ctx, label, makeSearch, extra = () => ({})) {
  const out = [];
  const c0 = cpuSnapshot();
  for (const c of ctx.cases) {
    const search = makeSearch(c);
    const r = await timeCase(ctx.nq, search, ctx);
    out.push({ case: c.index, qps: r.qps, passes: r.passes, ids: r.ids, ...(await extra(c, r)) });
    log(`[${label}] ${c.name}: ${r.qps.toFixed(0)} QPS`);
    gc();
  }
  return { cases: out, otherLoad: otherLoad(c0, cpuSnapshot()) };
}

// ---------------------------------------------------------------- vecvault

function vecvault(ctx) {
  try {
    return require(ctx.module).VectorDB;
  } catch (err) {
    throw new Error(`vecvault did not load from ${ctx.module} (is the addon built?): ${String(err.message).split('\n')[0]}`);
  }
}

async function buildVecvault(ctx) {
  const VectorDB = vecvault(ctx);
  const { base, dim, n, metric, cols, metadataOf } = ctx;
  const items = new Array(n);
  for (let i = 0; i < n; i++) items[i] = { id: String(i), vector: base.subarray(i * dim, (i + 1) * dim), metadata: metadataOf(cols, i) };
  const db = new VectorDB({ dimension: dim, metric, filterable: Object.keys(cols.fields), encryptAtRest: true, key: ctx.key });
  let t = now();
  await db.addBatchAsync(items);
  const buildSec = now() - t;
  const tmp = `${ctx.session}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  t = now();
  await db.save(tmp);
  const saveSec = now() - t;
  db.close();
  fs.rmSync(ctx.session, { recursive: true, force: true });
  fs.renameSync(tmp, ctx.session);
  const info = await VectorDB.inspect(ctx.session);
  return { buildSec, saveSec, threads: os.cpus().length, version: info.version };
}

async function measureVecvault(ctx, lazy) {
  const VectorDB = vecvault(ctx);
  const label = lazy ? 'vecvault lazy' : 'vecvault';
  const t = now();
  const db = await VectorDB.load(ctx.session, { key: ctx.key, lazy });
  const loadSec = now() - t;
  const qs = ctx.queryList;
  const flat = ctx.queries;
  let read0 = 0;
  const r = await runCases(ctx, label, (c) => {
    const opts = { filter: c.mongo };
    read0 = db.cacheStats().bytesRead;
    return (i) => db.search(qs[i], K, opts).map((x) => Number(x.id));
  }, async (c, timed) => {
    // Bytes a lazy session read from storage per search (warm-up included).
    const bytesReadPerQuery = (db.cacheStats().bytesRead - read0) / timed.searches;
    // The engine's own count must agree with the reference evaluator.
    const count = db.count(c.mongo);
    // All queries in one searchBatchAsync call, on the engine's threads.
    const tb = now();
    const batch = await db.searchBatchAsync(flat, K, { filter: c.mongo });
    const batchQps = ctx.nq / (now() - tb);
    return { count, bytesReadPerQuery, batchQps, batchIds: batch.map((rs) => rs.map((x) => Number(x.id))) };
  });
  const stats = lazy ? db.cacheStats() : null;
  // In memory, also at other efSearch values (--vv-ef), as hnswlib runs at several.
  const efs = [];
  for (const ef of lazy ? [] : ctx.vvEfs || []) {
    efs.push({ ef, ...await runCases(ctx, `${label} ef${ef}`, (c) => {
      const opts = { filter: c.mongo, efSearch: ef };
      return (i) => db.search(qs[i], K, opts).map((x) => Number(x.id));
    }) });
  }
  // Each plan forced in turn (--plans), to see what the planner chose against.
  const plans = [];
  for (const plan of lazy ? [] : ctx.plans) {
    plans.push({ plan, ...await runCases(ctx, `${label} plan ${plan}`, (c) => {
      const opts = { filter: c.mongo, plan };
      return (i) => db.search(qs[i], K, opts).map((x) => Number(x.id));
    }) });
  }
  db.close();
  return { loadSec, ...r, efs, plans, cacheStats: stats, version: readVersion(ctx.module) };
}

// ---------------------------------------------------------------- hnswlib-node

async function measureHnswlib(ctx) {
  const { HierarchicalNSW } = require('hnswlib-node');
  const index = new HierarchicalNSW(ctx.metric, ctx.dim);
  const t = now();
  await index.readIndex(ctx.hnswlib);
  const loadSec = now() - t;
  const qs = ctx.queryList.map((q) => Array.from(q)); // its API takes plain arrays; converted before timing
  const rows = [];
  for (const ef of ctx.hnswEfs) {
    index.setEf(ef);
    const r = await runCases(ctx, `hnswlib ef${ef}`, (c) => {
      const p = c.predicate;
      const filter = (label) => p(label);
      return (i) => index.searchKnn(qs[i], K, filter).neighbors;
    });
    rows.push({ ef, ...r });
  }
  return { loadSec, efs: rows, version: readVersion(path.join(__dirname, '..', 'node_modules', 'hnswlib-node')) };
}

// ---------------------------------------------------------------- LanceDB

function arrowTable(arrow, ctx) {
  const { base, dim, n, cols } = ctx;
  const vtype = new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), true));
  const vdata = arrow.makeData({ type: vtype, length: n, nullCount: 0, child: arrow.makeData({ type: new arrow.Float32(), length: n * dim, data: base }) });
  const columns = { id: arrow.makeVector(Int32Array.from({ length: n }, (_, i) => i)), vector: arrow.makeVector(vdata) };
  for (const [name, f] of Object.entries(cols.fields)) {
    if (f.kind === 'string') columns[name] = arrow.vectorFromArray(Array.from(f.codes, (c) => f.values[c]), new arrow.Utf8());
    else if (f.kind === 'number') columns[name] = arrow.makeVector(Int32Array.from(f.values));
    else if (f.kind === 'label') columns[name] = arrow.makeVector(Int32Array.from(f.values));
    else {
      const lists = new Array(n);
      for (let i = 0; i < n; i++) lists[i] = ctx.metadataOf(cols, i)[name];
      columns[name] = arrow.vectorFromArray(lists, new arrow.List(new arrow.Field('item', new arrow.Utf8(), true)));
    }
  }
  return new arrow.Table(columns);
}

async function measureLancedb(ctx) {
  const lancedb = require('@lancedb/lancedb');
  const arrow = require('apache-arrow');
  const dir = fs.mkdtempSync(path.join(ctx.tmpRoot, 'lance-'));
  try {
    const conn = await lancedb.connect(dir);
    let t = now();
    const table = await conn.createTable('bench', arrowTable(arrow, ctx));
    const createSec = now() - t;
    const counts = [];
    for (const c of ctx.cases) counts.push(await table.countRows(c.sql));
    const qs = ctx.queryList;
    const search = (c, tune) => async (i) => {
      const rows = await tune(table.query().nearestTo(qs[i]).distanceType(ctx.metric).where(c.sql).limit(K).select(['id', '_distance'])).toArray();
      return rows.map((r) => r.id);
    };
    const flat = await runCases(ctx, 'lancedb flat', (c) => search(c, (q) => q));
    // What LanceDB recommends for filtered columns: scalar indexes (bitmap
    // for low cardinality, btree otherwise, label_list for a tag list); the
    // prefilter then reads only the matching rows' vectors.
    t = now();
    for (const [name, f] of Object.entries(ctx.cols.fields)) {
      const lowCardinality = f.kind === 'label' || (f.kind === 'string' && f.values.length <= 1000);
      const config = f.kind === 'tags' ? lancedb.Index.labelList() : lowCardinality ? lancedb.Index.bitmap() : lancedb.Index.btree();
      await table.createIndex(name, { config });
    }
    const scalarIndexSec = now() - t;
    const scalar = await runCases(ctx, 'lancedb flat+scalar', (c) => search(c, (q) => q));
    // IVF_PQ with LanceDB's defaults (partitions ~ sqrt(n), dim/16 sub-vectors),
    // searched with its default 20 probes and a refine step over 10x k.
    t = now();
    await table.createIndex('vector', { config: lancedb.Index.ivfPq({ distanceType: ctx.metric }) });
    const indexSec = now() - t;
    const ivf = await runCases(ctx, 'lancedb ivf_pq', (c) => search(c, (q) => q.nprobes(ctx.lanceNprobes).refineFactor(ctx.lanceRefine)));
    return {
      createSec, scalarIndexSec, indexSec, counts, flat, scalar, ivf, nprobes: ctx.lanceNprobes, refineFactor: ctx.lanceRefine,
      version: readVersion(path.join(__dirname, '..', 'node_modules', '@lancedb', 'lancedb')),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const SYSTEMS = {
  'vecvault-build': buildVecvault,
  vecvault: (ctx) => measureVecvault(ctx, false),
  'vecvault-lazy': (ctx) => measureVecvault(ctx, true),
  hnswlib: measureHnswlib,
  lancedb: measureLancedb,
};

module.exports = { SYSTEMS, K };
