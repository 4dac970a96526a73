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
 * Damage and wrong inputs are 12.session.errors.js.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

const HEX = (n) => new RegExp(`^[0-9a-f]{${n}}$`);
const KDF = { key: 'raw', passphrase: 'argon2id13', none: null };

describe('11 session save/load', function () {
  this.timeout(30000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  describe('round trips', function () {
    for (const seal of Object.keys(s.SEALS)) {
      for (const metric of h.METRICS) {
        for (const index of h.INDEXES) {
          it(`${metric} / ${index} / ${seal}: ids, vectors, metadata and search results survive two generations`, async function () {
            const dir = s.freshPath('rt');
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

            const info = await VectorDB.inspect(dir);
            assert.equal(info.format, 'vecvault-session');
            assert.equal(info.version, 1);
            assert.match(info.sessionId, HEX(32));
            assert.equal(info.generation, 1);
            assert.equal(info.parent, null);
            assert.match(info.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
            assert.deepEqual(
              [info.dimension, info.metric, info.index, info.chunkSize, info.totalVectors, info.encrypted, info.kdf],
              [16, metric, index, 50, size1, seal !== 'none', KDF[seal]]
            );
            assert.deepEqual(info.hnsw, { m: 16, efConstruction: 64, efSearch: 64 });

            const db2 = await s.loadDb(dir, s.SEALS[seal].load);
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

            const db3 = await s.loadDb(dir, s.SEALS[seal].load);
            s.assertState(db3, state2, db2.size, 'generation 2');
            assert.deepEqual(s.searchAll(db3), results2, 'search results after the second load');
            assert.equal(db3.loadStats.generation, 2);
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
        const db2 = await s.loadDb(dir, { key: s.keyFor('empty') });
        assert.equal(db2.size, 0);
        assert.deepEqual(db2.search(new Float32Array(8).fill(0.5), 5), []);
        assert.equal(db2.loadStats.totalVectors, 0);
        const ids = s.fill(db2, 40, { seed: 2 });
        const state = s.capture(db2, ids);
        assert.equal((await db2.save(dir)).generation, 2);
        s.assertState(await s.loadDb(dir, { key: s.keyFor('empty') }), state, 40);
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
        const db2 = await s.loadDb(dir);
        assert.equal(db2.dimension, dimension);
        s.assertState(db2, state, ids.length);
        assert.deepEqual(s.searchAll(db2, 9, 6, 5), results);
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
      s.assertState(await s.loadDb(dir, { key: s.keyFor('cs1') }), state, 39);
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
      s.assertState(await s.loadDb(dir), state, 100);
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

      const db2 = await s.loadDb(dir, { key });
      s.assertState(db2, state, 5000);
      assert.deepEqual(s.searchAll(db2), results);

      /* Nothing changed: no object is written, the generation still advances. */
      const none = await db.save(dir);
      assert.equal(none.generation, 3);
      assert.equal(none.chunksWritten, 0);
      assert.equal(none.indexSegmentsWritten, 0);
      assert.equal(none.chunksReused, (await VectorDB.inspect(dir)).chunkCount);
      s.assertState(await s.loadDb(dir, { key }), state, 5000);
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

          let loaded;
          try {
            loaded = await s.loadDb(dir, { key });
          } catch (e) {
            assert.fail(`generation ${g} does not load: ${h.describeError(e)}`);
          }
          assert.equal(loaded.loadStats.generation, g);
          s.assertState(loaded, state, db.size, `generation ${g}`);
          loaded.close();
        }
      });
    }

    it('a loaded database saves incrementally into its own dir and fully into another', async function () {
      const dir = s.freshPath('again');
      const key = s.keyFor('again');
      const db = s.newDb({ dimension: 8, chunkSize: 20, key });
      const ids = s.fill(db, 200, { seed: 41 });
      await db.save(dir);

      const db2 = await s.loadDb(dir, { key });
      db2.add('extra', [1, 2, 3, 4, 5, 6, 7, 8], { extra: true });
      const all = [...ids, 'extra'];
      const state = s.capture(db2, all);

      const same = await db2.save(dir);
      assert.equal(same.generation, 2);
      assert.equal(same.full, false);
      assert.equal(same.chunksReused, 10);
      assert.equal(same.chunksWritten, 1);

      const other = s.freshPath('again2');
      const copy = await db2.save(other);
      assert.equal(copy.generation, 1);
      assert.equal(copy.full, true);
      assert.equal(copy.chunksReused, 0);
      assert.equal(copy.chunksWritten, 11);

      s.assertState(await s.loadDb(dir, { key }), state, 201, 'own dir');
      s.assertState(await s.loadDb(other, { key }), state, 201, 'other dir');
      assert.equal((await VectorDB.inspect(other)).kdf, 'raw');
    });
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
        [ia.encrypted, ia.kdf, ia.metric, ia.index, ia.dimension, ia.chunkSize, ia.totalVectors, ia.chunkCount],
        [true, 'raw', 'dot', 'flat', 3, 7, 20, 3]
      );
      assert.deepEqual([ib.encrypted, ib.kdf, ib.metric, ib.index, ib.dimension, ib.totalVectors], [false, null, 'l2', 'hnsw', 5, 10]);
      const objBytes = s.listFiles(path.join(enc, 'objects')).reduce((n, f) => n + fs.statSync(path.join(enc, 'objects', f)).size, 0);
      assert.equal(ia.bytes, objBytes, 'bytes = size of the listed objects');
      assert.equal(ia.indexSegmentCount, s.manifestObjects(enc).index.length);
    });

    it('lazy: true is refused, lazy: false loads', async function () {
      const dir = s.freshPath('lazy');
      const db = s.newDb({ dimension: 4, encryptAtRest: false });
      s.fill(db, 10);
      await db.save(dir);
      await h.rejectsCode(() => VectorDB.load(dir, { lazy: true }), 'ERR_INVALID_ARGUMENT');
      const db2 = await s.loadDb(dir, { lazy: false, cacheSizeMb: 8, threads: 1 });
      assert.equal(db2.size, 10);
      assert.equal(db2.loadStats.cacheSizeMb, 8);
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
