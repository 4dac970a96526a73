'use strict';
/*
 * 04.vectordb.search.js: db.search(query, k, opts).
 *
 * Flat is exact, so it is compared with brute force for every metric,
 * distances and scores included. HNSW is approximate, so it is held to a
 * recall bar on clustered data, and to the hard rules that hold for both:
 * exactly min(k, size) results, sorted, no deleted ids.
 */
const assert = require('node:assert/strict');
const h = require('./helpers');

describe('04 VectorDB#search', function () {
  describe('hand-computed distances and scores', function () {
    it('l2: distance is the Euclidean distance (not squared), score = -distance', function () {
      const db = h.openDb({ dimension: 2, metric: 'l2', index: 'flat' });
      db.add('origin', [0, 0]);
      db.add('far', [6, 8]);
      const res = db.search([3, 4], 2);
      assert.deepEqual(res.map((r) => r.id).sort(), ['far', 'origin']);
      for (const r of res) {
        h.assertClose(r.distance, 5, `${r.id} distance`);
        h.assertClose(r.score, -5, `${r.id} score`);
      }
      const [top] = db.search([0, 1], 1);
      assert.equal(top.id, 'origin');
      h.assertClose(top.distance, 1, 'distance 1');
    });

    it('dot: distance = -dot, score = dot', function () {
      const db = h.openDb({ dimension: 3, metric: 'dot', index: 'flat' });
      db.add('a', [4, 5, 6]);
      db.add('b', [1, 0, 0]);
      const res = db.search([1, 2, 3], 2);
      assert.equal(res[0].id, 'a');
      h.assertClose(res[0].distance, -32, 'a distance');
      h.assertClose(res[0].score, 32, 'a score');
      assert.equal(res[1].id, 'b');
      h.assertClose(res[1].distance, -1, 'b distance');
      h.assertClose(res[1].score, 1, 'b score');
    });

    it('cosine: distance = 1 - cos, score = cos, independent of length', function () {
      const db = h.openDb({ dimension: 2, metric: 'cosine', index: 'flat' });
      db.add('diag', [10, 10]);
      db.add('opposite', [-3, 0]);
      db.add('same', [0.001, 0]);
      const res = db.search([7, 0], 3);
      assert.deepEqual(res.map((r) => r.id), ['same', 'diag', 'opposite']);
      h.assertClose(res[0].distance, 0, 'same distance');
      h.assertClose(res[0].score, 1, 'same score');
      h.assertClose(res[1].distance, 1 - Math.SQRT1_2, 'diag distance');
      h.assertClose(res[1].score, Math.SQRT1_2, 'diag score');
      h.assertClose(res[2].distance, 2, 'opposite distance');
      h.assertClose(res[2].score, -1, 'opposite score');
    });

    for (const index of h.INDEXES) {
      it(`${index}: the same numbers for every metric`, function () {
        for (const metric of h.METRICS) {
          const db = h.openDb({ dimension: 2, metric, index });
          db.add('p', [3, 4]);
          const [r] = db.search([1, 2], 1);
          const want = h.measure(metric, [1, 2], [3, 4]);
          h.assertClose(r.distance, want.distance, `${metric} distance`);
          h.assertClose(r.score, want.score, `${metric} score`);
        }
      });
    }
  });

  describe('flat is exact against brute force', function () {
    for (const metric of h.METRICS) {
      it(`${metric}: 400 vectors, 25 queries, k 1/10/50`, function () {
        const dim = 16;
        const db = h.openDb({ dimension: dim, metric, index: 'flat' });
        const vs = h.randomVectors(400, dim, 100);
        const ref = new Map();
        vs.forEach((v, i) => {
          db.add(`v${i}`, v);
          ref.set(`v${i}`, v);
        });
        const queries = h.randomVectors(25, dim, 101);
        for (const [qi, q] of queries.entries()) {
          for (const k of [1, 10, 50]) {
            h.assertMatchesReference(db.search(q, k), ref, q, k, metric, `query ${qi} k ${k}`);
          }
        }
      });
    }

    it('a number[] query gives the same results as the Float32Array', function () {
      const db = h.openDb({ dimension: 8, metric: 'l2', index: 'flat' });
      h.randomVectors(100, 8, 5).forEach((v, i) => db.add(`v${i}`, v));
      const q = h.randomVectors(1, 8, 6)[0];
      assert.deepEqual(h.plainResults(db.search(Array.from(q), 10)), h.plainResults(db.search(q, 10)));
    });

    it('after deletes, matches brute force over the live vectors', function () {
      for (const metric of h.METRICS) {
        const db = h.openDb({ dimension: 8, metric, index: 'flat' });
        const vs = h.randomVectors(300, 8, 55);
        const ref = new Map();
        vs.forEach((v, i) => {
          db.add(`v${i}`, v);
          ref.set(`v${i}`, v);
        });
        for (let i = 0; i < 300; i += 3) {
          db.delete(`v${i}`);
          ref.delete(`v${i}`);
        }
        for (const q of h.randomVectors(10, 8, 56)) {
          h.assertMatchesReference(db.search(q, 20), ref, q, 20, metric, metric);
        }
      }
    });
  });

  describe('results', function () {
    for (const index of h.INDEXES) {
      it(`${index}: carry metadata (null when none) as fresh copies`, function () {
        const db = h.openDb({ dimension: 2, metric: 'l2', index });
        db.add('a', [0, 0], { name: 'a', tags: [1] });
        db.add('b', [1, 0]);
        const res = db.search([0, 0], 2);
        assert.deepEqual(res[0].metadata, { name: 'a', tags: [1] });
        assert.equal(res[1].metadata, null);
        res[0].metadata.tags.push(2);
        assert.deepEqual(db.search([0, 0], 1)[0].metadata, { name: 'a', tags: [1] });
      });

      it(`${index}: includeVector adds the stored vector; without it there is none`, function () {
        const db = h.openDb({ dimension: 3, metric: 'cosine', index });
        db.add('a', [0, 3, 4]);
        db.add('b', [1, 0, 0]);
        const plain = db.search([0, 1, 1], 2);
        for (const r of plain) assert.equal(r.vector, undefined, 'no vector by default');
        const off = db.search([0, 1, 1], 2, { includeVector: false });
        for (const r of off) assert.equal(r.vector, undefined, 'no vector with includeVector: false');
        const withV = db.search([0, 1, 1], 2, { includeVector: true });
        assert.equal(withV[0].id, 'a');
        assert.ok(withV[0].vector instanceof Float32Array);
        const stored = db.get('a').vector;
        assert.deepEqual(Array.from(withV[0].vector), Array.from(stored));
        h.assertClose(withV[0].vector[1], 0.6, 'normalised', 1e-6);
        assert.deepEqual(Array.from(withV[1].vector), Array.from(db.get('b').vector));
      });

      it(`${index}: k larger than size returns size results; k = 1 returns one`, function () {
        const db = h.openDb({ dimension: 4, metric: 'l2', index });
        const vs = h.randomVectors(7, 4, 8);
        vs.forEach((v, i) => db.add(`v${i}`, v));
        const res = db.search(vs[0], 100);
        assert.equal(res.length, 7);
        assert.deepEqual(new Set(res.map((r) => r.id)).size, 7);
        assert.equal(res[0].id, 'v0');
        assert.equal(db.search(vs[0], 1).length, 1);
        assert.equal(db.search(vs[0], 7).length, 7);
      });

      it(`${index}: an empty db returns [] for every metric`, function () {
        for (const metric of h.METRICS) {
          const db = h.openDb({ dimension: 4, metric, index });
          assert.deepEqual(db.search([1, 2, 3, 4], 10), [], metric);
          db.add('a', [1, 1, 1, 1]);
          db.delete('a');
          assert.deepEqual(db.search([1, 2, 3, 4], 10), [], `${metric} after delete`);
        }
      });
    }

    it('hnsw: efSearch in opts is accepted and never lowers result count', function () {
      const db = h.openDb({ dimension: 8, metric: 'l2', index: 'hnsw', hnsw: { efSearch: 16 } });
      h.randomVectors(500, 8, 12).forEach((v, i) => db.add(`v${i}`, v));
      const q = h.randomVectors(1, 8, 13)[0];
      for (const efSearch of [1, 10, 64, 400]) {
        const res = db.search(q, 20, { efSearch });
        assert.equal(res.length, 20, `efSearch ${efSearch}`);
      }
    });
  });

  describe('hnsw recall', function () {
    const N = 5000;
    const DIM = 32;
    const K = 10;
    const NQ = 100;

    for (const [metric, build] of [['cosine', 'addBatch'], ['l2', 'add']]) {
      it(`${metric}: recall@10 >= 0.95 on ${N} clustered ${DIM}-D vectors (efSearch 64 and 128, built with ${build})`, function () {
        this.timeout(60000);
        /* overlapping clusters: hnswlib (M 16, efC 200) gets ~0.80 at ef 10 and ~0.997 at ef 64 here */
        const data = h.clusteredVectors(N + NQ, DIM, { clusters: 20, spread: 1.5, seed: 2024 });
        const vectors = data.slice(0, N);
        const queries = data.slice(N);
        const db = h.openDb({ dimension: DIM, metric, index: 'hnsw' });
        if (build === 'addBatch') db.addBatch(h.makeItems(vectors, 'v', false));
        else vectors.forEach((v, i) => db.add(`v${i}`, v));
        assert.equal(db.size, N);
        const ref = new Map(vectors.map((v, i) => [`v${i}`, v]));
        const truth = queries.map((q) => h.bruteForce(ref, q, K, metric));
        for (const efSearch of [64, 128]) {
          let sum = 0;
          queries.forEach((q, i) => {
            const res = db.search(q, K, { efSearch });
            assert.equal(res.length, K);
            for (let j = 1; j < res.length; j++) assert.ok(res[j].distance >= res[j - 1].distance, 'sorted');
            for (const r of res) {
              h.assertClose(r.distance, h.measure(metric, q, ref.get(r.id)).distance, `distance of ${r.id}`);
            }
            sum += h.recallAtK(res, truth[i]);
          });
          const recall = sum / queries.length;
          assert.ok(recall >= 0.95, `${metric} recall@${K} at efSearch ${efSearch} is ${recall.toFixed(3)}`);
        }
        /* the default efSearch (64) without opts */
        let sum = 0;
        queries.forEach((q, i) => { sum += h.recallAtK(db.search(q, K), truth[i]); });
        assert.ok(sum / queries.length >= 0.95, `default efSearch recall ${(sum / queries.length).toFixed(3)}`);
      });
    }

    it('every stored vector finds itself as top-1', function () {
      this.timeout(30000);
      const vs = h.clusteredVectors(2000, 16, { clusters: 20, seed: 3 });
      const db = h.openDb({ dimension: 16, metric: 'l2', index: 'hnsw' });
      db.addBatch(h.makeItems(vs, 'v', false));
      let self = 0;
      vs.forEach((v, i) => {
        const [top] = db.search(v, 1, { efSearch: 100 });
        if (top.id === `v${i}` && top.distance === 0) self++;
      });
      assert.ok(self / vs.length >= 0.99, `self top-1 rate ${self / vs.length}`);
    });
  });

  describe('exactly k results after heavy deletes', function () {
    for (const index of h.INDEXES) {
      it(`${index}: 95% deleted, queries aimed at the deleted regions`, function () {
        this.timeout(30000);
        const dim = 16;
        const vs = h.clusteredVectors(3000, dim, { clusters: 30, spread: 0.2, seed: 31 });
        const db = h.openDb({ dimension: dim, metric: 'l2', index });
        db.addBatch(h.makeItems(vs, 'v', false));
        const live = new Map();
        vs.forEach((v, i) => {
          if (i % 20 === 0) live.set(`v${i}`, v);
          else assert.equal(db.delete(`v${i}`), true);
        });
        assert.equal(db.size, live.size);
        assert.equal(live.size, 150);
        for (let i = 1; i < 3000; i += 97) {
          const res = db.search(vs[i], 10);
          assert.equal(res.length, 10, `query near deleted v${i}`);
          for (const r of res) assert.ok(live.has(r.id), `deleted ${r.id} returned`);
          if (index === 'flat') h.assertMatchesReference(res, live, vs[i], 10, 'l2');
        }
        /* fewer live than k: all of them, once each */
        for (const id of [...live.keys()].slice(5)) db.delete(id);
        const keep = [...live.keys()].slice(0, 5);
        const res = db.search(vs[1], 10);
        assert.deepEqual(res.map((r) => r.id).sort(), keep.sort());
      });
    }
  });

  it('search does not modify the query array', function () {
    const db = h.openDb({ dimension: 3, metric: 'cosine' });
    db.add('a', [1, 2, 3]);
    const q = new Float32Array([3, 0, 4]);
    const arr = [3, 0, 4];
    db.search(q, 1);
    db.search(arr, 1);
    assert.deepEqual(Array.from(q), [3, 0, 4]);
    assert.deepEqual(arr, [3, 0, 4]);
  });
});
