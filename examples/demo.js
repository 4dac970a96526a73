'use strict';
// `npm run demo`: the main job in miniature. Builds a collection of
// synthetic "document embeddings" with metadata, searches it a few ways,
// and prints results and timings.
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { VectorDB, simd } = require('..');

const DIM = 384;
const N = Number(process.env.DEMO_N) || 20000;
const TOPICS = ['billing', 'onboarding', 'security', 'search', 'storage', 'pricing', 'support', 'api'];

// Seeded generator so every run shows the same numbers of results.
let seed = 0x9e3779b9;
function rand() {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
function gaussian() {
  return Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

const centres = TOPICS.map(() => Float32Array.from({ length: DIM }, gaussian));
function embed(topic, noise = 0.8) {
  const c = centres[topic];
  return Float32Array.from(c, (x) => x + noise * gaussian());
}

function ms(t0) {
  return `${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms`;
}

function bar(done, total, width = 30) {
  const filled = Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

function mib(bytes) {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

// Progress for one operation. On a terminal, a bar redrawn in place; in a
// log (CI, a pipe, `> file`) a bar would be one line of carriage returns, so
// plain lines instead: one when the work starts, one at each quarter it
// passes and one at the end.
function progress(label) {
  const tty = process.stdout.isTTY;
  let next = 25;
  const report = (done, total, info) => {
    const extra = info ? ` ${info.phase.padEnd(6)} ${(info.bytes / 1e6).toFixed(1)} MB` : '';
    if (tty) {
      process.stdout.write(`\r  ${label} ${bar(done, total)}${extra}`);
      return;
    }
    const pct = total > 0 ? Math.floor((done * 100) / total) : 100;
    if (pct < next) return;
    console.log(`  ${label} ${String(pct).padStart(3)}% (${done}/${total})${extra}`);
    next = Math.floor(pct / 25) * 25 + 25;
  };
  report.start = () => {
    if (!tty) console.log(`  ${label}   0%`);
  };
  report.end = () => {
    if (tty) process.stdout.write('\n');
  };
  return report;
}

async function main() {
  console.log(`vecvault demo: ${N} documents x ${DIM} dimensions, cosine, HNSW (SIMD: ${simd})\n`);
  const db = new VectorDB({ dimension: DIM, metric: 'cosine' });

  const items = [];
  for (let i = 0; i < N; i++) {
    const topic = i % TOPICS.length;
    items.push({ id: `doc-${i}`, vector: embed(topic), metadata: { topic: TOPICS[topic], words: 100 + (i % 900) } });
  }

  let t0 = process.hrtime.bigint();
  const indexing = progress('indexing');
  indexing.start();
  await db.addBatchAsync(items, { onProgress: indexing });
  indexing.end();
  console.log(`  indexed ${db.size} vectors in ${ms(t0)} (all cores, off the JS thread)\n`);

  const query = embed(TOPICS.indexOf('security'), 0.5);
  t0 = process.hrtime.bigint();
  const hits = db.search(query, 5);
  console.log(`  top 5 for a "security" question (${ms(t0)}):`);
  for (const h of hits) console.log(`    ${h.id.padEnd(10)} score ${h.score.toFixed(4)}  ${JSON.stringify(h.metadata)}`);

  const exact = new VectorDB({ dimension: DIM, metric: 'cosine', index: 'flat' });
  exact.addBatch(items);
  const queries = Array.from({ length: 200 }, (_, i) => embed(i % TOPICS.length, 0.5));
  t0 = process.hrtime.bigint();
  const approx = db.searchBatch(queries, 10);
  const tApprox = ms(t0);
  t0 = process.hrtime.bigint();
  const truth = exact.searchBatch(queries, 10);
  const tExact = ms(t0);
  let hit = 0;
  for (let i = 0; i < queries.length; i++) {
    const want = new Set(truth[i].map((r) => r.id));
    for (const r of approx[i]) hit += want.has(r.id) ? 1 : 0;
  }
  console.log(`\n  200 queries: HNSW ${tApprox}, exact scan ${tExact}, recall@10 ${(hit / (queries.length * 10)).toFixed(3)}`);

  db.delete('doc-0');
  db.add('doc-1', embed(0), { topic: 'billing', edited: true });
  console.log(`  after delete + upsert: size ${db.size}, doc-0 present: ${db.has('doc-0')}, doc-1 metadata ${JSON.stringify(db.get('doc-1').metadata)}`);
  exact.close();

  // Sessions: save encrypted, reopen, change 1%, save again incrementally.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vecvault-demo-'));
  const key = crypto.randomBytes(32);
  const secure = new VectorDB({ dimension: DIM, metric: 'cosine', key, chunkSize: 2000 });
  secure.addBatch(items);
  console.log('');
  const saving = progress('saving');
  saving.start();
  let s = await secure.save(dir, { onProgress: saving });
  saving.end();
  console.log(`  saved generation ${s.generation}: ${s.chunksWritten} encrypted chunks, ${(s.bytesWritten / 1e6).toFixed(1)} MB in ${s.timeMs.toFixed(0)} ms`);
  const info = await VectorDB.inspect(dir);
  console.log(`  inspect (no key needed): ${info.totalVectors} vectors, ${info.chunkCount} chunks, encrypted: ${info.encrypted}, kdf: ${info.kdf}`);

  // Reopen lazily (load()'s default, spelled out): the manifest and the
  // index are read, no vector; searches read the pages they need through a
  // cache bounded here at 4 MiB, well under the data, to show the bound hold.
  const loading = progress('opening');
  loading.start();
  const reopened = await VectorDB.load(dir, { key, lazy: true, cacheSizeMb: 4, onProgress: loading });
  loading.end();
  const ls = reopened.loadStats;
  console.log(
    `  opened lazily (lazy: ${ls.lazy}) in ${ls.loadTimeMs.toFixed(0)} ms: read the manifest and the index only ` +
      `(chunks loaded: ${ls.chunksLoaded} of ${ls.chunkCount}); searches read the vector pages they need`
  );
  const top = (await reopened.searchAsync(query, 1))[0].id;
  console.log(`  same top hit as in memory: ${top === secure.search(query, 1)[0].id}`);
  t0 = process.hrtime.bigint();
  const lazyHits = await reopened.searchBatchAsync(queries, 10);
  const tLazy = ms(t0);
  let lazyHit = 0;
  for (let i = 0; i < queries.length; i++) {
    const want = new Set(truth[i].map((r) => r.id));
    for (const r of lazyHits[i]) lazyHit += want.has(r.id) ? 1 : 0;
  }
  const cs = reopened.cacheStats();
  console.log(`  200 lazy queries: ${tLazy}, recall@10 ${(lazyHit / (queries.length * 10)).toFixed(3)}`);
  console.log(
    `  cache: ${mib(cs.bytes)} of ${mib(cs.capacityBytes)} bound, ${cs.entries} pages; ` +
      `hits ${cs.hits}, misses ${cs.misses}, evictions ${cs.evictions}; ${mib(cs.bytesRead)} read from disk`
  );
  const raw = N * DIM * 4;
  console.log(
    raw > cs.capacityBytes
      ? `  (the bound, cacheSizeMb: 4, is below the ${mib(raw)} of vectors: the cache evicts and never grows past it)`
      : `  (the bound, cacheSizeMb: 4, holds all ${mib(raw)} of vectors here)`
  );
  for (let i = 0; i < N / 100; i++) reopened.add(`doc-${i * 97 % N}`, embed(i % TOPICS.length), { topic: TOPICS[i % TOPICS.length], rev: 2 });
  s = await reopened.save(dir);
  console.log(`  after changing 1%: generation ${s.generation} wrote ${s.chunksWritten} chunk(s), reused ${s.chunksReused}, ${(s.bytesWritten / 1e6).toFixed(2)} MB`);
  try {
    await VectorDB.load(dir, { key: crypto.randomBytes(32) });
  } catch (err) {
    console.log(`  wrong key: ${err.code}`);
  }
  reopened.close();
  secure.close();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
