'use strict';
/*
 * 11.session.save-load.js: VectorDB#save and VectorDB.load round trips.
 *
 * Owns: what a saved session gives back (every id, vector and metadata bit
 * for bit, identical search results), for every metric, index and way of
 * sealing; edge shapes (empty, dimension 1 and 784, chunkSize 1 and larger
 * than the database); incremental saves and long chains of generations;
 * saving a loaded database again; inspect(); which secret opens which
 * session; and that an encrypted session leaks no plaintext to disk.
 * Each session is loaded both eagerly (lazy: false: identical search
 * results) and lazily (the default: the same records, read on demand, and
 * for HNSW search results that may differ where the PQ walk does); what only
 * a lazy database does is 16.session.lazy.js. Damage and wrong inputs are
 * 12.session.errors.js.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

const HEX = (n) => new RegExp(`^[0-9a-f]{${n}}$`);
const KDF = { key: 'raw', passphrase: 'argon2id13', none: null };

/* inspect().chunks agrees with chunkCount and bytes, and every chunk holds 1..chunkSize rows
 * (at least the live vectors in all: deleted HNSW waypoints keep rows too). */
function assertChunkList(info, live, chunkSize) {
  assert.equal(info.chunks.length, info.chunkCount, 'inspect().chunks lists every chunk');
  assert.equal(new Set(info.chunks.map((c) => c.id)).size, info.chunkCount, 'chunk ids are unique');
  for (const c of info.chunks) assert.ok(Number.isInteger(c.id) && c.vectors >= 1 && c.vectors <= chunkSize && c.bytes > 0, JSON.stringify(c));
  assert.ok(info.chunks.reduce((n, c) => n + c.vectors, 0) >= live, 'the chunks hold every live vector');
  assert.ok(info.chunks.reduce((n, c) => n + c.bytes, 0) < info.bytes, 'bytes counts the index too');
}

/*
 * searchAll(db, ...args) of a lazily loaded db against `want`, the same
 * queries on the database that was saved. A flat index scans exact vectors:
 * identical results. HNSW walks the graph on PQ codes and re-ranks with
 * exact vectors, so its hits may differ from the eager ones (which are
 * approximate too); but every hit must be a stored id with its exact
 * distance, score and metadata (the very numbers the eager search gives
 * where both find it), and it must find the true nearest neighbours about
 * as often as the eager search did.
 */
function assertLazySearch(db, want, state, what, args = []) {
  const got = s.searchAll(db, ...args);
  if (db.index === 'flat') {
    assert.deepEqual(got, want, `${what}: flat search results`);
    return;
  }
  const [seed = 5, nq = 12, k = 10] = args;
  const qs = h.randomVectors(nq, db.dimension, seed);
  const stored = [...state].filter(([, rec]) => rec !== null).map(([id, rec]) => [id, rec.vector]);
  let lazyRecall = 0;
  let eagerRecall = 0;
  got.forEach((res, q) => {
    assert.equal(res.length, want[q].length, `${what}: query ${q} returned ${res.length} hits`);
    const eager = new Map(want[q].map((r) => [r.id, r]));
    res.forEach((r, i) => {
      const rec = state.get(r.id);
      assert.ok(rec, `${what}: query ${q} returned ${JSON.stringify(r.id)}, which is not stored`);
      if (i > 0) assert.ok(r.distance >= res[i - 1].distance, `${what}: query ${q} is not sorted`);
      if (eager.has(r.id)) {
        assert.deepEqual(r, eager.get(r.id), `${what}: query ${q}, hit ${JSON.stringify(r.id)}`);
      } else {
        assert.deepEqual(r.metadata, rec.metadata, `${what}: query ${q}, metadata of ${JSON.stringify(r.id)}`);
        h.assertClose(r.distance, h.measure(db.metric, qs[q], rec.vector).distance, `${what}: query ${q}, distance of ${JSON.stringify(r.id)}`);
      }
    });
    const exact = h.bruteForce(stored, qs[q], k, db.metric);
    lazyRecall += h.recallAtK(res, exact) / nq;
    eagerRecall += h.recallAtK(want[q], exact) / nq;
  });
  assert.ok(lazyRecall >= eagerRecall - 0.05, `${what}: recall@${k} ${lazyRecall.toFixed(3)} lazily, ${eagerRecall.toFixed(3)} eagerly`);
}

