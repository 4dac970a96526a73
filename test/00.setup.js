'use strict';
/*
 * 00.setup.js: root hooks for the whole mocha run, and checks of the test
 * helpers themselves (the brute-force reference every search test trusts
 * must be right before anything is measured against it).
 *
 * Mocha loads files in name order, so the hooks here apply to every suite.
 */
const assert = require('node:assert/strict');
const h = require('./helpers');

/* Close whatever a test opened through h.openDb, pass or fail. */
afterEach(function () {
  h.closeAll();
});

describe('00 setup', function () {
  it('loads the package and exports VectorDB and VecvaultError', function () {
    const mod = h.vecvault();
    assert.equal(typeof mod.VectorDB, 'function');
    assert.equal(typeof mod.VecvaultError, 'function');
    assert.ok(mod.VecvaultError.prototype instanceof Error, 'VecvaultError extends Error');
  });

  describe('helpers', function () {
    it('seeded random data is deterministic and seed-dependent', function () {
      const a = h.randomVectors(3, 5, 42);
      const b = h.randomVectors(3, 5, 42);
      const c = h.randomVectors(3, 5, 43);
      assert.deepEqual(a.map((v) => Array.from(v)), b.map((v) => Array.from(v)));
      assert.notDeepEqual(a.map((v) => Array.from(v)), c.map((v) => Array.from(v)));
      for (const v of a) for (const x of v) assert.ok(x >= -1 && x < 1);
    });

    it('clustered data has the requested shape', function () {
      const vs = h.clusteredVectors(100, 8, { clusters: 4, seed: 7 });
      assert.equal(vs.length, 100);
      for (const v of vs) {
        assert.ok(v instanceof Float32Array);
        assert.equal(v.length, 8);
        for (const x of v) assert.ok(Number.isFinite(x));
      }
    });

    it('measure() follows the contract for each metric', function () {
      const q = [3, 4];
      const v = [0, 0];
      assert.deepEqual(h.measure('l2', q, v), { distance: 5, score: -5 });
      const d = h.measure('dot', [1, 2, 3], [4, 5, 6]);
      assert.deepEqual(d, { distance: -32, score: 32 });
      const c = h.measure('cosine', [1, 0], [1, 1]);
      h.assertClose(c.score, Math.SQRT1_2, 'cosine score');
      h.assertClose(c.distance, 1 - Math.SQRT1_2, 'cosine distance');
      /* cosine ignores length */
      h.assertClose(h.measure('cosine', [2, 0], [5, 5]).score, Math.SQRT1_2, 'cosine scaled');
    });

    it('bruteForce() returns the k nearest in ascending distance', function () {
      const entries = new Map([['a', [0, 0]], ['b', [1, 0]], ['c', [5, 5]], ['d', [0, 2]]]);
      const res = h.bruteForce(entries, [0.1, 0], 3, 'l2');
      assert.deepEqual(res.map((r) => r.id), ['a', 'b', 'd']);
      assert.equal(h.bruteForce(entries, [0, 0], 10, 'l2').length, 4);
    });

    it('assertMatchesReference() rejects a wrong answer', function () {
      const entries = new Map([['a', [0, 0]], ['b', [1, 0]], ['c', [5, 5]]]);
      const good = h.bruteForce(entries, [0, 0], 2, 'l2');
      h.assertMatchesReference(good, entries, [0, 0], 2, 'l2');
      const wrongOrder = [good[1], good[0]];
      assert.throws(() => h.assertMatchesReference(wrongOrder, entries, [0, 0], 2, 'l2'));
      const wrongId = [good[0], { id: 'c', distance: good[1].distance, score: good[1].score }];
      assert.throws(() => h.assertMatchesReference(wrongId, entries, [0, 0], 2, 'l2'));
      const short = [good[0]];
      assert.throws(() => h.assertMatchesReference(short, entries, [0, 0], 2, 'l2'));
    });

    it('throwsCode()/rejectsCode() fail when nothing is thrown', async function () {
      assert.throws(() => h.throwsCode(() => {}, 'ERR_CLOSED'));
      await assert.rejects(h.rejectsCode(() => Promise.resolve(1), 'ERR_CLOSED'));
      await assert.rejects(h.rejectsCode(() => { throw new Error('sync'); }, 'ERR_CLOSED'));
      /* a plain Error with the right code is still not a VecvaultError */
      const fake = Object.assign(new Error('x'), { code: 'ERR_CLOSED' });
      assert.throws(() => h.throwsCode(() => { throw fake; }, 'ERR_CLOSED'));
    });
  });
});
