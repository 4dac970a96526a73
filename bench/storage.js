'use strict';
// Sessions on storage other than a local directory, side by side in one run:
// the directory path (the engine's own POSIX calls), DirStorage on the same
// directory (the JavaScript bridge over local disk), MemoryStorage (the
// bridge with no I/O) and S3Storage on s3rver (a real S3 API server, started
// here on 127.0.0.1 and stopped at the end). It measures
//   1. open and first query (lazy, default cache) and warm query times;
//   2. requests and bytes per lazy query, at 1 and 4 MiB caches and warm at the
//      default, against the page budget;
//   3. save throughput with 1, 4, 8 and 16 uploads in flight, and an
//      incremental save after 1% of the vectors changed;
//   4. what one JavaScript round trip costs, to judge a native S3 client.
// Prints the tables and writes JSON to ~/.cache/vecvault-bench/storage-results.json.
//
// Usage: node bench/storage.js [--n 100000] [--queries 200] [--gets 300] [--repeats 3]
//          [--uploads 1,4,8,16] [--out FILE]        (or: npm run bench -- storage ...)

const fs = require('fs');
const path = require('path');
const data = require('./data');
const ds = require('./lazy/datasets');
const { now, cpuSnapshot, otherLoad, parseOptions, machineInfo, readVersion } = require('./measure');
const { startS3 } = require('./storage/s3server');
const t = require('./storage/tasks');

const REPO = path.join(__dirname, '..');
const VECVAULT_MODULE = process.env.VECVAULT_MODULE ? path.resolve(process.env.VECVAULT_MODULE) : REPO;
const WORK = path.join(data.CACHE_DIR, 'storage');
const DIM = 384;
const K = 10;
const PAGE_BYTES = 4096 + 16; // a 4 KiB page and its AEAD tag
const log = (...a) => console.error('[storage]', ...a);

// ---------------------------------------------------------------- the session

