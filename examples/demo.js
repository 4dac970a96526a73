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

async function main() {
  console.log(`vecvault demo: ${N} documents x ${DIM} dimensions, cosine, HNSW (SIMD: ${simd})\n`);
  const db = new VectorDB({ dimension: DIM, metric: 'cosine' });

  const items = [];
  for (let i = 0; i < N; i++) {
    const topic = i % TOPICS.length;
    items.push({ id: `doc-${i}`, vector: embed(topic), metadata: { topic: TOPICS[topic], words: 100 + (i % 900) } });
  }

  let t0 = process.hrtime.bigint();
  await db.addBatchAsync(items, {
    onProgress(done, total) {
      if (process.stdout.isTTY) process.stdout.write(`\r  indexing ${bar(done, total)}`);
    },
  });
  if (process.stdout.isTTY) process.stdout.write('\n');
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
  const showProgress = (label) => (done, total, info) => {
    if (process.stdout.isTTY) process.stdout.write(`\r  ${label} ${bar(done, total)} ${info.phase.padEnd(6)} ${(info.bytes / 1e6).toFixed(1)} MB`);
  };
  let s = await secure.save(dir, { onProgress: showProgress('saving ') });
  if (process.stdout.isTTY) process.stdout.write('\n');
  console.log(`\n  saved generation ${s.generation}: ${s.chunksWritten} encrypted chunks, ${(s.bytesWritten / 1e6).toFixed(1)} MB in ${s.timeMs.toFixed(0)} ms`);
  const info = await VectorDB.inspect(dir);
  console.log(`  inspect (no key needed): ${info.totalVectors} vectors, ${info.chunkCount} chunks, encrypted: ${info.encrypted}, kdf: ${info.kdf}`);
  const reopened = await VectorDB.load(dir, { key, onProgress: showProgress('loading') });
  if (process.stdout.isTTY) process.stdout.write('\n');
  console.log(`  loaded ${reopened.loadStats.totalVectors} vectors in ${reopened.loadStats.loadTimeMs.toFixed(0)} ms; same top hit: ${reopened.search(query, 1)[0].id === secure.search(query, 1)[0].id}`);
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
