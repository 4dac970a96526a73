'use strict';
/*
 * 03.vectordb.get-has-delete.js: point reads and deletes, and the slot reuse
 * that delete enables (size stays right over many delete/add cycles, deleted
 * ids never come back from search).
 */
const assert = require('node:assert/strict');
const h = require('./helpers');

describe('03 VectorDB#get / #has / #delete', function () {
  describe('get', function () {
    it('returns null for an absent id, also on an empty db', function () {
      const db = h.openDb({ dimension: 2 });
      assert.equal(db.get('nope'), null);
      db.add('a', [1, 0]);
      assert.equal(db.get('nope'), null);
      assert.equal(db.get('A'), null);
    });

    it('returns { id, vector, metadata } and nothing else', function () {
      const db = h.openDb({ dimension: 2, metric: 'l2' });
      db.add('a', [1, 2], { k: 'v' });
      const rec = db.get('a');
      assert.deepEqual(Object.keys(rec).sort(), ['id', 'metadata', 'vector']);
      assert.equal(rec.id, 'a');
      assert.ok(rec.vector instanceof Float32Array);
      assert.equal(rec.vector.length, 2);
      assert.deepEqual(rec.metadata, { k: 'v' });
    });

    it('returns a fresh vector each time: writing to it does not change the db', function () {
      const db = h.openDb({ dimension: 2, metric: 'l2', index: 'flat' });
      db.add('a', [1, 2]);
      const first = db.get('a').vector;
      first[0] = 99;
      assert.deepEqual(Array.from(db.get('a').vector), [1, 2]);
      assert.equal(db.search([1, 2], 1)[0].distance, 0);
    });
  });

  describe('has', function () {
    it('tracks add and delete', function () {
      const db = h.openDb({ dimension: 2 });
      assert.equal(db.has('a'), false);
      db.add('a', [1, 0]);
      assert.equal(db.has('a'), true);
      assert.equal(db.has('b'), false);
      db.delete('a');
      assert.equal(db.has('a'), false);
    });
  });

  describe('delete', function () {
    it('returns true once, then false; size, has and get follow', function () {
      const db = h.openDb({ dimension: 2 });
      db.add('a', [1, 0], { x: 1 });
      db.add('b', [0, 1]);
      assert.equal(db.delete('a'), true);
      assert.equal(db.size, 1);
      assert.equal(db.has('a'), false);
      assert.equal(db.get('a'), null);
      assert.equal(db.delete('a'), false);
      assert.equal(db.size, 1);
      assert.equal(db.has('b'), true);
    });

    it('returns false for an id that never existed, without changing size', function () {
      const db = h.openDb({ dimension: 2 });
      assert.equal(db.delete('ghost'), false);
      db.add('a', [1, 0]);
      assert.equal(db.delete('ghost'), false);
      assert.equal(db.size, 1);
    });

    it('an id can be added again after delete, with new vector and metadata', function () {
      const db = h.openDb({ dimension: 2, metric: 'l2' });
      db.add('a', [1, 0], { gen: 1 });
      db.delete('a');
      db.add('a', [0, 7], { gen: 2 });
      assert.equal(db.size, 1);
      assert.deepEqual(Array.from(db.get('a').vector), [0, 7]);
      assert.deepEqual(db.get('a').metadata, { gen: 2 });
      const res = db.search([1, 0], 5);
      assert.equal(res.length, 1);
      h.assertClose(res[0].distance, Math.sqrt(1 + 49), 'distance to the new vector');
    });

    it('deleting everything leaves an empty, usable db', function () {
      for (const index of h.INDEXES) {
        const db = h.openDb({ dimension: 4, metric: 'l2', index });
        const vs = h.randomVectors(300, 4, 9);
        vs.forEach((v, i) => db.add(`v${i}`, v));
        vs.forEach((v, i) => assert.equal(db.delete(`v${i}`), true));
        assert.equal(db.size, 0, index);
        assert.deepEqual(db.search(vs[0], 10), [], index);
        db.add('again', vs[5]);
        assert.deepEqual(db.search(vs[0], 10).map((r) => r.id), ['again'], index);
      }
    });
  });

  describe('delete/add cycles (slot reuse)', function () {
    for (const index of h.INDEXES) {
      it(`${index}: size, has, get and search stay right over 20 cycles`, function () {
        this.timeout(30000);
        const dim = 8;
        const db = h.openDb({ dimension: dim, metric: 'l2', index });
        const r = h.rng(77);
        const live = new Map(); /* id -> vector */
        const dead = new Set();
        let next = 0;
        const addNew = () => {
          const v = new Float32Array(dim);
          for (let j = 0; j < dim; j++) v[j] = r() * 2 - 1;
          const id = `id${next++}`;
          db.add(id, v, { id });
          live.set(id, v);
          dead.delete(id);
        };
        for (let i = 0; i < 400; i++) addNew();
        for (let cycle = 0; cycle < 20; cycle++) {
          /* delete ~half, at random */
          for (const id of [...live.keys()]) {
            if (r() < 0.5) {
              assert.equal(db.delete(id), true, `delete ${id}`);
              live.delete(id);
              dead.add(id);
            }
          }
          /* bring some dead ids back, then add new ones */
          let revived = 0;
          for (const id of dead) {
            if (revived++ >= 20) break;
            const v = new Float32Array(dim).map(() => r() * 2 - 1);
            db.add(id, v, { id });
            live.set(id, v);
            dead.delete(id);
          }
          while (live.size < 400) addNew();
          assert.equal(db.size, live.size, `size after cycle ${cycle}`);
        }
        for (const [id, v] of live) {
          assert.equal(db.has(id), true, id);
          assert.deepEqual(Array.from(db.get(id).vector), Array.from(v), id);
          assert.deepEqual(db.get(id).metadata, { id });
        }
        for (const id of dead) {
          assert.equal(db.has(id), false, id);
          assert.equal(db.get(id), null, id);
        }
        const queries = h.randomVectors(30, dim, 78);
        for (const q of queries) {
          const res = db.search(q, 10, { efSearch: 200 });
          assert.equal(res.length, 10);
          for (const hit of res) assert.ok(live.has(hit.id), `search returned ${hit.id}, which is not live`);
          if (index === 'flat') h.assertMatchesReference(res, live, q, 10, 'l2');
        }
        /* exhaustive: k = size returns every live id once */
        const all = db.search(queries[0], live.size + 50);
        assert.equal(all.length, live.size);
        assert.deepEqual(new Set(all.map((x) => x.id)), new Set(live.keys()));
      });
    }
  });
});
