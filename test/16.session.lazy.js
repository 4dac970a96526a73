'use strict';
/*
 * 16.session.lazy.js: sessions opened lazily (VectorDB.load's default).
 *
 * Owns: what a lazy load reads (manifest and index only) and what it gives
 * back (every id, vector and metadata bit for bit, on demand); search
 * quality on PQ codes plus re-ranking; the cache's byte bound under
 * concurrent searches and while the bound shrinks mid-search; cacheStats,
 * preload and setCacheSize; mutations after a lazy load and the incremental
 * save that follows; saving a lazy database somewhere else; and damaged or
 * missing chunks found only when a query needs them, which fail that query
 * and leave the database usable. Eager loads are 11.session.save-load.js.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

const DIM = 64;
const KEY = s.keyFor('lazy');

/* A clustered HNSW database of n vectors in chunks of `chunkSize`, saved
 * encrypted; returns what it held. */
async function savedSession({ n = 3000, chunkSize = 250, index = 'hnsw', metric = 'cosine', seal = { key: KEY } } = {}) {
  const dir = s.freshPath('lazy');
  const db = s.newDb({ dimension: DIM, metric, index, chunkSize, hnsw: { efConstruction: 100 }, ...seal });
  const vs = h.clusteredVectors(n, DIM, { clusters: 24, seed: 7 });
  const ids = vs.map((_, i) => `id-${i}`);
  db.addBatch(vs.map((vector, i) => ({ id: ids[i], vector, metadata: i % 3 ? { i, tag: `t${i % 5}` } : undefined })));
  const state = s.capture(db, ids);
  await db.save(dir);
  db.close();
  return { dir, ids, vs, state, n };
}

function queries(nq, seed = 31) {
  return h.clusteredVectors(nq, DIM, { clusters: 24, seed, spread: 0.2 });
}

function exactTop(entries, q, k, metric = 'cosine') {
  return h.bruteForce(entries.map((e) => [e.id, e.vector]), q, k, metric).map((r) => r.id);
}

