'use strict';
// refresh() of a lazy reader against a fresh lazy open, at 100K x 384 after
// a writer adds 1% more vectors and saves: time, bytes read, and the
// page reads the same 300 queries need afterwards. Needs the lazy bench's
// cached 100K session (`npm run bench -- lazy --sizes 100k` makes it).
//
//   node bench/storage/refresh.js
const { VectorDB } = require('../..');
const crypto = require('crypto'), fs = require('fs'), path = require('path'), os = require('os');
const { execSync } = require('child_process');
(async () => {
  const key = crypto.createHash('sha256').update('vecvault-bench session key v1').digest();
  const src = path.join(os.homedir(), '.cache/vecvault-bench/lazy3/100k-embedding/session-v3');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refresh-'));
  if (!fs.existsSync(src)) throw new Error(`no session at ${src}: run npm run bench -- lazy --sizes 100k first`);
  execSync(`cp -r ${src}/. ${dir}/`);
  const base = new Float32Array(fs.readFileSync(path.join(path.dirname(src), 'base.f32')).buffer.slice(0));
  const dim = 384;
  const reader = await VectorDB.load(dir, { key, cacheSizeMb: 256 });
  for (let i = 0; i < 300; i++) await reader.searchAsync(base.subarray(i * dim, (i + 1) * dim), 10);
  const before = reader.cacheStats();
  const writer = await VectorDB.load(dir, { key, lazy: true });
  for (let i = 0; i < 1000; i++) await writer.addBatchAsync([{ id: `new${i}`, vector: base.subarray(i * dim, (i + 1) * dim) }]);
  const s = await writer.save(dir);
  let t = performance.now();
  const r = await reader.refresh();
  const refreshMs = performance.now() - t;
  const after = reader.cacheStats();
  t = performance.now();
  const fresh = await VectorDB.load(dir, { key, cacheSizeMb: 256 });
  const loadMs = performance.now() - t;
  // Warm queries after refresh: how many page reads do the same 300 queries need?
  const m0 = reader.cacheStats().misses;
  for (let i = 0; i < 300; i++) await reader.searchAsync(base.subarray(i * dim, (i + 1) * dim), 10);
  const m1 = reader.cacheStats().misses;
  const f0 = fresh.cacheStats().misses;
  for (let i = 0; i < 300; i++) await fresh.searchAsync(base.subarray(i * dim, (i + 1) * dim), 10);
  const f1 = fresh.cacheStats().misses;
  console.log(JSON.stringify({ save: { chunksWritten: s.chunksWritten, indexSegmentsWritten: s.indexSegmentsWritten, bytes: s.bytesWritten },
    refresh: r, refreshMs: Math.round(refreshMs), refreshBytesRead: reader.loadStats.bytesRead, freshLoadMs: Math.round(loadMs), freshBytesRead: fresh.loadStats.bytesRead,
    cachedEntriesBefore: before.entries, cachedEntriesAfter: after.entries, missesAfterRefresh: m1 - m0, missesFreshLoad: f1 - f0 }, null, 1));
  reader.close(); writer.close(); fresh.close();
  fs.rmSync(dir, { recursive: true, force: true });
})().catch((e) => { console.error(e); process.exit(1); });