// The format version this engine writes: a tiny session saved and inspected.
async function engineVersion(VectorDB) {
  const dir = path.join(WORK, `version-${process.pid}`);
  try {
    const db = new VectorDB({ dimension: 4, metric: 'l2', encryptAtRest: false });
    db.add('a', [1, 2, 3, 4]);
    await db.save(dir);
    db.close();
    return (await VectorDB.inspect(dir)).version;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function versionOf(VectorDB, dir) {
  try { return (await VectorDB.inspect(dir)).version; } catch { return null; }
}

/*
 * An encrypted session of n embedding-like vectors in the current format:
 * the lazy benchmark's prepared one when there is one (its sizes: 10k, 100k,
 * 1m, ...), else one built here with the same generator and defaults and
 * kept in ~/.cache/vecvault-bench/storage/<n>-embedding/.
 */
async function sourceSession(VectorDB, n) {
  const version = await engineVersion(VectorDB);
  const tag = Object.keys(ds.SIZES).find((s) => ds.SIZES[s] === n);
  if (tag) {
    const p = ds.readParams(ds.dataset('embedding', tag));
    for (const c of [p[`resave-v${version}`], p.session]) {
      if (c && c.dir && (await versionOf(VectorDB, c.dir)) === version) return { dir: c.dir, version, from: 'bench/lazy' };
    }
  }
  const dir = path.join(WORK, `${n}-embedding`, `session-v${version}`);
  if ((await versionOf(VectorDB, dir)) === version) return { dir, version, from: 'cache' };
  log(`building a session of ${n} vectors (once; kept in ${path.dirname(dir)})`);
  const lazyDs = tag ? ds.dataset('embedding', tag) : null;
  const base = lazyDs && fs.existsSync(ds.baseFile(lazyDs)) ? ds.baseVectors(lazyDs) : data.embedding(n, DIM, { seed: 1 }).data;
  const db = new VectorDB({ dimension: DIM, metric: 'cosine', encryptAtRest: true, key: ds.KEY });
  const t0 = now();
  for (let b = 0; b < n; b += 50000) {
    const e = Math.min(n, b + 50000);
    const items = [];
    for (let i = b; i < e; i++) items.push({ id: String(i), vector: base.subarray(i * DIM, (i + 1) * DIM) });
    db.addBatch(items);
    log(`  ${e}/${n} added (${(now() - t0).toFixed(0)} s)`);
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.rmSync(tmp, { recursive: true, force: true });
  await db.save(tmp);
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return { dir, version, from: 'built', buildSec: now() - t0 };
}

// The lazy benchmark's queries: the same mixture and map, another seed.
function makeQueries(n, nq) {
  const clusters = Math.max(8, Math.round(Math.sqrt(n) / 4));
  const flat = data.embedding(nq, DIM, { seed: 2, clusters }).data;
  return Array.from({ length: nq }, (_, i) => flat.subarray(i * DIM, (i + 1) * DIM));
}

// 1% of the rows (every 100th, from `offset`) get a slightly moved vector.
function changeOnePercent(db, n, offset) {
  const rng = data.makeRng(1000 + offset);
  const items = [];
  for (let i = offset; i < n; i += 100) {
    const v = db.get(String(i)).vector;
    for (let j = 0; j < v.length; j++) v[j] += (rng.next() / 2 ** 32 - 0.5) * 0.02;
    items.push({ id: String(i), vector: v });
  }
  db.addBatch(items);
  return items.length;
}

// ---------------------------------------------------------------- the run

// The commit of the checkout measured (VECVAULT_MODULE may be another one
// than this repo's, whose commit machineInfo() records).
function gitCommit(dir) {
  try {
    return require('child_process').execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
}

function requireDevDependencies() {
  for (const m of ['s3rver', '@aws-sdk/client-s3']) {
    try { require.resolve(m); } catch {
      throw new Error(`storage.js needs the repo's devDependency ${m}: run npm install in the repo root`);
    }
  }
}

// 3a. Full saves into fresh stores by uploads in flight, the directory path
// as reference. The saves with 8 (the default) come last and are kept: they
// are the targets the later steps read.
async function fullSaves(cx) {
  const { db, o, out, lib } = cx;
  out.saves = [{ target: 'directory path', uploadsInFlight: null, ...(await t.timedSave(db, cx.dirPath)) }];
  const order = [...o.uploadList.filter((u) => u !== 8), 8];
  const kept = {};
  for (const [name, make] of [['MemoryStorage', () => new lib.MemoryStorage()], ['S3Storage (s3rver)', (u) => cx.s3At(`save-${u}/`)]]) {
    for (const u of order) {
      const target = new lib.FaultStorage(make(u));
      out.saves.push({ target: name, uploadsInFlight: u, ...(await t.timedSave(db, target, { uploadsInFlight: u })) });
      log(`  ${name}, ${u} in flight: ${out.saves.at(-1).sec.toFixed(2)} s`);
      if (u === 8) kept[name] = target;
    }
  }
  return kept;
}

// 2. Requests and bytes per lazy query: timed on the bare target, counted
// through FaultStorage. At 100K a 1 MiB cache holds fewer than the chunks'
// page tables (about 117 KiB each), so they are read again and again; 4 MiB
// holds them but few pages. Then warm at the default cache. Last, a store
// with a real store's latency: MemoryStorage behind a fixed delay per read.
async function perQuery(cx) {
  const { o, out, key, queries, lib } = cx;
  const passes = [...o.coldList.map((mb) => ({ label: `${mb} MiB, cold`, opts: { cacheSizeMb: mb } })), { label: 'default, warm', opts: { warm: true } }];
  out.io = {};
  for (const x of cx.targets) {
    const io = {};
    for (const ps of passes) {
      const c = x.counted();
      io[ps.label] = {
        bare: await t.perQueryIo(lib.VectorDB, x.target(), null, key, queries, K, ps.opts),
        counted: c ? await t.perQueryIo(lib.VectorDB, c, c, key, queries, K, ps.opts) : null,
      };
    }
    out.io[x.name] = io;
    log(`  ${x.name}: ${io[passes[0].label].bare.msMean.toFixed(2)} ms a cold query`);
  }
  const delayed = new lib.FaultStorage(cx.memory.inner, { faults: (call) => (call.op === 'read' && call.range ? { kind: 'delay', ms: o.latencyMs } : undefined) });
  const latQueries = queries.slice(0, o.latencyQueries);
  const cacheSizeMb = o.coldList.at(-1);
  out.latency = { ms: o.latencyMs, cacheSizeMb, queries: latQueries.length, ...(await t.perQueryIo(lib.VectorDB, delayed, delayed, key, latQueries, K, { cacheSizeMb })) };
  delete out.latency.ids;
}

// 4. One round trip: getAsync at the last cold cache, and reads from JavaScript alone.
async function roundTrips(cx) {
  const { o, out, key, lib } = cx;
  const ids = Array.from({ length: o.gets }, (_, i) => String((i * 7919 + 13) % cx.n));
  out.gets = {};
  for (const x of cx.targets) {
    const c = x.counted();
    out.gets[x.name] = await t.getRoundTrips(lib.VectorDB, c || x.target(), c, key, ids, o.coldList.at(-1));
  }
  out.direct = {};
  for (const x of cx.targets.slice(1)) {
    // Each save encrypts afresh, so every store holds objects of its own names.
    const st = x.target();
    const big = (await st.list('objects/')).sort((a, b) => b.size - a.size)[0];
    out.direct[x.name] = await t.directReads(st, big.name, big.size, o.gets);
    if (x.name.startsWith('S3Storage')) out.direct['plain HTTP GET (s3rver)'] = await t.rawHttpReads(`${cx.s3.endpoint}/${cx.bucket}/save-8/${big.name}`, big.size, o.gets);
  }
}

// 3b. Saves after 1% of the vectors changed, each into the target the
// database saved to last (what makes a save incremental). On S3 a reader
// opened before the save then refreshes.
async function incrementalSaves(cx) {
  const { db, out, key, lib, n } = cx;
  out.incremental = [];
  const reader = new lib.FaultStorage(cx.s3Kept.inner);
  const rdb = await lib.VectorDB.load(reader, { key, lazy: true });
  for (const q of cx.queries) await rdb.searchAsync(q, K);
  out.incremental.push({ target: 'S3Storage (s3rver)', changed: changeOnePercent(db, n, 37), ...(await t.timedSave(db, cx.s3Kept)) });
  reader.resetCounts();
  const t0 = now();
  const rr = await rdb.refresh();
  out.refresh = { ms: (now() - t0) * 1e3, ...rr, requests: reader.counts.read + reader.counts.readManifest, kib: reader.counts.readBytes / 1024 };
  rdb.close();
  const mem2 = new lib.FaultStorage(new lib.MemoryStorage());
  await db.save(mem2);
  out.incremental.push({ target: 'MemoryStorage', changed: changeOnePercent(db, n, 53), ...(await t.timedSave(db, mem2)) });
  const dir2 = path.join(cx.runDir, 'dir2');
  await db.save(dir2);
  out.incremental.push({ target: 'directory path', changed: changeOnePercent(db, n, 71), ...(await t.timedSave(db, dir2)) });
}

async function run(o) {
  requireDevDependencies();
  const lib = require(VECVAULT_MODULE);
  const { S3Storage } = require(path.join(VECVAULT_MODULE, 's3'));
  const key = ds.KEY;
  fs.mkdirSync(WORK, { recursive: true });
  const src = await sourceSession(lib.VectorDB, o.n);
  const info = await lib.VectorDB.inspect(src.dir);
  const rerank = Math.max(4 * K, 2 * info.hnsw.efSearch);
  const out = {
    bench: 'storage', started: new Date().toISOString(), machine: machineInfo(),
    versions: { vecvault: readVersion(VECVAULT_MODULE), vecvaultCommit: gitCommit(VECVAULT_MODULE), s3rver: readVersion(path.join(REPO, 'node_modules', 's3rver')), awsSdk: readVersion(path.join(REPO, 'node_modules', '@aws-sdk', 'client-s3')) },
    options: o, session: { ...src, n: info.totalVectors, dim: info.dimension, bytes: info.bytes, chunks: info.chunkCount, indexSegments: info.indexSegmentCount, hnsw: info.hnsw },
    budget: { rerank, pages: rerank, kib: (rerank * PAGE_BYTES) / 1024 },
  };
  const cpu0 = cpuSnapshot();
  log(`session: ${info.totalVectors} x ${info.dimension}, ${(info.bytes / 1e6).toFixed(0)} MB, format ${info.version} (${src.dir})`);
  const t0 = now();
  const db = await lib.VectorDB.load(src.dir, { key, lazy: false });
  log(`loaded into memory in ${(now() - t0).toFixed(1)} s`);
  const runDir = path.join(WORK, 'tmp', `run-${process.pid}`);
  fs.mkdirSync(runDir, { recursive: true });
  const s3 = await startS3();
  try {
    const bucket = await s3.makeBucket('vecvault-bench');
    const cx = {
      lib, o, out, db, key, n: info.totalVectors, queries: makeQueries(o.n, o.queries), runDir, s3, bucket,
      dirPath: path.join(runDir, 'dir'), s3At: (prefix) => new S3Storage({ client: s3.client, bucket, prefix }),
    };
    log('full saves');
    const kept = await fullSaves(cx);
    cx.memory = kept.MemoryStorage;
    cx.s3Kept = kept['S3Storage (s3rver)'];
    cx.targets = [
      { name: 'directory path', target: () => cx.dirPath, counted: () => null },
      { name: 'DirStorage', target: () => new lib.DirStorage(cx.dirPath) },
      { name: 'MemoryStorage', target: () => cx.memory.inner },
      { name: 'S3Storage (s3rver)', target: () => cx.s3Kept.inner },
    ];
    for (const x of cx.targets) if (!x.counted) x.counted = () => new lib.FaultStorage(x.target());

    log('open and first query'); // 1. repeats interleaved
    out.open = Object.fromEntries(cx.targets.map((x) => [x.name, []]));
    for (let r = 0; r < o.repeats; r++) {
      for (const x of cx.targets) out.open[x.name].push(await t.openAndQuery(lib.VectorDB, x.target(), key, cx.queries, K));
    }
    log('requests and bytes per lazy query');
    await perQuery(cx);
    log('round trips');
    await roundTrips(cx);
    log('incremental saves');
    await incrementalSaves(cx);
  } finally {
    db.close();
    await s3.close();
    fs.rmSync(runDir, { recursive: true, force: true });
  }
  out.otherLoad = otherLoad(cpu0, cpuSnapshot());
  out.finished = new Date().toISOString();
  return out;
}

// ---------------------------------------------------------------- derived numbers and tables

function summarize(r) {
  const med = (xs) => t.median(xs);
  const dirName = 'directory path';
  const open = {};
  for (const [name, reps] of Object.entries(r.open)) {
    open[name] = {
      openMs: med(reps.map((x) => x.openMs)), firstMs: med(reps.map((x) => x.firstMs)),
      warmP50: med(reps.map((x) => x.warm.p50)), warmP95: med(reps.map((x) => x.warm.p95)),
    };
  }
  // Results must not depend on where the session is stored.
  const ref = r.open[dirName][0].ids;
  const differing = {};
  for (const [name, reps] of Object.entries(r.open)) {
    const lists = [...reps.map((x) => x.ids), ...Object.values(r.io[name]).map((p) => p.bare.ids)];
    differing[name] = lists.reduce((s, ids) => s + ids.filter((v, i) => v !== ref[i]).length, 0);
  }
  // Per request, from cold queries: (target - directory) / requests, at each cold cache.
  const fromQueries = {};
  for (const label of Object.keys(r.io[dirName]).filter((l) => l.endsWith('cold'))) {
    const d0 = r.io[dirName][label].bare;
    const per = (name, field) => (r.io[name][label].bare[field] - d0[field]) / r.io[name][label].counted.requestsPerQuery;
    fromQueries[label] = {
      bridgeMs: per('MemoryStorage', 'msMean'), bridgeCpuMs: per('MemoryStorage', 'cpuMsPerQuery'),
      dirStorageMs: per('DirStorage', 'msMean'), s3Ms: per('S3Storage (s3rver)', 'msMean'), s3CpuMs: per('S3Storage (s3rver)', 'cpuMsPerQuery'),
    };
  }
  const last = Object.values(fromQueries).at(-1);
  const gDir = r.gets[dirName];
  const rt = {
    fromQueries,
    bridgeCpuFromQueryMs: last.bridgeCpuMs,
    s3CpuFromQueryMs: last.s3CpuMs,
    // per request, one at a time: getAsync minus the directory's
    // (medians: a few calls that meet a GC or a page-table decode would dominate a mean)
    bridgeFromGetMs: (r.gets.MemoryStorage.msP50 - gDir.msP50) / r.gets.MemoryStorage.requestsPerCall,
    dirStorageFromGetMs: (r.gets.DirStorage.msP50 - gDir.msP50) / r.gets.DirStorage.requestsPerCall,
    s3FromGetMs: (r.gets['S3Storage (s3rver)'].msP50 - gDir.msP50) / r.gets['S3Storage (s3rver)'].requestsPerCall,
    s3DirectMs: r.direct['S3Storage (s3rver)'].msP50,
    s3DirectCpuMs: r.direct['S3Storage (s3rver)'].cpuMsPerRead,
    httpDirectMs: r.direct['plain HTTP GET (s3rver)'].msP50,
    httpDirectCpuMs: r.direct['plain HTTP GET (s3rver)'].cpuMsPerRead,
    memDirectMs: r.direct.MemoryStorage.msP50,
    dirDirectMs: r.direct.DirStorage.msP50,
  };
  return { open, differing, rt };
}

const f = (x, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(1)}x` : 'n/a');

function table(head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => '| ' + r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join(' | ') + ' |';
  console.log(line(head));
  console.log('|' + w.map((x, i) => (i === 0 ? '-'.repeat(x + 2) : '-'.repeat(x + 1) + ':')).join('|') + '|');
  for (const r of rows) console.log(line(r));
}

function print(r) {
  const s = r.summary;
  const d = s.open['directory path'];
  const m = r.machine;
  console.log(`\n== storage: ${r.session.n} x ${r.session.dim} encrypted, ${(r.session.bytes / 1e6).toFixed(0)} MB, ${r.session.chunks} chunks; ` +
    `${r.options.queries} queries, k ${K}, efSearch ${r.session.hnsw.efSearch}; ${m.cores} cores, node ${m.node}, vecvault ${r.versions.vecvaultCommit || m.commit}; other load ${f(r.otherLoad)} cores`);
  console.log(`\n1. Open (lazy, default cache) and first query, then warm searchAsync; median of ${r.options.repeats} opens`);
  table(['target', 'open ms', 'first query ms', 'warm p50 ms', 'warm p95 ms', 'open', 'first', 'warm p50'],
    Object.entries(s.open).map(([name, x]) => [name, f(x.openMs, 1), f(x.firstMs, 1), f(x.warmP50, 3), f(x.warmP95, 3), ratio(x.openMs, d.openMs), ratio(x.firstMs, d.firstMs), ratio(x.warmP50, d.warmP50)]));
  const same = Object.entries(s.differing).filter(([, v]) => v > 0);
  console.log(same.length ? `RESULTS DIFFER from the directory path's: ${same.map(([k, v]) => `${k} ${v} queries`).join(', ')}` : 'Results: every target returned the same ids for every query.');

  console.log(`\n2. Requests and bytes per lazy query (budget: rerank ${r.budget.rerank} pages, ${f(r.budget.kib, 0)} KiB)`);
  const rows = [];
  for (const [name, io] of Object.entries(r.io)) {
    for (const [label, { bare, counted }] of Object.entries(io)) {
      const c = counted || bare;
      rows.push([name, label, f(c.requestsPerQuery, 1), f(c.kibPerQuery, 0), f(bare.missesPerQuery, 1), counted ? `${f(counted.inflightMean, 1)} / ${counted.inflightPeak}` : '-', f(bare.msMean, 2), f(bare.msP95, 2)]);
    }
  }
  const L = r.latency;
  rows.push([`MemoryStorage + ${L.ms} ms a read`, `${L.cacheSizeMb} MiB, cold`, f(L.requestsPerQuery, 1), f(L.kibPerQuery, 0), f(L.missesPerQuery, 1), `${f(L.inflightMean, 1)} / ${L.inflightPeak}`, f(L.msMean, 1), f(L.msP95, 1)]);
  table(['target', 'cache', 'requests/query', 'KiB/query', 'misses/query', 'reads in flight mean/peak', 'ms mean', 'ms p95'], rows);
  console.log(`(the last row: ${L.queries} queries; ${f(L.msMean / L.ms, 1)} read latencies a query)`);

  console.log('\n3. Saves (MB/s over bytes written; objects/s over object writes, the manifest included)');
  table(['target', 'uploads in flight', 'kind', 's', 'MB/s', 'objects', 'objects/s', 'MB written'],
    [...r.saves.slice().sort((a, b) => a.target.localeCompare(b.target) || (a.uploadsInFlight || 0) - (b.uploadsInFlight || 0)).map((x) => [x.target, x.uploadsInFlight || 'n/a (native)', 'full', f(x.sec), f(x.mbPerSec, 0), x.objects, f(x.objectsPerSec, 1), f(x.bytes / 1e6, 1)]),
      ...r.incremental.map((x) => [x.target, x.target === 'directory path' ? 'n/a (native)' : 8, `1% changed (${x.changed})`, f(x.sec), f(x.mbPerSec, 0), x.objects, f(x.objectsPerSec, 1), f(x.bytes / 1e6, 2)])]);
  console.log(`S3 reader refresh() after that save: ${f(r.refresh.ms, 1)} ms, ${r.refresh.requests} requests, ${f(r.refresh.kib, 0)} KiB (generation ${r.refresh.generation})`);

  const rt = s.rt;
  console.log('\n4. One JavaScript round trip, per storage request (ms)');
  const fq = Object.entries(rt.fromQueries);
  table(['measure', ...fq.map(([label]) => `from queries, ${label} (means)`), 'from getAsync, one at a time (p50)'], [
    ['bridge: MemoryStorage - directory', ...fq.map(([, x]) => f(x.bridgeMs, 4)), f(rt.bridgeFromGetMs, 4)],
    ['DirStorage - directory', ...fq.map(([, x]) => f(x.dirStorageMs, 4)), f(rt.dirStorageFromGetMs, 4)],
    ['S3Storage on s3rver - directory', ...fq.map(([, x]) => f(x.s3Ms, 4)), f(rt.s3FromGetMs, 4)],
  ]);
  console.log(`CPU of this process per request, from cold queries at ${fq.at(-1)[0]}: bridge ${f(rt.bridgeCpuFromQueryMs, 4)} ms, S3Storage ${f(rt.s3CpuFromQueryMs, 4)} ms (SDK + HTTP + bridge)`);
  console.log('From JavaScript alone, no engine, 4 KiB ranged reads one at a time (p50 ms; CPU ms of this process per read):');
  table(['reader', 'ms', 'CPU ms'], [
    ['MemoryStorage.read', f(rt.memDirectMs, 4), f(r.direct.MemoryStorage.cpuMsPerRead, 4)],
    ['DirStorage.read', f(rt.dirDirectMs, 4), f(r.direct.DirStorage.cpuMsPerRead, 4)],
    ['S3Storage.read (AWS SDK v3)', f(rt.s3DirectMs, 3), f(rt.s3DirectCpuMs, 3)],
    ['plain HTTP GET, unsigned (Node http)', f(rt.httpDirectMs, 3), f(rt.httpDirectCpuMs, 3)],
  ]);
  console.log(`The bridge is ${f((100 * rt.bridgeFromGetMs) / rt.s3FromGetMs, 1)}% of a request's time on s3rver one at a time, ` +
    `${f((100 * rt.bridgeCpuFromQueryMs) / rt.s3CpuFromQueryMs, 1)}% of the client CPU an S3 request costs.`);
}

// ---------------------------------------------------------------- command line

const HELP = `node bench/storage.js [options]      (or: npm run bench -- storage [options])
  --n N          vectors (embedding-like, 384-D, cosine, encrypted; default 100000; 20000 for a quick run).
                 The lazy bench's prepared session is reused when it has this size, else one is built once
                 into ~/.cache/vecvault-bench/storage/<n>-embedding/
  --queries N    queries per pass (default 200)
  --gets N       getAsync calls and direct reads of the round-trip measures (default 300)
  --repeats N    opens per target, interleaved; medians (default 3)
  --uploads LIST uploadsInFlight values of the full saves (default 1,4,8,16; 8 is always run)
  --cold-cache-mb LIST  caches of the cold passes (default 1,4)
  --latency-ms MS       the delay per read of the simulated remote store (MemoryStorage behind
                        FaultStorage's delay; default 20), at the last cold cache
  --latency-queries N   queries of that pass (default 20)
  --out FILE     JSON (default ~/.cache/vecvault-bench/storage-results.json)
  --print FILE   print the tables of a JSON report again, measuring nothing
s3rver runs in a child process on 127.0.0.1 at a random port, in a temporary directory, for the run only.`;

function parseArgs(argv) {
  const o = { n: '100000', queries: '200', gets: '300', repeats: '3', uploads: '1,4,8,16', coldCacheMb: '1,4', latencyMs: '20', latencyQueries: '20' };
  parseOptions('storage.js', argv, o, {
    '--n': 'n', '--queries': 'queries', '--gets': 'gets', '--repeats': 'repeats', '--uploads': 'uploads', '--cold-cache-mb': 'coldCacheMb',
    '--latency-ms': 'latencyMs', '--latency-queries': 'latencyQueries', '--out': 'out', '--print': 'print',
  }, {}, ['n', 'queries', 'gets', 'repeats', 'latencyMs', 'latencyQueries']);
  for (const k of ['n', 'queries', 'gets', 'repeats', 'latencyQueries']) o[k] = Math.round(o[k]);
  o.coldList = String(o.coldCacheMb).split(',').map(Number);
  if (!o.coldList.every((mb) => mb > 0)) throw new RangeError('storage.js: --cold-cache-mb must be positive numbers');
  o.latencyQueries = Math.min(o.latencyQueries, o.queries);
  o.uploadList = String(o.uploads).split(',').map(Number);
  if (!o.uploadList.every((u) => Number.isInteger(u) && u >= 1 && u <= 64)) throw new RangeError('storage.js: --uploads must be integers in 1..64');
  if (!o.uploadList.includes(8)) o.uploadList.push(8);
  if (o.n < 1000) throw new RangeError('storage.js: --n must be at least 1000');
  return o;
}

async function main(argv) {
  const o = parseArgs(argv);
  if (o.help) { console.log(HELP); return; }
  if (o.print) { print(JSON.parse(fs.readFileSync(o.print, 'utf8'))); return; }
  const file = o.out || path.join(data.CACHE_DIR, 'storage-results.json');
  const r = await run(o);
  r.summary = summarize(r);
  for (const x of Object.values(r.open)) for (const rep of x) delete rep.ids; // compared already; the JSON stays small
  for (const io of Object.values(r.io)) for (const p of Object.values(io)) for (const v of Object.values(p)) if (v) delete v.ids;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
  print(r);
  console.log(`\nJSON: ${file}`);
  if (Object.values(r.summary.differing).some((v) => v > 0)) process.exitCode = 1;
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err.stack || err.message);
  process.exit(1);
});