describe('11 session save/load', function () {
  this.timeout(30000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  describe('round trips', function () {
    for (const seal of Object.keys(s.SEALS)) {
      for (const metric of h.METRICS) {
        for (const index of h.INDEXES) {
          it(`${metric} / ${index} / ${seal}: ids, vectors, metadata and search results survive two generations, loaded eagerly and lazily`, async function () {
            const dir = s.freshPath('rt');
            const load = s.SEALS[seal].load;
            const db = s.newDb({ dimension: 16, metric, index, chunkSize: 50, hnsw: { efConstruction: 64 }, ...s.SEALS[seal].db });
            const ids = s.fill(db, 300, { seed: 11 });
            s.churn(db, ids, { seed: 3 });
            const state1 = s.capture(db, ids);
            const results1 = s.searchAll(db);
            const size1 = db.size;

            const st1 = await db.save(dir);
            assert.equal(st1.generation, 1);
            assert.equal(st1.full, true);
            assert.equal(st1.chunksReused, 0);
            assert.ok(st1.chunksWritten >= Math.ceil(size1 / 50), `chunksWritten ${st1.chunksWritten}`);
            assert.ok(st1.indexSegmentsWritten >= 1);
            assert.ok(st1.bytesWritten > 0 && typeof st1.timeMs === 'number');
            /* A second copy of generation 1, for the lazy database to change and save. */
            const lazyDir = s.freshPath('rt-lazy');
            fs.cpSync(dir, lazyDir, { recursive: true });

            const info = await VectorDB.inspect(dir);
            assert.equal(info.format, 'vecvault-session');
            assert.equal(info.version, 3);
            assert.match(info.sessionId, HEX(32));
            assert.equal(info.generation, 1);
            assert.equal(info.parent, null);
            assert.match(info.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
            assert.deepEqual(
              [info.dimension, info.metric, info.index, info.chunkSize, info.totalVectors, info.encrypted, info.kdf],
              [16, metric, index, 50, size1, seal !== 'none', KDF[seal]]
            );
            assert.deepEqual(info.hnsw, { m: 16, efConstruction: 64, efSearch: 64 });
            assertChunkList(info, size1, 50);
            const indexBytes = s.manifestObjects(dir).index.reduce((n, o) => n + o.bytes, 0);

            /* Eagerly: everything read at open, and the very same search results. */
            const db2 = await s.loadDb(dir, { ...load, lazy: false });
            assert.deepEqual([db2.dimension, db2.metric, db2.index], [16, metric, index]);
            s.assertState(db2, state1, size1, 'generation 1');
            assert.deepEqual(s.searchAll(db2), results1, 'search results after load');
            const ls = db2.loadStats;
            assert.equal(ls.generation, 1);
            assert.equal(ls.totalVectors, size1);
            assert.equal(ls.chunkCount, info.chunkCount);
            assert.equal(ls.chunksLoaded, info.chunkCount);
            assert.equal(ls.lazy, false);
            assert.ok(ls.bytesRead >= info.bytes, `bytesRead ${ls.bytesRead} < object bytes ${info.bytes}`);

            /* Lazily (the default): only the index at open, then the same records on demand. */
            const lazy = await s.loadDb(lazyDir, load);
            const ll = lazy.loadStats;
            assert.deepEqual([lazy.dimension, lazy.metric, lazy.index, lazy.size], [16, metric, index, size1]);
            assert.deepEqual([ll.lazy, ll.generation, ll.totalVectors, ll.chunkCount, ll.chunksLoaded], [true, 1, size1, info.chunkCount, 0]);
            const manifestBytes = fs.statSync(path.join(dir, 'manifest.json')).size;
            assert.ok(ll.bytesRead >= indexBytes && ll.bytesRead <= indexBytes + manifestBytes,
              `lazy bytesRead ${ll.bytesRead}: the index (${indexBytes} B) and manifest (${manifestBytes} B), no chunk`);
            assert.equal(lazy.cacheStats().misses, 0, 'a lazy open reads no chunk');
            assertLazySearch(lazy, results1, state1, 'generation 1, lazily');
            s.assertState(lazy, state1, size1, 'generation 1, lazily');

            /* Change the loaded copy and save it back: an incremental generation 2. */
            s.churn(db2, ids, { seed: 4, every: 5, offset: 1 });
            const more = s.fill(db2, 30, { prefix: 'late-', seed: 12, unicode: false });
            const all = [...ids, ...more];
            const state2 = s.capture(db2, all);
            const results2 = s.searchAll(db2);
            const st2 = await db2.save(dir);
            assert.equal(st2.generation, 2);
            assert.equal(st2.full, false);
            const info2 = await VectorDB.inspect(dir);
            assert.equal(info2.kdf, KDF[seal], 'the session stays sealed the same way');
            assert.match(info2.parent, HEX(64));

            const db3 = await s.loadDb(dir, { ...load, lazy: false });
            s.assertState(db3, state2, db2.size, 'generation 2');
            assert.deepEqual(s.searchAll(db3), results2, 'search results after the second load');
            assert.equal(db3.loadStats.generation, 2);
            const db3lazy = await s.loadDb(dir, load);
            assert.equal(db3lazy.loadStats.lazy, true);
            assertLazySearch(db3lazy, results2, state2, 'generation 2, lazily');
            s.assertState(db3lazy, state2, db2.size, 'generation 2, lazily');

            /* The same changes made to the lazy database, with its cache shrunk to
             * about two chunks, so the save reads the rows it rewrites from disk. */
            lazy.setCacheSize(0.01);
            s.churn(lazy, ids, { seed: 4, every: 5, offset: 1 });
            assert.deepEqual(s.fill(lazy, 30, { prefix: 'late-', seed: 12, unicode: false }), more);
            s.assertState(lazy, state2, db2.size, 'the lazy database after the changes');
            const stLazy = await lazy.save(lazyDir);
            assert.equal(stLazy.generation, 2);
            assert.equal(stLazy.full, false);
            const c = lazy.cacheStats();
            assert.ok(c.bytes <= c.capacityBytes, `cache ${c.bytes} B over its bound ${c.capacityBytes} B`);
            s.assertState(lazy, state2, db2.size, 'the lazy database after its save');
            const back = await s.loadDb(lazyDir, { ...load, lazy: false });
            s.assertState(back, state2, db2.size, 'generation 2 saved by the lazy database');
            if (index === 'flat') assert.deepEqual(s.searchAll(back), results2, 'flat search after the lazy database saved');
          });
        }
      }
    }
  });

  describe('shapes', function () {
    for (const index of h.INDEXES) {
      it(`an empty ${index} database saves and loads, and can grow again`, async function () {
        const dir = s.freshPath('empty');
        const db = s.newDb({ dimension: 8, index, key: s.keyFor('empty') });
        const st = await db.save(dir);
        assert.equal(st.generation, 1);
        assert.equal(st.chunksWritten, 0);
        const info = await VectorDB.inspect(dir);
        assert.equal(info.totalVectors, 0);
        assert.equal(info.chunkCount, 0);
        for (const lazy of [false, true]) {
          const db2 = await s.loadDb(dir, { key: s.keyFor('empty'), lazy });
          assert.equal(db2.size, 0);
          assert.deepEqual(db2.search(new Float32Array(8).fill(0.5), 5), []);
          assert.equal(db2.loadStats.totalVectors, 0);
          db2.close();
        }
        const db2 = await s.loadDb(dir, { key: s.keyFor('empty') });
        const ids = s.fill(db2, 40, { seed: 2 });
        const state = s.capture(db2, ids);
        assert.equal((await db2.save(dir)).generation, 2);
        s.assertState(await s.loadDb(dir, { key: s.keyFor('empty'), lazy: false }), state, 40, 'eagerly');
        s.assertState(await s.loadDb(dir, { key: s.keyFor('empty') }), state, 40, 'lazily');
      });
    }

    for (const dimension of [1, 784]) {
      it(`dimension ${dimension}`, async function () {
        const dir = s.freshPath('dim');
        const db = s.newDb({ dimension, metric: 'l2', chunkSize: 64, hnsw: { efConstruction: 48 }, encryptAtRest: false });
        const ids = s.fill(db, dimension === 1 ? 200 : 300, { seed: dimension });
        const state = s.capture(db, ids);
        const results = s.searchAll(db, 9, 6, 5);
        await db.save(dir);
        const db2 = await s.loadDb(dir, { lazy: false });
        assert.equal(db2.dimension, dimension);
        s.assertState(db2, state, ids.length);
        assert.deepEqual(s.searchAll(db2, 9, 6, 5), results);
        const lazy = await s.loadDb(dir);
        assert.deepEqual([lazy.loadStats.lazy, lazy.dimension], [true, dimension]);
        assertLazySearch(lazy, results, state, 'lazily', [9, 6, 5]);
        s.assertState(lazy, state, ids.length, 'lazily');
      });
    }

    it('chunkSize 1: one chunk per row, and an incremental save rewrites only the changed rows', async function () {
      const dir = s.freshPath('cs1');
      const db = s.newDb({ dimension: 4, chunkSize: 1, key: s.keyFor('cs1') });
      const ids = s.fill(db, 40, { seed: 5 });
      const st = await db.save(dir);
      assert.equal(st.chunksWritten, 40);
      assert.equal((await VectorDB.inspect(dir)).chunkCount, 40);
      db.add(ids[10], [1, 2, 3, 4], { changed: true });
      db.delete(ids[20]);
      const state = s.capture(db, ids);
      const st2 = await db.save(dir);
      assert.equal(st2.chunksWritten, 1, 'only the upserted row');
      /* The old rows of the deleted and the replaced vector may stay as HNSW waypoints. */
      assert.ok(st2.chunksReused >= 38 && st2.chunksReused <= 40, `chunksReused ${st2.chunksReused}`);
      assert.equal((await VectorDB.inspect(dir)).chunkCount, st2.chunksReused + 1);
      s.assertState(await s.loadDb(dir, { key: s.keyFor('cs1'), lazy: false }), state, 39, 'eagerly');
      s.assertState(await s.loadDb(dir, { key: s.keyFor('cs1') }), state, 39, 'lazily');
    });

    it('chunkSize larger than the database: a single chunk', async function () {
      const dir = s.freshPath('csbig');
      const db = s.newDb({ dimension: 4, chunkSize: 10000, index: 'flat', encryptAtRest: false });
      const ids = s.fill(db, 100, { seed: 6 });
      const state = s.capture(db, ids);
      const st = await db.save(dir);
      assert.equal(st.chunksWritten, 1);
      assert.equal(st.indexSegmentsWritten, 1);
      const info = await VectorDB.inspect(dir);
      assert.equal(info.chunkCount, 1);
      assert.equal(info.indexSegmentCount, 1);
      assert.deepEqual(info.chunks.map((c) => c.vectors), [100]);
      s.assertState(await s.loadDb(dir, { lazy: false }), state, 100, 'eagerly');
      s.assertState(await s.loadDb(dir), state, 100, 'lazily');
    });
  });

  describe('incremental saves', function () {
    it('changing 1% reuses the other chunks, writes a fraction of the bytes, and loads right', async function () {
      this.timeout(60000);
      const dir = s.freshPath('incr');
      const key = s.keyFor('incr');
      const db = s.newDb({ dimension: 32, chunkSize: 100, hnsw: { efConstruction: 48 }, key });
      const ids = s.fill(db, 5000, { seed: 21 });
      const full = await db.save(dir);
      assert.equal(full.full, true);
      assert.equal(full.chunksWritten, 50);

      /* 1%: 20 upserts, 15 deletes, 15 new ids, spread over the database. */
      const r = h.rng(77);
      const touched = new Set();
      const pick = () => {
        let i;
        do i = r.int(ids.length); while (touched.has(i));
        touched.add(i);
        return ids[i];
      };
      for (let i = 0; i < 20; i++) db.add(pick(), h.randomVectors(1, 32, 1000 + i)[0], { upserted: i });
      for (let i = 0; i < 15; i++) assert.equal(db.delete(pick()), true);
      const added = [];
      for (let i = 0; i < 15; i++) {
        added.push(`new-${i}`);
        db.add(`new-${i}`, h.randomVectors(1, 32, 2000 + i)[0], { added: i });
      }
      const all = [...ids, ...added];
      const state = s.capture(db, all);
      const results = s.searchAll(db);

      const inc = await db.save(dir);
      assert.equal(inc.generation, 2);
      assert.equal(inc.full, false);
      assert.ok(inc.chunksReused >= 50 - 35, `chunksReused ${inc.chunksReused}`);
      assert.ok(inc.chunksWritten <= 2, `chunksWritten ${inc.chunksWritten}: only the 35 changed rows`);
      assert.ok(inc.bytesWritten * 4 < full.bytesWritten, `incremental ${inc.bytesWritten} B vs full ${full.bytesWritten} B`);

      const db2 = await s.loadDb(dir, { key, lazy: false });
      s.assertState(db2, state, 5000);
      assert.deepEqual(s.searchAll(db2), results);
      const lazy = await s.loadDb(dir, { key });
      assert.equal(lazy.loadStats.lazy, true);
      assertLazySearch(lazy, results, state, 'lazily');
      s.assertState(lazy, state, 5000, 'lazily');

      /* Nothing changed: no object is written, the generation still advances. */
      const none = await db.save(dir);
      assert.equal(none.generation, 3);
      assert.equal(none.chunksWritten, 0);
      assert.equal(none.indexSegmentsWritten, 0);
      assert.equal(none.chunksReused, (await VectorDB.inspect(dir)).chunkCount);
      s.assertState(await s.loadDb(dir, { key, lazy: false }), state, 5000, 'generation 3, eagerly');
      s.assertState(await s.loadDb(dir, { key }), state, 5000, 'generation 3, lazily');
    });

    for (const index of h.INDEXES) {
      it(`${index}: 20 generations with changes in between each load exactly; history and garbage follow FORMAT.md`, async function () {
        this.timeout(60000);
        const dir = s.freshPath('gens');
        const key = s.keyFor('gens');
        const db = s.newDb({ dimension: 8, index, chunkSize: 32, hnsw: { efConstruction: 32 }, threads: 1, key });
        const all = s.fill(db, 300, { seed: 32 });
        const r = h.rng(32);
        let prevManifest = null;
        for (let g = 1; g <= 20; g++) {
          if (g > 1) s.generationChanges(db, g, all, r);
          const state = s.capture(db, all);
          const st = await db.save(dir);
          assert.equal(st.generation, g);
          assert.equal(st.full, g === 1, `generation ${g}: full`);

          const m = s.readManifest(dir);
          assert.equal(m.json.generation, g);
          if (prevManifest === null) assert.equal(m.json.parent, null);
          else assert.equal(m.json.parent, s.blake2b256(prevManifest), `generation ${g}: parent is the hash of the previous manifest.json`);
          prevManifest = m.raw;

          /* manifests/ keeps the newest 3; objects/ holds only what they reference. */
          const hist = fs.readdirSync(path.join(dir, 'manifests')).sort();
          const want = [];
          for (let k = Math.max(1, g - 2); k <= g; k++) want.push(`${String(k).padStart(20, '0')}.json`);
          assert.deepEqual(hist, want, `generation ${g}: manifests/`);
          assert.ok(fs.readFileSync(path.join(dir, 'manifests', want[want.length - 1])).equals(m.raw), 'newest history copy = manifest.json');
          const referenced = new Set();
          for (const f of hist) {
            const j = JSON.parse(fs.readFileSync(path.join(dir, 'manifests', f)).subarray(s.BODY_AT, -2));
            for (const o of [...j.chunks, ...j.index.base, ...j.index.deltas]) referenced.add(o.name);
          }
          assert.deepEqual(fs.readdirSync(path.join(dir, 'objects')).sort(), [...referenced].sort(), `generation ${g}: objects/ after garbage collection`);

          for (const lazy of [false, true]) {
            let loaded;
            try {
              loaded = await s.loadDb(dir, { key, lazy });
            } catch (e) {
              assert.fail(`generation ${g} does not load (lazy: ${lazy}): ${h.describeError(e)}`);
            }
            assert.deepEqual([loaded.loadStats.generation, loaded.loadStats.lazy], [g, lazy]);
            s.assertState(loaded, state, db.size, `generation ${g} (lazy: ${lazy})`);
            loaded.close();
          }
        }
      });
    }

    for (const lazy of [false, true]) {
      it(`a database loaded ${lazy ? 'lazily' : 'eagerly'} saves incrementally into its own dir and fully into another`, async function () {
        const dir = s.freshPath('again');
        const key = s.keyFor('again');
        const db = s.newDb({ dimension: 8, chunkSize: 20, key });
        const ids = s.fill(db, 200, { seed: 41 });
        await db.save(dir);

        const db2 = await s.loadDb(dir, { key, lazy });
        assert.equal(db2.loadStats.lazy, lazy);
        db2.add('extra', [1, 2, 3, 4, 5, 6, 7, 8], { extra: true });
        const all = [...ids, 'extra'];
        const state = s.capture(db2, all);

        const same = await db2.save(dir);
        assert.equal(same.generation, 2);
        assert.equal(same.full, false);
        assert.equal(same.chunksReused, 10);
        assert.equal(same.chunksWritten, 1);

        /* A lazy database writes a full copy through its cache: keep it to about one chunk. */
        if (lazy) db2.setCacheSize(0.005);
        const other = s.freshPath('again2');
        const copy = await db2.save(other);
        assert.equal(copy.generation, 1);
        assert.equal(copy.full, true);
        assert.equal(copy.chunksReused, 0);
        assert.equal(copy.chunksWritten, 11);

        for (const back of [false, true]) {
          s.assertState(await s.loadDb(dir, { key, lazy: back }), state, 201, `own dir (lazy: ${back})`);
          s.assertState(await s.loadDb(other, { key, lazy: back }), state, 201, `other dir (lazy: ${back})`);
        }
        assert.equal((await VectorDB.inspect(other)).kdf, 'raw');
      });
    }
  });

  describe('inspect and load options', function () {
    it('inspect needs no key and tells encrypted from plain sessions', async function () {
      const enc = s.freshPath('insp');
      const plain = s.freshPath('insp');
      const a = s.newDb({ dimension: 3, metric: 'dot', index: 'flat', chunkSize: 7, key: s.keyFor('i') });
      const b = s.newDb({ dimension: 5, metric: 'l2', encryptAtRest: false });
      s.fill(a, 20, { seed: 1 });
      s.fill(b, 10, { seed: 2 });
      await a.save(enc);
      await b.save(plain);
      const ia = await VectorDB.inspect(enc);
      const ib = await VectorDB.inspect(plain);
      assert.deepEqual(
        [ia.version, ia.encrypted, ia.kdf, ia.metric, ia.index, ia.dimension, ia.chunkSize, ia.totalVectors],
        [3, true, 'raw', 'dot', 'flat', 3, 7, 20]
      );
      /* A flat save groups its 20 rows by k-means into ceil(20 / 7) = 3 clusters and cuts
       * each into chunks of at most 7 rows (FORMAT.md section 6): 3 to 5 chunks. */
      assertChunkList(ia, 20, 7);
      assert.equal(ia.chunks.reduce((n, c) => n + c.vectors, 0), 20, 'a first save of a flat index writes each row once');
      assert.ok(ia.chunkCount >= 3 && ia.chunkCount <= 5, `chunkCount ${ia.chunkCount}`);
      assert.deepEqual([ib.version, ib.encrypted, ib.kdf, ib.metric, ib.index, ib.dimension, ib.totalVectors], [3, false, null, 'l2', 'hnsw', 5, 10]);
      assert.deepEqual(ib.chunks.map((c) => c.vectors), [10]);
      const objBytes = s.listFiles(path.join(enc, 'objects')).reduce((n, f) => n + fs.statSync(path.join(enc, 'objects', f)).size, 0);
      assert.equal(ia.bytes, objBytes, 'bytes = size of the listed objects');
      assert.equal(ia.indexSegmentCount, s.manifestObjects(enc).index.length);
    });

    it('lazy: true is the default, lazy: false reads everything; cacheSizeMb bounds the cache', async function () {
      const dir = s.freshPath('lazy');
      const db = s.newDb({ dimension: 4, chunkSize: 4, encryptAtRest: false });
      const ids = s.fill(db, 10);
      const state = s.capture(db, ids);
      await db.save(dir);
      const chunks = (await VectorDB.inspect(dir)).chunkCount;
      for (const [opts, lazy] of [[{}, true], [{ lazy: true }, true], [{ lazy: false }, false]]) {
        const db2 = await s.loadDb(dir, { ...opts, cacheSizeMb: 8, threads: 1 });
        const what = JSON.stringify(opts);
        assert.equal(db2.size, 10);
        assert.equal(db2.loadStats.cacheSizeMb, 8);
        assert.deepEqual([db2.loadStats.lazy, db2.loadStats.chunkCount, db2.loadStats.chunksLoaded], [lazy, chunks, lazy ? 0 : chunks], what);
        const c = db2.cacheStats();
        assert.deepEqual([c.lazy, c.misses, c.bytes], [lazy, 0, 0], what);
        if (lazy) assert.equal(c.capacityBytes, 8 * 1048576, what);
        s.assertState(db2, state, 10, what);
        /* Lazily, each chunk's page table, then each of its pages, once. */
        assert.equal(db2.cacheStats().misses, lazy ? chunks + s.chunkPages(dir) : 0, `${what}: tables and pages read by get()`);
      }
    });
  });

  describe('secrets', function () {
    it('a passphrase session opens only with its passphrase (string or bytes)', async function () {
      const dir = s.freshPath('pw');
      const db = s.newDb({ dimension: 4, passphrase: 'open sesame ✓' });
      const ids = s.fill(db, 30, { seed: 8 });
      const state = s.capture(db, ids);
      await db.save(dir);
      s.assertState(await s.loadDb(dir, { passphrase: 'open sesame ✓' }), state, 30);
      s.assertState(await s.loadDb(dir, { passphrase: new Uint8Array(Buffer.from('open sesame ✓', 'utf8')) }), state, 30);
      await h.rejectsCode(() => VectorDB.load(dir, { passphrase: 'open sesame' }), 'ERR_WRONG_KEY');
      await h.rejectsCode(() => VectorDB.load(dir, { key: s.keyFor('x') }), 'ERR_WRONG_KEY');
      await h.rejectsCode(() => VectorDB.load(dir), 'ERR_KEY_REQUIRED');
    });

    it('a key session opens only with its key', async function () {
      const dir = s.freshPath('key');
      const key = s.keyFor('only');
      const db = s.newDb({ dimension: 4, key });
      const ids = s.fill(db, 30, { seed: 9 });
      const state = s.capture(db, ids);
      await db.save(dir);
      s.assertState(await s.loadDb(dir, { key: Buffer.from(key) }), state, 30);
      const other = new Uint8Array(key);
      other[31] ^= 1;
      await h.rejectsCode(() => VectorDB.load(dir, { key: other }), 'ERR_WRONG_KEY');
      await h.rejectsCode(() => VectorDB.load(dir, { passphrase: 'anything' }), 'ERR_WRONG_KEY');
      await h.rejectsCode(() => VectorDB.load(dir), 'ERR_KEY_REQUIRED');
    });

    /* A distinctive id, metadata string and vector, and whether their bytes reach the disk. */
    const ID = 'zebra-unicorn-Ж-🦄-4f9e2b';
    const META = 'meta-marker-8c1fd0a7';
    const VEC = Float32Array.from([1234.5678, -8765.4321, 3.14159274, 2.71828183, 1111.1111, -2222.2222]);
    async function sessionWith(opts) {
      const dir = s.freshPath('leak');
      const db = s.newDb({ dimension: 6, metric: 'l2', chunkSize: 16, ...opts });
      s.fill(db, 50, { seed: 10 });
      db.add(ID, VEC, { note: META });
      await db.save(dir);
      db.add(`${ID}-2`, VEC.map((x) => x + 1), { note: `${META}-2` });
      await db.save(dir); /* an incremental generation too */
      return s.allBytes(dir);
    }
    const needles = () => ({
      id: Buffer.from(ID, 'utf8'),
      metadata: Buffer.from(META, 'utf8'),
      vector: Buffer.from(VEC.buffer, VEC.byteOffset, 16),
    });

    for (const seal of ['key', 'passphrase']) {
      it(`encrypted (${seal}): no id, metadata or vector bytes on disk`, async function () {
        const bytes = await sessionWith(s.SEALS[seal].db);
        for (const [what, needle] of Object.entries(needles())) {
          assert.equal(bytes.indexOf(needle), -1, `the ${what} is on disk in plaintext`);
        }
      });
    }

    it('unencrypted: the same search finds them (so the encrypted check can fail)', async function () {
      const bytes = await sessionWith({ encryptAtRest: false });
      for (const [what, needle] of Object.entries(needles())) {
        assert.notEqual(bytes.indexOf(needle), -1, `the ${what} should be on disk in plaintext`);
      }
    });
  });
});
