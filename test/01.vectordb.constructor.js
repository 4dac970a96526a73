'use strict';
/*
 * 01.vectordb.constructor.js: new VectorDB(options): defaults, accepted
 * values at the edges of each range, and rejection (ERR_INVALID_ARGUMENT) of
 * everything else, including unknown keys.
 */
const assert = require('node:assert/strict');
const { inspect } = require('node:util');
const h = require('./helpers');

const show = (v) => inspect(v, { breakLength: Infinity, maxArrayLength: 0 });

const INVALID = 'ERR_INVALID_ARGUMENT';

describe('01 VectorDB constructor', function () {
  let VectorDB;
  before(function () {
    ({ VectorDB } = h.vecvault());
  });

  /* new VectorDB(opts) must throw ERR_INVALID_ARGUMENT. */
  function rejects(opts, what) {
    h.throwsCode(() => {
      const db = new VectorDB(opts);
      db.close();
    }, INVALID, what || show(opts));
  }

  /* new VectorDB(opts) must work and give a usable, empty db. */
  function accepts(opts, what) {
    let db;
    try {
      db = h.openDb(opts);
    } catch (e) {
      assert.fail(`${what || show(opts)} was rejected: ${h.describeError(e)}`);
    }
    assert.equal(db.size, 0);
    return db;
  }

  describe('defaults', function () {
    it('needs only a dimension; metric defaults to cosine', function () {
      const db = accepts({ dimension: 4 });
      assert.equal(db.dimension, 4);
      assert.equal(db.metric, 'cosine');
      assert.equal(db.size, 0);
      assert.equal(db.closed, false);
    });

    it('default metric really behaves as cosine (length-invariant)', function () {
      const db = accepts({ dimension: 2 });
      db.add('a', [10, 0]);
      const [hit] = db.search([0.5, 0.5], 1);
      h.assertClose(hit.score, Math.SQRT1_2, 'score');
      h.assertClose(hit.distance, 1 - Math.SQRT1_2, 'distance');
    });

    it('is usable after construction with the default index', function () {
      const db = accepts({ dimension: 3 });
      db.add('x', [1, 2, 3]);
      assert.equal(db.size, 1);
      assert.equal(db.search([1, 2, 3], 1)[0].id, 'x');
    });
  });

  describe('dimension', function () {
    it('accepts 1 and 65536', function () {
      const one = accepts({ dimension: 1, metric: 'l2' });
      one.add('a', [2]);
      assert.equal(one.get('a').vector[0], 2);
      const big = accepts({ dimension: 65536, index: 'flat' });
      assert.equal(big.dimension, 65536);
      const v = new Float32Array(65536);
      v[65535] = 1;
      big.add('a', v);
      assert.equal(big.search(v, 1)[0].id, 'a');
    });

    for (const bad of [0, -1, 65537, 1.5, NaN, Infinity, '4', null, true, 4n]) {
      it(`rejects dimension ${show(bad)}`, function () {
        rejects({ dimension: bad }, `dimension ${show(bad)}`);
      });
    }

    it('rejects a missing dimension, a missing options object and non-objects', function () {
      rejects({}, '{}');
      rejects(undefined, 'undefined');
      rejects(null, 'null');
      rejects(4, '4');
      rejects('dimension', "'dimension'");
      rejects([4], '[4]');
      h.throwsCode(() => new VectorDB(), INVALID, 'no arguments');
    });
  });

  describe('metric and index', function () {
    for (const metric of h.METRICS) {
      for (const index of h.INDEXES) {
        it(`accepts metric ${metric} with index ${index}`, function () {
          const db = accepts({ dimension: 8, metric, index });
          assert.equal(db.metric, metric);
          assert.equal(db.dimension, 8);
        });
      }
    }

    it("rejects 'ivf' (not yet available) and unknown index names", function () {
      rejects({ dimension: 4, index: 'ivf' });
      rejects({ dimension: 4, index: 'HNSW' });
      rejects({ dimension: 4, index: 'annoy' });
      rejects({ dimension: 4, index: 1 });
    });

    it('rejects unknown metric names and non-strings', function () {
      rejects({ dimension: 4, metric: 'euclidean' });
      rejects({ dimension: 4, metric: 'COSINE' });
      rejects({ dimension: 4, metric: '' });
      rejects({ dimension: 4, metric: 0 });
    });
  });

  describe('hnsw', function () {
    it('accepts m 2 and 128, efConstruction 1, efSearch 1, and the defaults spelled out', function () {
      accepts({ dimension: 4, hnsw: { m: 2 } });
      accepts({ dimension: 4, hnsw: { m: 128 } });
      accepts({ dimension: 4, hnsw: { efConstruction: 1, efSearch: 1 } });
      accepts({ dimension: 4, hnsw: { m: 16, efConstruction: 200, efSearch: 64 } });
      accepts({ dimension: 4, hnsw: {} });
    });

    it('a tiny graph (m 2, ef 1) still finds an exact match among a few vectors', function () {
      const db = accepts({ dimension: 4, metric: 'l2', hnsw: { m: 2, efConstruction: 1, efSearch: 1 } });
      const vs = h.randomVectors(20, 4, 11);
      vs.forEach((v, i) => db.add(`v${i}`, v));
      assert.equal(db.size, 20);
      /* exact top-1 is not promised at ef 1, but the results must be well formed */
      const res = db.search(vs[3], 5);
      assert.equal(res.length, 5);
    });

    for (const [key, bad] of [
      ['m', 1], ['m', 129], ['m', 0], ['m', 16.5], ['m', '16'], ['m', -16],
      ['efConstruction', 0], ['efConstruction', -1], ['efConstruction', 1.5], ['efConstruction', '200'],
      ['efSearch', 0], ['efSearch', -1], ['efSearch', 2.5], ['efSearch', NaN],
    ]) {
      it(`rejects hnsw.${key} = ${show(bad)}`, function () {
        rejects({ dimension: 4, hnsw: { [key]: bad } }, `hnsw.${key} ${show(bad)}`);
      });
    }

    it('rejects a non-object hnsw and unknown hnsw keys', function () {
      rejects({ dimension: 4, hnsw: 16 });
      rejects({ dimension: 4, hnsw: 'fast' });
      rejects({ dimension: 4, hnsw: { M: 16 } });
      rejects({ dimension: 4, hnsw: { ef: 10 } });
    });
  });

  describe('other options', function () {
    it('accepts every documented option at once', function () {
      accepts({
        dimension: 4,
        metric: 'dot',
        index: 'hnsw',
        hnsw: { m: 8, efConstruction: 50, efSearch: 32 },
        chunkSize: 1,
        cacheSizeMb: 0.5,
        encryptAtRest: true,
        key: new Uint8Array(32),
        threads: 1,
      });
      accepts({ dimension: 4, passphrase: 'correct horse battery staple' });
      accepts({ dimension: 4, passphrase: new Uint8Array([1, 2, 3]) });
      accepts({ dimension: 4, key: Buffer.alloc(32, 7), encryptAtRest: true });
      accepts({ dimension: 4, chunkSize: 10000, cacheSizeMb: 150, threads: 2 });
    });

    const cases = [
      ['chunkSize', 0], ['chunkSize', -1], ['chunkSize', 1.5], ['chunkSize', '10'], ['chunkSize', Infinity],
      ['cacheSizeMb', 0], ['cacheSizeMb', -1], ['cacheSizeMb', NaN], ['cacheSizeMb', '150'],
      ['encryptAtRest', 'yes'], ['encryptAtRest', 1], ['encryptAtRest', null],
      ['key', new Uint8Array(16)], ['key', new Uint8Array(33)], ['key', 'x'.repeat(32)], ['key', 32],
      ['passphrase', 1234], ['passphrase', {}],
      ['threads', 0], ['threads', -2], ['threads', 1.5], ['threads', '2'],
    ];
    for (const [key, bad] of cases) {
      const label = show(bad);
      it(`rejects ${key} = ${label}`, function () {
        rejects({ dimension: 4, [key]: bad }, `${key} ${label}`);
      });
    }

    it('rejects unknown top-level keys', function () {
      rejects({ dimension: 4, foo: 1 });
      rejects({ dimension: 4, Dimension: 4 });
      rejects({ dimension: 4, efSearch: 64 });
    });
  });

  describe('instances', function () {
    it('are independent', function () {
      const a = accepts({ dimension: 2, metric: 'l2' });
      const b = accepts({ dimension: 3, metric: 'dot' });
      a.add('x', [1, 2]);
      assert.equal(a.size, 1);
      assert.equal(b.size, 0);
      assert.equal(b.has('x'), false);
      assert.equal(b.dimension, 3);
      assert.equal(b.metric, 'dot');
    });

    it('a constructor error is a VecvaultError with a message', function () {
      const err = h.throwsCode(() => new VectorDB({ dimension: 0 }), INVALID);
      assert.ok(err.stack && err.stack.length > 0);
    });
  });
});
