'use strict';
// The measurements of the storage benchmark (bench/storage.js), each on
// sessions that storage.js has already saved to its targets. Every function
// returns plain numbers for the JSON; nothing here prints a table.

const { now } = require('../measure');

const KIB = 1024;
const MB = 1e6;

function sorted(xs) {
  return Float64Array.from(xs).sort();
}
function quantile(xs, q) {
  if (!xs.length) return null;
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
}
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const median = (xs) => quantile(xs, 0.5);

// A full collection before a timed step, when this process may ask for one:
// garbage of the step before (hundreds of MB of object copies) must not be
// collected inside a measurement of microseconds.
let gcFn = null;
function collectGarbage() {
  if (gcFn === null) {
    try {
      require('v8').setFlagsFromString('--expose-gc');
      gcFn = require('vm').runInNewContext('gc');
    } catch {
      gcFn = () => {};
    }
  }
  gcFn();
}

/*
 * A Storage that forwards every call to `inner` and records how many reads
 * were in flight at once: the engine issues a lazy search's page reads in
 * parallel, and the peak says how much of a store's latency that hides.
 */
function inflightTracker(inner) {
  const t = { now: 0, peak: 0, sum: 0, reads: 0 };
  const out = { description: `tracked:${inner.description || ''}`, stats: t };
  for (const m of ['write', 'delete', 'list', 'readManifest', 'writeManifest']) out[m] = inner[m].bind(inner);
  out.read = async (name, range, options) => {
    t.now++;
    t.reads++;
    t.sum += t.now;
    if (t.now > t.peak) t.peak = t.now;
    try {
      return await inner.read(name, range, options);
    } finally {
      t.now--;
    }
  };
  return out;
}

/* searchAsync over `queries`, one at a time; ms per query and the hit ids. */
async function pass(db, queries, k, perQuery) {
  const ms = [];
  const ids = [];
  for (let i = 0; i < queries.length; i++) {
    const before = perQuery ? perQuery() : null;
    const t = now();
    const hits = await db.searchAsync(queries[i], k);
    ms.push((now() - t) * 1e3);
    ids.push(hits.map((h) => h.id).join(','));
    if (perQuery) perQuery(before);
  }
  return { ms, ids };
}

/*
 * 1. Open and first query: load lazily with the default cache, the first
 * searchAsync (cold), then a warm-up pass over the queries and a timed one.
 * CPU time of this process (engine threads included) per query of that pass.
 */
async function openAndQuery(VectorDB, target, key, queries, k) {
  const t0 = now();
  const db = await VectorDB.load(target, { key, lazy: true });
  const openMs = (now() - t0) * 1e3;
  const t1 = now();
  await db.searchAsync(queries[0], k);
  const firstMs = (now() - t1) * 1e3;
  try {
    await pass(db, queries, k);
    collectGarbage();
    const cpu0 = process.cpuUsage();
    const warm = await pass(db, queries, k);
    const cpu = process.cpuUsage(cpu0);
    return {
      openMs, firstMs, loadStats: db.loadStats,
      warm: { p50: median(warm.ms), p95: quantile(warm.ms, 0.95), mean: mean(warm.ms), cpuMsPerQuery: (cpu.user + cpu.system) / 1e3 / queries.length },
      cache: db.cacheStats(), ids: warm.ids,
    };
  } finally {
    db.close();
  }
}

/*
 * 2. Requests and bytes per lazy query. `counted` is a FaultStorage (no
 * faults) over the target, or null for a directory path, which only
 * cacheStats() can count (misses: one read per page or page table not
 * cached; bytesRead). With `warm`, one pass first fills the cache.
 */
async function perQueryIo(VectorDB, target, counted, key, queries, k, { cacheSizeMb, warm }) {
  const tracked = counted ? inflightTracker(counted) : null;
  const db = await VectorDB.load(tracked || target, { key, lazy: true, ...(cacheSizeMb ? { cacheSizeMb } : {}) });
  try {
    if (warm) await pass(db, queries, k);
    collectGarbage();
    const s0 = db.cacheStats();
    const c0 = counted ? { ...counted.counts } : null;
    if (tracked) Object.assign(tracked.stats, { peak: 0, sum: 0, reads: 0 });
    const cpu0 = process.cpuUsage();
    const r = await pass(db, queries, k);
    const cpu = process.cpuUsage(cpu0);
    const s1 = db.cacheStats();
    const nq = queries.length;
    const out = {
      cacheSizeMb: db.loadStats.cacheSizeMb, warm: !!warm,
      missesPerQuery: (s1.misses - s0.misses) / nq,
      bytesReadKiBPerQuery: (s1.bytesRead - s0.bytesRead) / nq / KIB,
      msMean: mean(r.ms), msP50: median(r.ms), msP95: quantile(r.ms, 0.95),
      cpuMsPerQuery: (cpu.user + cpu.system) / 1e3 / nq,
      ids: r.ids,
    };
    if (counted) {
      out.requestsPerQuery = (counted.counts.read - c0.read) / nq;
      out.kibPerQuery = (counted.counts.readBytes - c0.readBytes) / nq / KIB;
      out.inflightPeak = tracked.stats.peak;
      out.inflightMean = tracked.stats.reads ? tracked.stats.sum / tracked.stats.reads : 0;
    } else {
      out.requestsPerQuery = out.missesPerQuery;
      out.kibPerQuery = out.bytesReadKiBPerQuery;
    }
    return out;
  } finally {
    db.close();
  }
}

