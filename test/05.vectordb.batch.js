'use strict';
/*
 * 05.vectordb.batch.js: addBatch and searchBatch (sync, multi-threaded) and
 * searchBatchAsync: the same answers as the one-at-a-time calls, whatever
 * the thread count and query layout.
 */
const assert = require('node:assert/strict');
const h = require('./helpers');

describe('05 VectorDB batch calls', function () {
  describe('addBatch', function () {
    it('inserts every item with its vector and metadata', function () {
      const db = h.openDb({ dimension: 8, metric: 'l2' });
      const vs = h.randomVectors(500, 8, 1);
      const items = h.makeItems(vs);
      assert.equal(db.addBatch(items), undefined);
      assert.equal(db.size, 500);
      for (const [i, v] of vs.entries()) {
        const rec = db.get(`v${i}`);
        assert.deepEqual(Array.from(rec.vector), Array.from(v));
        assert.deepEqual(rec.metadata, { i, tag: `v-${i % 7}` });
      }
    });

    it('accepts number[] vectors and items without metadata (null)', function () {
      const db = h.openDb({ dimension: 2, metric: 'dot' });
      db.addBatch([{ id: 'a', vector: [1, 2] }, { id: 'b', vector: new Float32Array([3, 4]), metadata: undefined }]);
      assert.equal(db.size, 2);
      assert.equal(db.get('a').metadata, null);
      assert.equal(db.get('b').metadata, null);
      assert.deepEqual(Array.from(db.get('a').vector), [1, 2]);
    });

    it('an empty batch is a no-op', function () {
      const db = h.openDb({ dimension: 2 });
      db.add('a', [1, 0]);
      db.addBatch([]);
      assert.equal(db.size, 1);
    });

    it('upserts ids that already exist (vector and metadata replaced, size unchanged)', function () {
      const db = h.openDb({ dimension: 2, metric: 'l2', index: 'flat' });
      db.addBatch([{ id: 'a', vector: [0, 0], metadata: 1 }, { id: 'b', vector: [1, 1], metadata: 2 }]);
      db.addBatch([{ id: 'a', vector: [9, 9], metadata: 'new' }, { id: 'c', vector: [2, 2] }]);
      assert.equal(db.size, 3);
      assert.deepEqual(Array.from(db.get('a').vector), [9, 9]);
      assert.equal(db.get('a').metadata, 'new');
      assert.equal(db.search([9, 9], 1)[0].id, 'a');
      assert.notEqual(db.search([0, 0], 1)[0].id, 'a');
    });

    it('a later duplicate of an id in the same batch wins', function () {
      const db = h.openDb({ dimension: 2, metric: 'l2' });
      db.addBatch([
        { id: 'dup', vector: [1, 0], metadata: 'first' },
        { id: 'other', vector: [0, 1] },
        { id: 'dup', vector: [5, 5], metadata: 'last' },
      ]);
      assert.equal(db.size, 2);
      assert.deepEqual(Array.from(db.get('dup').vector), [5, 5]);
      assert.equal(db.get('dup').metadata, 'last');
      const all = db.search([1, 0], 10);
      assert.equal(all.filter((r) => r.id === 'dup').length, 1);
    });

    it('normalises under cosine like add does', function () {
      const db = h.openDb({ dimension: 2, metric: 'cosine' });
      db.addBatch([{ id: 'a', vector: [3, 4] }]);
      const v = db.get('a').vector;
      h.assertClose(v[0], 0.6, 'x', 1e-6);
      h.assertClose(v[1], 0.8, 'y', 1e-6);
    });

    for (const index of h.INDEXES) {
      it(`${index}: gives the same db as add() one by one (same search results)`, function () {
        this.timeout(20000);
        const vs = h.randomVectors(1500, 16, 21);
        const one = h.openDb({ dimension: 16, metric: 'cosine', index, threads: 2 });
        const batch = h.openDb({ dimension: 16, metric: 'cosine', index, threads: 2 });
        vs.forEach((v, i) => one.add(`v${i}`, v, { i }));
        batch.addBatch(h.makeItems(vs).map((it, i) => ({ ...it, metadata: { i } })));
        assert.equal(batch.size, one.size);
        const ref = new Map(vs.map((v, i) => [`v${i}`, v]));
        for (const q of h.randomVectors(20, 16, 22)) {
          const a = one.search(q, 10, { efSearch: 200 });
          const b = batch.search(q, 10, { efSearch: 200 });
          if (index === 'flat') {
            assert.deepEqual(b.map((r) => r.id), a.map((r) => r.id));
            h.assertMatchesReference(b, ref, q, 10, 'cosine');
          } else {
            /* parallel inserts build a different graph: compare quality, not identity */
            const truth = h.bruteForce(ref, q, 10, 'cosine');
            assert.ok(h.recallAtK(b, truth) >= 0.8, `batch-built recall ${h.recallAtK(b, truth)}`);
          }
        }
      });
    }
  });

  describe('searchBatch', function () {
    const DIM = 12;
    let vectors;
    let queries;
    before(function () {
      vectors = h.randomVectors(2000, DIM, 31);
      queries = h.randomVectors(64, DIM, 32);
    });

    for (const metric of h.METRICS) {
      for (const index of h.INDEXES) {
        it(`${metric}/${index}: equals search() per query, for arrays and flat Float32Array input`, function () {
          this.timeout(20000);
          const db = h.openDb({ dimension: DIM, metric, index, threads: 2 });
          db.addBatch(h.makeItems(vectors));
          const single = queries.map((q) => h.plainResults(db.search(q, 10)));
          const fromArray = db.searchBatch(queries, 10);
          const fromNumbers = db.searchBatch(queries.map((q) => Array.from(q)), 10);
          const fromFlat = db.searchBatch(h.flatten(queries, DIM), 10);
          for (const res of [fromArray, fromNumbers, fromFlat]) {
            assert.equal(res.length, queries.length);
            assert.deepEqual(res.map(h.plainResults), single);
          }
          if (index === 'flat') {
            const ref = new Map(vectors.map((v, i) => [`v${i}`, v]));
            fromFlat.forEach((r, i) => h.assertMatchesReference(r, ref, queries[i], 10, metric, `query ${i}`));
          }
        });
      }
    }

    it('threads: 1 and threads: 2 give the same results', function () {
      this.timeout(20000);
      const a = h.openDb({ dimension: DIM, metric: 'l2', index: 'flat', threads: 1 });
      const b = h.openDb({ dimension: DIM, metric: 'l2', index: 'flat', threads: 2 });
      a.addBatch(h.makeItems(vectors));
      b.addBatch(h.makeItems(vectors));
      assert.deepEqual(b.searchBatch(queries, 5).map(h.plainResults), a.searchBatch(queries, 5).map(h.plainResults));
    });

    it('passes efSearch and includeVector through', function () {
      const db = h.openDb({ dimension: DIM, metric: 'l2', index: 'hnsw' });
      db.addBatch(h.makeItems(vectors.slice(0, 500)));
      const res = db.searchBatch(queries.slice(0, 4), 3, { efSearch: 100, includeVector: true });
      assert.equal(res.length, 4);
      for (const list of res) {
        assert.equal(list.length, 3);
        for (const r of list) {
          assert.ok(r.vector instanceof Float32Array);
          assert.deepEqual(Array.from(r.vector), Array.from(db.get(r.id).vector));
        }
      }
      for (const list of db.searchBatch(queries.slice(0, 2), 3)) {
        for (const r of list) assert.equal(r.vector, undefined);
      }
    });

    it('no queries (empty array or empty Float32Array) gives []', function () {
      const db = h.openDb({ dimension: DIM });
      db.addBatch(h.makeItems(vectors.slice(0, 10)));
      assert.deepEqual(db.searchBatch([], 5), []);
      assert.deepEqual(db.searchBatch(new Float32Array(0), 5), []);
    });

    it('on an empty db, one [] per query; k > size gives size results per query', function () {
      const db = h.openDb({ dimension: DIM, metric: 'l2' });
      assert.deepEqual(db.searchBatch(queries.slice(0, 3), 5), [[], [], []]);
      db.addBatch(h.makeItems(vectors.slice(0, 4)));
      for (const list of db.searchBatch(queries.slice(0, 3), 50)) assert.equal(list.length, 4);
    });

    it('a flat Float32Array view with an offset is read from the view', function () {
      const db = h.openDb({ dimension: 2, metric: 'l2', index: 'flat' });
      db.add('a', [0, 0]);
      db.add('b', [10, 10]);
      const buf = new Float32Array([10, 10, 0, 0, 10, 10]);
      const res = db.searchBatch(buf.subarray(2), 1);
      assert.deepEqual(res.map((l) => l[0].id), ['a', 'b']);
    });
  });

  describe('searchBatchAsync', function () {
    it('resolves to what searchBatch returns', async function () {
      this.timeout(20000);
      const db = h.openDb({ dimension: 16, metric: 'cosine', index: 'hnsw' });
      db.addBatch(h.makeItems(h.randomVectors(2000, 16, 41)));
      const queries = h.randomVectors(50, 16, 42);
      const p = db.searchBatchAsync(queries, 10);
      assert.ok(p instanceof Promise);
      const res = await p;
      assert.deepEqual(res.map(h.plainResults), db.searchBatch(queries, 10).map(h.plainResults));
      const withVectors = await db.searchBatchAsync(h.flatten(queries, 16), 10, { includeVector: true });
      assert.deepEqual(withVectors.map(h.plainResults),
        db.searchBatch(queries, 10, { includeVector: true }).map(h.plainResults));
      assert.ok(withVectors[0][0].vector instanceof Float32Array);
      assert.deepEqual(await db.searchBatchAsync([], 10), []);
    });
  });
});
