'use strict';
/*
 * 08.vectordb.errors.js: every error code, for every method that can raise
 * it. Sync methods throw a VecvaultError; async methods return a promise that
 * rejects with one and never throw synchronously. A failed call changes
 * nothing.
 */
const assert = require('node:assert/strict');
const { inspect } = require('node:util');
const h = require('./helpers');

const show = (v) => inspect(v, { breakLength: Infinity, maxArrayLength: 4, maxStringLength: 20, depth: 1 });
const DIM = 4;
const GOOD = [1, 2, 3, 4];

const BAD_IDS = [
  ['a number', 123],
  ['an empty string', ''],
  ['null', null],
  ['undefined', undefined],
  ['an object', { id: 'a' }],
  ['a String object', new String('a')], // eslint-disable-line no-new-wrappers
  ['4097 ASCII bytes', 'x'.repeat(4097)],
  ['4098 UTF-8 bytes in 2049 chars', 'é'.repeat(2049)],
];

/* [label, vector, code]; under cosine (the default) */
const BAD_VECTORS = [
  ['too short', [1, 2, 3], 'ERR_DIMENSION_MISMATCH'],
  ['too long', [1, 2, 3, 4, 5], 'ERR_DIMENSION_MISMATCH'],
  ['empty', [], 'ERR_DIMENSION_MISMATCH'],
  ['Float32Array too short', new Float32Array(3).fill(1), 'ERR_DIMENSION_MISMATCH'],
  ['Float32Array too long', new Float32Array(5).fill(1), 'ERR_DIMENSION_MISMATCH'],
  ['NaN', [1, NaN, 3, 4], 'ERR_INVALID_VECTOR'],
  ['Infinity', [1, 2, Infinity, 4], 'ERR_INVALID_VECTOR'],
  ['-Infinity', [-Infinity, 2, 3, 4], 'ERR_INVALID_VECTOR'],
  ['Float32Array NaN', new Float32Array([1, 2, NaN, 4]), 'ERR_INVALID_VECTOR'],
  ['Float32Array Infinity', new Float32Array([Infinity, 2, 3, 4]), 'ERR_INVALID_VECTOR'],
  ['zero under cosine', [0, 0, 0, 0], 'ERR_INVALID_VECTOR'],
  ['Float32Array zero under cosine', new Float32Array(4), 'ERR_INVALID_VECTOR'],
  ['a numeric string entry', ['1', 2, 3, 4], 'ERR_INVALID_VECTOR'],
  ['a null entry', [1, null, 3, 4], 'ERR_INVALID_VECTOR'],
  ['an object entry', [1, 2, {}, 4], 'ERR_INVALID_VECTOR'],
  ['an undefined entry', [1, 2, 3, undefined], 'ERR_INVALID_VECTOR'],
  ['a hole', [1, , 3, 4], 'ERR_INVALID_VECTOR'], // eslint-disable-line no-sparse-arrays
  ['a value beyond float32 range', [1e39, 1, 1, 1], 'ERR_INVALID_VECTOR'],
  ['a string', 'abcd', 'ERR_INVALID_ARGUMENT'],
  ['a number', 4, 'ERR_INVALID_ARGUMENT'],
  ['null', null, 'ERR_INVALID_ARGUMENT'],
  ['undefined', undefined, 'ERR_INVALID_ARGUMENT'],
  ['a plain object', { 0: 1, 1: 2, 2: 3, 3: 4, length: 4 }, 'ERR_INVALID_ARGUMENT'],
];

function cyclic() {
  const o = { a: 1 };
  o.self = o;
  return o;
}
const BAD_METADATA = [
  ['a cycle', cyclic()],
  ['a BigInt', 10n],
  ['a nested BigInt', { n: 10n }],
  ['a function', () => 1],
  ['a throwing toJSON', { toJSON() { throw new Error('no'); } }],
  ['JSON over 16 MiB', { text: 'x'.repeat(16 * 1024 * 1024 + 16) }],
];