/*
 * 4. The round trip alone: getAsync of ids spread over the session on a
 * lazy load with a small cache (one that holds the page tables), one at a
 * time, so nearly every call reads one page through the storage and nothing
 * overlaps it. `counted` (if any) says how many requests that took.
 */
async function getRoundTrips(VectorDB, target, counted, key, ids, cacheSizeMb) {
  const db = await VectorDB.load(counted || target, { key, lazy: true, cacheSizeMb });
  try {
    // Warm-up: every chunk's page table, and the code paths.
    for (const id of ids.slice(0, 20)) await db.getAsync(id);
    collectGarbage();
    const s0 = db.cacheStats();
    const c0 = counted ? counted.counts.read : 0;
    const ms = [];
    const cpu0 = process.cpuUsage();
    for (const id of ids) {
      const t = now();
      const got = await db.getAsync(id);
      ms.push((now() - t) * 1e3);
      if (!got) throw new Error(`getAsync(${id}) found nothing`);
    }
    const cpu = process.cpuUsage(cpu0);
    const s1 = db.cacheStats();
    return {
      calls: ids.length, msMean: mean(ms), msP50: median(ms), cpuMsPerCall: (cpu.user + cpu.system) / 1e3 / ids.length,
      missesPerCall: (s1.misses - s0.misses) / ids.length,
      requestsPerCall: counted ? (counted.counts.read - c0) / ids.length : (s1.misses - s0.misses) / ids.length,
    };
  } finally {
    db.close();
  }
}

/*
 * `reads` calls of `readAt(offset)` (4 KiB at spread offsets in an object of
 * `size` bytes), one at a time, in 5 rounds after a GC: ms per read, and
 * this process's CPU per read as the median of the rounds' (a collection of
 * an earlier step's garbage lands in one round, not in the figure).
 */
async function timedReads(readAt, size, reads) {
  collectGarbage();
  const ms = [];
  const cpuPerRead = [];
  const rounds = 5;
  for (let r = 0, i = 0; r < rounds; r++) {
    const cpu0 = process.cpuUsage();
    const end = Math.round(((r + 1) * reads) / rounds);
    const start = i;
    for (; i < end; i++) {
      const offset = Math.floor((((i * 2654435761) % 1e9) / 1e9) * Math.max(1, size - 4096));
      const t = now();
      await readAt(offset);
      ms.push((now() - t) * 1e3);
    }
    const cpu = process.cpuUsage(cpu0);
    if (i > start) cpuPerRead.push((cpu.user + cpu.system) / 1e3 / (i - start));
  }
  return { reads, msMean: mean(ms), msP50: median(ms), cpuMsPerRead: median(cpuPerRead) };
}

/* A storage read from JavaScript, no engine. */
function directReads(storage, name, size, reads) {
  return timedReads(async (offset) => {
    const got = await storage.read(name, { offset, length: 4096 });
    if (!got || got.length !== 4096) throw new Error(`read ${name} at ${offset} returned ${got ? got.length : null} bytes`);
  }, size, reads);
}

/*
 * The same ranged reads as plain unsigned HTTP GETs with Node's http and a
 * keep-alive agent (s3rver serves anonymous reads): what any JavaScript
 * client pays before signing and the SDK's middleware.
 */
async function rawHttpReads(url, size, reads) {
  const http = require('http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (offset) => new Promise((resolve, reject) => {
    http.get(url, { agent, headers: { Range: `bytes=${offset}-${offset + 4095}` } }, (res) => {
      let n = 0;
      res.on('data', (b) => { n += b.length; });
      res.on('end', () => (res.statusCode === 206 && n === 4096 ? resolve() : reject(new Error(`GET ${url}: ${res.statusCode}, ${n} bytes`))));
    }).on('error', reject);
  });
  try {
    await get(0);
    return await timedReads(get, size, reads);
  } finally {
    agent.destroy();
  }
}

/*
 * 3. One save of `db` into `target` (a FaultStorage, counted, or a path),
 * timed: MB/s over the bytes the save reports written, objects/s over the
 * object writes the store saw (the manifest included).
 */
async function timedSave(db, target, options) {
  const counts0 = typeof target === 'string' ? null : { ...target.counts };
  const t = now();
  const r = await db.save(target, options);
  const sec = now() - t;
  const objects = counts0 ? target.counts.write - counts0.write + target.counts.writeManifest - counts0.writeManifest : r.chunksWritten + r.indexSegmentsWritten + 1;
  return {
    sec, bytes: r.bytesWritten, objects, full: r.full, chunksWritten: r.chunksWritten, chunksReused: r.chunksReused,
    indexSegmentsWritten: r.indexSegmentsWritten, generation: r.generation, mbPerSec: r.bytesWritten / MB / sec, objectsPerSec: objects / sec,
  };
}

module.exports = { openAndQuery, perQueryIo, getRoundTrips, directReads, rawHttpReads, timedSave, inflightTracker, median, quantile, mean };
