'use strict';
// A quick probe of one prepared session, in one process (no peers, no
// fresh processes per row): recall@10 against the cached ground truth, mean
// and median query time, bytes read per query and resident memory.
//
//   node bench/lazy/probe.js --dir SESSION --gt FILE [--dataset embedding|fashion] [--size 100k]
//        [--queries 300] [--cache-mb MB] [--rerank N] [--mem] [--ids FILE]
//
// SESSION is a session the lazy bench prepared (datasets.js: its key, its
// queries); --mem loads it into memory instead; --ids writes each query's
// result ids, one line per query, to compare runs.
const fs = require('fs');
const path = require('path');
const { VectorDB } = require(path.join(__dirname, '..', '..'));
const ds = require('./datasets');

function args(argv) {
  const o = { dataset: 'embedding', size: '100k', queries: 300, cacheMb: 150, rerank: 0, mem: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => argv[++i];
    if (a === '--dir') o.dir = v();
    else if (a === '--gt') o.gt = v();
    else if (a === '--dataset') o.dataset = v();
    else if (a === '--size') o.size = v();
    else if (a === '--queries') o.queries = Number(v());
    else if (a === '--cache-mb') o.cacheMb = Number(v());
    else if (a === '--rerank') o.rerank = Number(v());
    else if (a === '--mem') o.mem = true;
    else if (a === '--ids') o.ids = v();
    else throw new Error(`probe: unknown option ${a}`);
  }
  if (!o.dir || !o.gt) throw new Error('probe: --dir and --gt are required');
  return o;
}

async function main() {
  const o = args(process.argv.slice(2));
  const d = ds.dataset(o.dataset, o.dataset === 'fashion' ? undefined : o.size);
  const q = d.queries(o.queries);
  const dim = q.length / o.queries;
  const buf = fs.readFileSync(o.gt);
  const k = buf.readUInt32LE(12);
  const gt = new Int32Array(buf.buffer.slice(buf.byteOffset + 16, buf.byteOffset + 16 + buf.readUInt32LE(8) * k * 4));
  const t0 = performance.now();
  const db = await VectorDB.load(o.dir, { key: ds.KEY, lazy: !o.mem, cacheSizeMb: o.cacheMb });
  const openMs = performance.now() - t0;
  const before = db.cacheStats().bytesRead;
  const times = [], lines = [];
  let hits = 0;
  for (let i = 0; i < o.queries; i++) {
    const s = performance.now();
    const r = db.search(q.subarray(i * dim, (i + 1) * dim), 10, o.rerank ? { rerank: o.rerank } : undefined);
    times.push(performance.now() - s);
    const want = new Set(Array.from(gt.subarray(i * k, i * k + 10), String));
    for (const h of r) hits += want.has(h.id);
    lines.push(r.map((h) => h.id).join(','));
  }
  times.sort((a, b) => a - b);
  const cs = db.cacheStats();
  console.log(JSON.stringify({
    mode: o.mem ? 'memory' : 'lazy', cacheMb: o.cacheMb, openMs: +openMs.toFixed(0),
    recall: +(hits / (o.queries * 10)).toFixed(4), meanMs: +(times.reduce((a, b) => a + b) / o.queries).toFixed(3),
    p50Ms: +times[o.queries >> 1].toFixed(3), kibPerQuery: +((cs.bytesRead - before) / o.queries / 1024).toFixed(0),
    rssMb: +(process.memoryUsage().rss / 1e6).toFixed(0), cachedMb: +(cs.bytes / 1e6).toFixed(1),
  }));
  if (o.ids) fs.writeFileSync(o.ids, lines.join('\n'));
}

main().catch((e) => { console.error(e); process.exit(1); });