const BAD_K = [0, -1, 1.5, NaN, Infinity, '10', null, undefined, 10n, {}];

/* [label, opts] for search-like calls */
const BAD_SEARCH_OPTS = [
  ['efSearch 0', { efSearch: 0 }],
  ['efSearch -1', { efSearch: -1 }],
  ['efSearch 1.5', { efSearch: 1.5 }],
  ['efSearch "64"', { efSearch: '64' }],
  ['includeVector "yes"', { includeVector: 'yes' }],
  ['includeVector 1', { includeVector: 1 }],
  ['an unknown key', { topK: 5 }],
  ['a string', 'fast'],
  ['a number', 5],
];

describe('08 VectorDB errors', function () {
  let VectorDB;
  let VecvaultError;
  before(function () {
    ({ VectorDB, VecvaultError } = h.vecvault());
  });

  const fresh = (opts = {}) => {
    const db = h.openDb({ dimension: DIM, ...opts });
    db.add('existing', [4, 3, 2, 1], { keep: true });
    return db;
  };
  /* nothing changed by a failed call */
  const unchanged = (db, what) => {
    assert.equal(db.size, 1, `${what}: size changed`);
    assert.deepEqual(db.get('existing').metadata, { keep: true }, `${what}: existing item changed`);
  };

  describe('VecvaultError', function () {
    it('is an Error subclass with a code, a message and a stack', function () {
      const err = h.throwsCode(() => new VectorDB({ dimension: -1 }), 'ERR_INVALID_ARGUMENT');
      assert.ok(err instanceof Error);
      assert.ok(err instanceof VecvaultError);
      assert.equal(typeof err.stack, 'string');
      assert.ok(Object.prototype.toString.call(err) === '[object Error]');
    });

    it('codes are the documented strings', function () {
      const db = fresh();
      const seen = new Set();
      const grab = (fn) => { try { fn(); } catch (e) { seen.add(e.code); } };
      grab(() => db.add(5, GOOD));
      grab(() => db.add('x', [1]));
      grab(() => db.add('x', [NaN, 1, 1, 1]));
      grab(() => db.add('x', GOOD, 1n));
      grab(() => db.search(GOOD, 0));
      db.close();
      grab(() => db.get('x'));
      assert.deepEqual([...seen].sort(), [
        'ERR_CLOSED', 'ERR_DIMENSION_MISMATCH', 'ERR_INVALID_ARGUMENT',
        'ERR_INVALID_ID', 'ERR_INVALID_METADATA', 'ERR_INVALID_VECTOR',
      ]);
    });
  });

  describe('add', function () {
    for (const [label, id] of BAD_IDS) {
      it(`ERR_INVALID_ID for ${label}`, function () {
        const db = fresh();
        h.throwsCode(() => db.add(id, GOOD), 'ERR_INVALID_ID', `add(${label})`);
        unchanged(db, label);
      });
    }
    for (const [label, vector, code] of BAD_VECTORS) {
      it(`${code} for a vector: ${label}`, function () {
        const db = fresh();
        h.throwsCode(() => db.add('new', vector), code, `add vector ${label}`);
        unchanged(db, label);
        assert.equal(db.has('new'), false);
      });
    }
    it('a zero vector is fine under l2 and dot, rejected only under cosine', function () {
      for (const metric of ['l2', 'dot']) {
        const db = h.openDb({ dimension: DIM, metric });
        db.add('z', [0, 0, 0, 0]);
        assert.equal(db.size, 1);
      }
    });
    for (const [label, meta] of BAD_METADATA) {
      it(`ERR_INVALID_METADATA for ${label}`, function () {
        const db = fresh();
        h.throwsCode(() => db.add('new', GOOD, meta), 'ERR_INVALID_METADATA', `add metadata ${label}`);
        unchanged(db, label);
        assert.equal(db.has('new'), false);
      });
    }
    it('a failed upsert leaves the old vector and metadata in place', function () {
      const db = fresh({ metric: 'l2' });
      h.throwsCode(() => db.add('existing', GOOD, cyclic()), 'ERR_INVALID_METADATA');
      h.throwsCode(() => db.add('existing', [1, NaN, 1, 1], { keep: false }), 'ERR_INVALID_VECTOR');
      h.throwsCode(() => db.add('existing', [1, 1], { keep: false }), 'ERR_DIMENSION_MISMATCH');
      unchanged(db, 'failed upsert');
      assert.deepEqual(Array.from(db.get('existing').vector), [4, 3, 2, 1]);
      assert.equal(db.search([4, 3, 2, 1], 1)[0].distance, 0);
    });
  });

  describe('addBatch / addBatchAsync', function () {
    const badBatches = [
      ['not an array: null', null, 'ERR_INVALID_ARGUMENT'],
      ['not an array: an object', { id: 'a', vector: GOOD }, 'ERR_INVALID_ARGUMENT'],
      ['not an array: a string', 'items', 'ERR_INVALID_ARGUMENT'],
      ['not an array: undefined', undefined, 'ERR_INVALID_ARGUMENT'],
      ['an item that is null', [{ id: 'ok', vector: GOOD }, null], 'ERR_INVALID_ARGUMENT'],
      ['an item that is a number', [5], 'ERR_INVALID_ARGUMENT'],
      ['an item with a bad id', [{ id: 'ok', vector: GOOD }, { id: '', vector: GOOD }], 'ERR_INVALID_ID'],
      ['an item with no id', [{ vector: GOOD }], 'ERR_INVALID_ID'],
      ['an item with a numeric id', [{ id: 7, vector: GOOD }], 'ERR_INVALID_ID'],
      ['an item with a short vector', [{ id: 'ok', vector: GOOD }, { id: 'b', vector: [1, 2] }], 'ERR_DIMENSION_MISMATCH'],
      ['an item with a NaN vector', [{ id: 'b', vector: [1, 2, NaN, 4] }], 'ERR_INVALID_VECTOR'],
      ['an item with a zero vector (cosine)', [{ id: 'b', vector: [0, 0, 0, 0] }], 'ERR_INVALID_VECTOR'],
      ['an item with no vector', [{ id: 'b' }], 'ERR_INVALID_ARGUMENT'],
      ['an item with cyclic metadata', [{ id: 'b', vector: GOOD, metadata: cyclic() }], 'ERR_INVALID_METADATA'],
      ['an item with BigInt metadata', [{ id: 'b', vector: GOOD, metadata: 1n }], 'ERR_INVALID_METADATA'],
    ];
    for (const [label, items, code] of badBatches) {
      it(`${code} for ${label} (sync throws, async rejects; nothing inserted)`, async function () {
        const db = fresh();
        h.throwsCode(() => db.addBatch(items), code, `addBatch ${label}`);
        unchanged(db, `addBatch ${label}`);
        await h.rejectsCode(() => db.addBatchAsync(items), code, `addBatchAsync ${label}`);
        unchanged(db, `addBatchAsync ${label}`);
      });
    }

    const badAsyncOpts = [
      ['opts a string', 'fast'],
      ['opts a number', 1],
      ['onProgress not a function', { onProgress: 'log' }],
      ['signal not an AbortSignal', { signal: {} }],
      ['signal a boolean', { signal: true }],
      ['an unknown key', { onprogress() {} }],
    ];
    for (const [label, opts] of badAsyncOpts) {
      it(`addBatchAsync rejects ERR_INVALID_ARGUMENT for ${label}`, async function () {
        const db = fresh();
        await h.rejectsCode(() => db.addBatchAsync([{ id: 'b', vector: GOOD }], opts), 'ERR_INVALID_ARGUMENT',
          `addBatchAsync opts ${show(opts)}`);
        unchanged(db, label);
      });
    }
  });

  describe('get / has / delete', function () {
    for (const method of ['get', 'has', 'delete']) {
      for (const [label, id] of BAD_IDS) {
        it(`${method}: ERR_INVALID_ID for ${label}`, function () {
          const db = fresh();
          h.throwsCode(() => db[method](id), 'ERR_INVALID_ID', `${method}(${label})`);
          unchanged(db, label);
        });
      }
    }
    it('an id of exactly 4096 bytes is valid for get/has/delete', function () {
      const db = fresh();
      const id = 'y'.repeat(4096);
      assert.equal(db.get(id), null);
      assert.equal(db.has(id), false);
      assert.equal(db.delete(id), false);
    });
  });

  describe('search / searchAsync', function () {
    for (const [label, vector, code] of BAD_VECTORS) {
      it(`${code} for a query: ${label}`, async function () {
        const db = fresh();
        h.throwsCode(() => db.search(vector, 3), code, `search ${label}`);
        await h.rejectsCode(() => db.searchAsync(vector, 3), code, `searchAsync ${label}`);
      });
    }
    it('the same query checks on an empty db (validation does not depend on size)', async function () {
      const db = h.openDb({ dimension: DIM });
      h.throwsCode(() => db.search([1, 2], 3), 'ERR_DIMENSION_MISMATCH');
      h.throwsCode(() => db.search([1, NaN, 1, 1], 3), 'ERR_INVALID_VECTOR');
      h.throwsCode(() => db.search(GOOD, 0), 'ERR_INVALID_ARGUMENT');
      await h.rejectsCode(() => db.searchAsync([1, 2], 3), 'ERR_DIMENSION_MISMATCH');
    });
    for (const k of BAD_K) {
      it(`ERR_INVALID_ARGUMENT for k = ${show(k)}`, async function () {
        const db = fresh();
        h.throwsCode(() => db.search(GOOD, k), 'ERR_INVALID_ARGUMENT', `search k ${show(k)}`);
        await h.rejectsCode(() => db.searchAsync(GOOD, k), 'ERR_INVALID_ARGUMENT', `searchAsync k ${show(k)}`);
      });
    }
    for (const [label, opts] of BAD_SEARCH_OPTS) {
      it(`ERR_INVALID_ARGUMENT for opts: ${label}`, async function () {
        const db = fresh();
        h.throwsCode(() => db.search(GOOD, 1, opts), 'ERR_INVALID_ARGUMENT', `search opts ${label}`);
        await h.rejectsCode(() => db.searchAsync(GOOD, 1, opts), 'ERR_INVALID_ARGUMENT', `searchAsync opts ${label}`);
      });
    }
    it('empty opts and undefined opts are fine', async function () {
      const db = fresh();
      assert.equal(db.search(GOOD, 1, {}).length, 1);
      assert.equal(db.search(GOOD, 1, undefined).length, 1);
      assert.equal((await db.searchAsync(GOOD, 1, {})).length, 1);
    });
  });

  describe('searchBatch / searchBatchAsync', function () {
    const badQueries = [
      ['null', null, 'ERR_INVALID_ARGUMENT'],
      ['a string', 'q', 'ERR_INVALID_ARGUMENT'],
      ['a number', 3, 'ERR_INVALID_ARGUMENT'],
      ['an object', { 0: GOOD, length: 1 }, 'ERR_INVALID_ARGUMENT'],
      ['one query too short', [GOOD, [1, 2]], 'ERR_DIMENSION_MISMATCH'],
      ['a flat Float32Array not a multiple of dimension', new Float32Array(DIM * 2 + 1).fill(1), 'ERR_DIMENSION_MISMATCH'],
      ['a NaN in one query', [GOOD, [1, NaN, 1, 1]], 'ERR_INVALID_VECTOR'],
      ['a NaN in a flat Float32Array', new Float32Array([1, 1, 1, 1, 1, NaN, 1, 1]), 'ERR_INVALID_VECTOR'],
      ['a zero query under cosine', [GOOD, [0, 0, 0, 0]], 'ERR_INVALID_VECTOR'],
      ['a non-numeric entry', [GOOD, [1, 'x', 1, 1]], 'ERR_INVALID_VECTOR'],
      ['a null query', [GOOD, null], 'ERR_INVALID_ARGUMENT'],
    ];
    for (const [label, queries, code] of badQueries) {
      it(`${code} for queries: ${label}`, async function () {
        const db = fresh();
        h.throwsCode(() => db.searchBatch(queries, 2), code, `searchBatch ${label}`);
        await h.rejectsCode(() => db.searchBatchAsync(queries, 2), code, `searchBatchAsync ${label}`);
      });
    }
    for (const k of [0, -3, 2.5, '2', undefined]) {
      it(`ERR_INVALID_ARGUMENT for k = ${show(k)}`, async function () {
        const db = fresh();
        h.throwsCode(() => db.searchBatch([GOOD], k), 'ERR_INVALID_ARGUMENT');
        await h.rejectsCode(() => db.searchBatchAsync([GOOD], k), 'ERR_INVALID_ARGUMENT');
      });
    }
    for (const [label, opts] of BAD_SEARCH_OPTS) {
      it(`ERR_INVALID_ARGUMENT for opts: ${label}`, async function () {
        const db = fresh();
        h.throwsCode(() => db.searchBatch([GOOD], 1, opts), 'ERR_INVALID_ARGUMENT');
        await h.rejectsCode(() => db.searchBatchAsync([GOOD], 1, opts), 'ERR_INVALID_ARGUMENT');
      });
    }
  });

  describe('ERR_CLOSED after close()', function () {
    const syncCalls = {
      add: (db) => db.add('x', GOOD),
      addBatch: (db) => db.addBatch([{ id: 'x', vector: GOOD }]),
      get: (db) => db.get('existing'),
      has: (db) => db.has('existing'),
      delete: (db) => db.delete('existing'),
      search: (db) => db.search(GOOD, 1),
      searchBatch: (db) => db.searchBatch([GOOD], 1),
    };
    const asyncCalls = {
      addBatchAsync: (db) => db.addBatchAsync([{ id: 'x', vector: GOOD }]),
      searchAsync: (db) => db.searchAsync(GOOD, 1),
      searchBatchAsync: (db) => db.searchBatchAsync([GOOD], 1),
    };
    for (const [name, call] of Object.entries(syncCalls)) {
      it(`${name} throws ERR_CLOSED`, function () {
        const db = fresh();
        db.close();
        h.throwsCode(() => call(db), 'ERR_CLOSED', name);
      });
    }
    for (const [name, call] of Object.entries(asyncCalls)) {
      it(`${name} rejects ERR_CLOSED (no sync throw)`, async function () {
        const db = fresh();
        db.close();
        await h.rejectsCode(() => call(db), 'ERR_CLOSED', name);
      });
    }
    it('a closed db given invalid arguments still fails with a VecvaultError', function () {
      const db = fresh();
      db.close();
      let err;
      try { db.add('', [1]); } catch (e) { err = e; }
      assert.ok(err instanceof VecvaultError, 'a VecvaultError');
      assert.ok(['ERR_CLOSED', 'ERR_INVALID_ID', 'ERR_DIMENSION_MISMATCH'].includes(err.code), err.code);
    });
  });

  describe('async methods never throw synchronously', function () {
    it('whatever the arguments', async function () {
      const db = fresh();
      const calls = [
        () => db.searchAsync(),
        () => db.searchAsync(null, null, null),
        () => db.searchBatchAsync(),
        () => db.addBatchAsync(),
        () => db.addBatchAsync([{ id: 1 }], { signal: 1 }),
      ];
      for (const call of calls) {
        let p;
        assert.doesNotThrow(() => { p = call(); }, call.toString());
        await assert.rejects(p, (e) => e instanceof VecvaultError, call.toString());
      }
    });
  });
});