describe('16 lazy sessions', function () {
  this.timeout(60000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  let base; /* one shared session for the read-only tests */
  before(async function () {
    base = await savedSession();
  });

  describe('opening', function () {
    it('reads the manifest and the index only, then gives back every record on demand', async function () {
      const db = await s.loadDb(base.dir, { key: KEY });
      assert.equal(db.loadStats.lazy, true);
      assert.equal(db.loadStats.chunksLoaded, 0);
      assert.ok(db.loadStats.chunkCount >= base.n / 250, `chunkCount ${db.loadStats.chunkCount}`);
      const c0 = db.cacheStats();
      assert.equal(c0.lazy, true);
      assert.equal(c0.misses, 0);
      assert.equal(c0.bytes, 0);
      assert.equal(c0.capacityBytes, 150 * 1048576);
      assert.equal(db.size, base.n);
      assert.equal(db.has('id-17'), true); /* ids are in memory: no chunk read */
      assert.equal(db.cacheStats().misses, 0);
      s.assertState(db, base.state, base.n, 'lazy db');
      /* Each chunk's page table, then each of its pages, read exactly once, and all of them kept. */
      const c1 = db.cacheStats();
      const reads = db.loadStats.chunkCount + s.chunkPages(base.dir);
      assert.ok(s.chunkPages(base.dir) > db.loadStats.chunkCount, 'chunks of several pages');
      assert.equal(c1.misses, reads, 'every page table and page read exactly once');
      assert.ok(c1.hits > 0 && c1.entries === reads);
      const objects = s.readManifest(base.dir).json.chunks.reduce((n, c) => n + c.bytes, 0);
      assert.equal(c1.bytesRead, objects, 'together, every byte of every chunk once');
    });

    it('lazy: false reads everything, and cacheStats says the database is in memory', async function () {
      const db = await s.loadDb(base.dir, { key: KEY, lazy: false });
      assert.equal(db.loadStats.lazy, false);
      assert.equal(db.loadStats.chunksLoaded, db.loadStats.chunkCount);
      const c = db.cacheStats();
      assert.equal(c.lazy, false);
      assert.equal(c.misses + c.hits + c.bytes, 0);
      s.assertState(db, base.state, base.n, 'eager db');
    });

    it('a wrong key fails the open before any chunk is read', async function () {
      await h.rejectsCode(() => VectorDB.load(base.dir, { key: s.keyFor('other') }), 'ERR_WRONG_KEY');
    });

    it('inspect() lists the chunk ids that preload() takes', async function () {
      const info = await VectorDB.inspect(base.dir);
      assert.equal(info.version, 3);
      assert.equal(info.chunks.length, info.chunkCount);
      assert.equal(info.chunks.reduce((t, c) => t + c.vectors, 0), base.n);
      for (const c of info.chunks) assert.ok(Number.isInteger(c.id) && c.vectors > 0 && c.vectors <= 250 && c.bytes > 0);
    });
  });

  describe('search', function () {
    it('finds the true nearest neighbours about as well as the same session in memory', async function () {
      const db = await s.loadDb(base.dir, { key: KEY });
      const mem = await s.loadDb(base.dir, { key: KEY, lazy: false });
      const entries = base.vs.map((vector, i) => ({ id: base.ids[i], vector }));
      const qs = queries(40);
      const recall = { lazy: 0, wide: 0, few: 0, mem: 0 };
      for (const q of qs) {
        const want = exactTop(entries, q, 10).map((id) => ({ id }));
        recall.lazy += h.recallAtK(db.search(q, 10), want) / qs.length;
        recall.wide += h.recallAtK(db.search(q, 10, { efSearch: 300, rerank: 300 }), want) / qs.length;
        recall.few += h.recallAtK(db.search(q, 10, { rerank: 10 }), want) / qs.length;
        recall.mem += h.recallAtK(mem.search(q, 10), want) / qs.length;
      }
      const what = JSON.stringify(recall);
      /* The default lazy beam is twice the configured one, to make up for the codes. */
      assert.ok(recall.lazy >= 0.9 && recall.lazy >= recall.mem - 0.02, `default lazy search: ${what}`);
      assert.ok(recall.wide >= 0.99, `a wider beam and re-rank: ${what}`);
      assert.ok(recall.few < recall.lazy, `re-ranking fewer candidates costs recall: ${what}`);
    });

    it('returns exact distances and the stored metadata and vectors', async function () {
      const db = await s.loadDb(base.dir, { key: KEY });
      const q = queries(1, 77)[0];
      for (const r of db.search(q, 5, { includeVector: true })) {
        const i = Number(r.id.slice(3));
        h.assertClose(r.distance, h.measure('cosine', q, base.vs[i]).distance, `distance of ${r.id}`, 1e-4);
        assert.deepEqual(r.metadata, base.state.get(r.id).metadata);
        assert.deepEqual(Array.from(r.vector), base.state.get(r.id).vector);
      }
    });

    it('reads a few pages per cold query: at most a page and a table per candidate, fewer as chunks are cluster-ordered', async function () {
      const db = await s.loadDb(base.dir, { key: KEY });
      const qs = queries(20, 5);
      let loads = 0;
      for (const q of qs) {
        db.setCacheSize(1e-6); /* empty */
        db.setCacheSize(150);
        const before = db.cacheStats().misses;
        db.search(q, 10, { rerank: 20 });
        loads += db.cacheStats().misses - before;
      }
      /* Spread at random over the session's P pages and C chunks, 20
       * candidates would need P(1 - (1 - 1/P)^20) pages and as many tables
       * for C chunks; clustered, they share pages and chunks: at least a
       * quarter fewer reads, whatever the page size. */
      const pages = s.chunkPages(base.dir), chunks = db.loadStats.chunkCount;
      const spread = (n) => n * (1 - Math.pow(1 - 1 / n, 20));
      const random = spread(pages) + spread(chunks);
      const mean = loads / qs.length;
      assert.ok(mean <= 0.75 * random, `${mean} pages and tables per cold query (${pages} pages, ${chunks} chunks; at random ${random.toFixed(1)})`);
    });

    it('rerank bounds what a cold search reads; cold, warm and tiny caches give the same results; maxChunkReads is refused', async function () {
      const db = await s.loadDb(base.dir, { key: KEY });
      const qs = queries(15, 6);
      const cold = [];
      for (const rerank of [1, 2, 4, 16]) {
        for (const q of qs) {
          db.setCacheSize(1e-6);
          db.setCacheSize(150);
          const before = db.cacheStats().misses;
          const res = db.search(q, 1, { rerank });
          assert.equal(res.length, 1);
          const read = db.cacheStats().misses - before;
          assert.ok(read >= 2 && read <= 2 * rerank, `rerank ${rerank}: read ${read} pages and tables`);
          if (rerank === 16) cold.push(h.plainResults(res));
        }
      }
      /* Warm: everything cached, nothing read, the same results. */
      await db.preload();
      const before = db.cacheStats().misses;
      qs.forEach((q, i) => assert.deepEqual(h.plainResults(db.search(q, 1, { rerank: 16 })), cold[i], `warm query ${i}`));
      assert.equal(db.cacheStats().misses, before);
      /* A cache of a few kilobytes: the same results again. */
      db.setCacheSize(0.02);
      qs.forEach((q, i) => assert.deepEqual(h.plainResults(db.search(q, 1, { rerank: 16 })), cold[i], `tiny cache, query ${i}`));
      for (const v of [1, 4, Infinity, 0, 'x']) {
        const e = h.throwsCode(() => db.search(qs[0], 10, { maxChunkReads: v }), 'ERR_INVALID_ARGUMENT');
        assert.match(e.message, /maxChunkReads was removed/);
      }
      await h.rejectsCode(() => db.searchAsync(qs[0], 10, { maxChunkReads: 4 }), 'ERR_INVALID_ARGUMENT');
      for (const bad of [0, -1, 1.5]) h.throwsCode(() => db.search(qs[0], 10, { rerank: bad }), 'ERR_INVALID_ARGUMENT');
    });

    it('the flat index scans chunk by chunk and stays exact', async function () {
      const flat = await savedSession({ n: 800, chunkSize: 100, index: 'flat', metric: 'l2' });
      const db = await s.loadDb(flat.dir, { key: KEY, cacheSizeMb: 0.05 });
      assert.equal(db.loadStats.lazy, true);
      const entries = flat.vs.map((vector, i) => ({ id: flat.ids[i], vector }));
      for (const q of queries(5, 9)) {
        const res = db.search(q, 7);
        assert.deepEqual(res.map((r) => r.id), exactTop(entries, q, 7, 'l2'));
      }
      assert.ok(db.cacheStats().bytes <= db.cacheStats().capacityBytes);
    });
  });

  describe('the cache', function () {
    it('never holds more than its bound while many searches run at once', async function () {
      const probe = await s.loadDb(base.dir, { key: KEY });
      probe.get('id-0');
      const chunkBytes = probe.cacheStats().bytes;
      probe.close();
      const mb = (chunkBytes * 2.5) / 1048576; /* room for about two pages */
      const db = await s.loadDb(base.dir, { key: KEY, cacheSizeMb: mb });
      const qs = queries(60, 11);
      /* Results do not depend on what happens to be cached. */
      const ALL = {};
      const ref = qs.map((q) => h.plainResults(db.search(q, 10, ALL)));
      let peak = 0;
      const runs = qs.map(async (q, i) => {
        const res = await db.searchAsync(q, 10, ALL);
        const c = db.cacheStats();
        peak = Math.max(peak, c.bytes);
        assert.ok(c.bytes <= c.capacityBytes, `cached ${c.bytes} > ${c.capacityBytes}`);
        assert.deepEqual(h.plainResults(res), ref[i], `query ${i} under contention`);
      });
      await Promise.all(runs);
      const c = db.cacheStats();
      assert.ok(c.evictions > 0, 'a cache of two pages must evict');
      assert.ok(peak > 0 && c.bytes <= c.capacityBytes);
    });

    it('results stay right when the bound shrinks while searches are running', async function () {
      const db = await s.loadDb(base.dir, { key: KEY });
      const qs = queries(200, 12);
      const ALL = {};
      const ref = qs.map((q) => h.plainResults(db.search(q, 10, ALL)));
      const flat = new Float32Array(qs.length * DIM);
      qs.forEach((q, i) => flat.set(q, i * DIM));
      const pending = db.searchBatchAsync(flat, 10, ALL);
      for (let i = 0; i < 20; i++) {
        db.setCacheSize(i % 2 ? 1e-6 : 0.2);
        await new Promise((r) => setImmediate(r));
      }
      const got = await pending;
      assert.deepEqual(got.map(h.plainResults), ref);
      db.setCacheSize(1e-6);
      assert.equal(db.cacheStats().bytes, 0, 'nothing is pinned once searches are done');
    });

    it('preload() warms chunks by id or as many as fit; setCacheSize() validates', async function () {
      const info = await VectorDB.inspect(base.dir);
      const db = await s.loadDb(base.dir, { key: KEY });
      assert.equal(await db.preload([info.chunks[2].id, info.chunks[5].id]), 2);
      /* Each chunk's page table and pages. */
      const pagesOf = (id) => s.objectPages(base.dir, s.readManifest(base.dir).json.chunks.find((c) => c.seq === id).name);
      assert.equal(db.cacheStats().entries, 2 + pagesOf(info.chunks[2].id) + pagesOf(info.chunks[5].id));
      assert.equal(await db.preload([info.chunks[2].id]), 0, 'already cached');
      await h.rejectsCode(() => db.preload([123456789]), 'ERR_INVALID_ARGUMENT');
      await h.rejectsCode(() => db.preload(['x']), 'ERR_INVALID_ARGUMENT');
      const loaded = await db.preload();
      assert.equal(db.cacheStats().entries, info.chunkCount + s.chunkPages(base.dir), 'everything fits in 150 MiB');
      assert.equal(loaded, info.chunkCount - 2);
      db.setCacheSize(0.1);
      assert.ok(db.cacheStats().bytes <= 0.1 * 1048576);
      for (const bad of [0, -1, NaN, Infinity, '5', null]) h.throwsCode(() => db.setCacheSize(bad), 'ERR_INVALID_ARGUMENT');
      const small = await s.loadDb(base.dir, { key: KEY, cacheSizeMb: 0.2 });
      await small.preload();
      const c = small.cacheStats();
      assert.ok(c.entries >= 1 && c.bytes <= c.capacityBytes && c.evictions === 0, JSON.stringify(c));
    });
  });

  describe('changes after a lazy load', function () {
    it('adds, deletes and upserts work, and the next save rewrites only what they touched', async function () {
      const w = await savedSession({ n: 2000, chunkSize: 200 });
      const db = await s.loadDb(w.dir, { key: KEY });
      const fresh = h.clusteredVectors(50, DIM, { clusters: 24, seed: 99 });
      fresh.forEach((v, i) => db.add(`new-${i}`, v, { fresh: i }));
      for (let i = 0; i < 40; i++) assert.equal(db.delete(`id-${i * 7}`), true);
      const up = h.clusteredVectors(10, DIM, { clusters: 24, seed: 98 });
      up.forEach((v, i) => db.add(`id-${1000 + i * 3}`, v, { upserted: i })); /* never deleted above */
      const all = [...w.ids, ...fresh.map((_, i) => `new-${i}`)];
      const state = s.capture(db, all);
      const size = db.size;
      assert.equal(size, 2000 + 50 - 40);
      /* The new vectors are found by search right away. */
      for (let i = 0; i < 50; i += 10) assert.equal(db.search(fresh[i], 1)[0].id, `new-${i}`);

      const st = await db.save(w.dir);
      assert.equal(st.full, false);
      assert.ok(st.chunksReused >= 8, `reused ${st.chunksReused}`);
      assert.ok(st.chunksWritten <= 3, `wrote ${st.chunksWritten}`);
      s.assertState(db, state, size, 'lazy db after saving');

      const lazy = await s.loadDb(w.dir, { key: KEY });
      s.assertState(lazy, state, size, 'reloaded lazily');
      const eager = await s.loadDb(w.dir, { key: KEY, lazy: false });
      s.assertState(eager, state, size, 'reloaded eagerly');
      assert.equal(lazy.search(fresh[20], 1)[0].id, 'new-20');
    });

    it('heavy deletes make the saved chunks compact: old rows are read through the cache', async function () {
      const w = await savedSession({ n: 1200, chunkSize: 200 });
      const db = await s.loadDb(w.dir, { key: KEY, cacheSizeMb: 0.15 });
      for (let i = 0; i < 1200; i++) if (i % 3 !== 0) db.delete(`id-${i}`);
      /* The next write routes the graph around the deleted (consolidation),
       * which frees their slots: their rows are no longer needed. */
      db.add('late', h.clusteredVectors(1, DIM, { seed: 3 })[0]);
      const state = s.capture(db, [...w.ids, 'late']);
      const st = await db.save(w.dir);
      assert.equal(st.chunksReused, 0, 'every chunk fell under half live');
      const back = await s.loadDb(w.dir, { key: KEY });
      s.assertState(back, state, 401, 'after compaction');
      const c = db.cacheStats();
      assert.ok(c.bytes <= c.capacityBytes);
    });

    it('saving a lazy database to another directory writes it whole, readable without the first', async function () {
      const w = await savedSession({ n: 900, chunkSize: 150 });
      const db = await s.loadDb(w.dir, { key: KEY, cacheSizeMb: 0.1 });
      db.add('extra', h.clusteredVectors(1, DIM, { seed: 4 })[0], { extra: true });
      const state = s.capture(db, [...w.ids, 'extra']);
      const other = s.freshPath('lazy-copy');
      const st = await db.save(other);
      assert.equal(st.full, true);
      fs.rmSync(w.dir, { recursive: true, force: true });
      s.assertState(db, state, 901, 'the lazy db reads the new copy');
      const back = await s.loadDb(other, { key: KEY });
      s.assertState(back, state, 901, 'the copy');
    });
  });

  describe('damage found lazily', function () {
    async function damaged(kind) {
      const w = await savedSession({ n: 1500, chunkSize: 150 });
      const db = await s.loadDb(w.dir, { key: KEY });
      const { chunks } = s.manifestObjects(w.dir);
      const victim = chunks[3];
      const info = await VectorDB.inspect(w.dir);
      if (kind === 'missing') fs.renameSync(victim.path, `${victim.path}.away`);
      else s.flipBit(victim.path, -40);
      return { w, db, victim, seq: info.chunks[3].id };
    }

    for (const [kind, code] of [['missing', 'ERR_CHUNK_MISSING'], ['corrupt', 'ERR_CHUNK_CORRUPT']]) {
      it(`a ${kind} chunk fails the queries that need it with ${code}; the rest keep working`, async function () {
        const { w, db, victim, seq } = await damaged(kind);
        await h.rejectsCode(() => db.preload([seq]), code);
        /* Find the ids that live in the damaged chunk: get() fails for exactly those. */
        let bad = 0;
        let good = 0;
        for (const id of w.ids) {
          try {
            assert.deepEqual(Array.from(db.get(id).vector), w.state.get(id).vector);
            good++;
          } catch (e) {
            h.assertVecvaultError(e, code, `get(${id})`);
            bad++;
          }
        }
        assert.ok(bad > 0 && bad <= 150, `${bad} ids failed`);
        assert.equal(good + bad, w.ids.length);
        /* Searches near a healthy cluster succeed; some search hits the damage. */
        let failed = 0;
        for (const q of queries(40, 3)) {
          try {
            assert.equal(db.search(q, 10, { rerank: 10 }).length, 10);
          } catch (e) {
            h.assertVecvaultError(e, code, 'search');
            failed++;
          }
        }
        assert.ok(failed < 30, `${failed} of 40 searches needed the bad chunk`);
        assert.ok(db.size === w.n && db.has('id-1'));
        /* Nothing bad was cached: once repaired, everything reads again. */
        if (kind === 'missing') {
          fs.renameSync(`${victim.path}.away`, victim.path);
        } else {
          s.flipBit(victim.path, -40);
        }
        s.assertState(db, w.state, w.n, 'after repair');
      });
    }
  });
});
