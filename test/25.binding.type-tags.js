'use strict';
/*
 * 25.binding.type-tags.js: the native layer refuses objects it did not make.
 *
 * Owns: every NativeDB method called with a `this` that is not one of this
 * addon's NativeDB objects (a plain object, the prototype, an object whose
 * prototype is a real one, a function, a loaded-session external, and a
 * NativeDB made by another loaded copy of the addon) throws a VecvaultError
 * with ERR_INVALID_ARGUMENT instead of reading the object as its own; the
 * NativeDB constructor refuses a loaded-session external that another copy
 * of the addon made. The real databases keep working afterwards.
 *
 * Another copy of the addon (the same file under another path) stands in
 * for a foreign addon: its objects carry a native pointer under the same
 * N-API wrap key, which is exactly what must never be dereferenced.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');
const s = require('./helpers/session');

const native = require('../lib/native');
const { VecvaultError } = h.vecvault();

const DIM = 4;
const METHODS = Object.getOwnPropertyNames(native.NativeDB.prototype).filter((n) => n !== 'constructor');
const CACHE_BYTES = 1 << 20;

/* new NativeDB(dimension, metric, index, m, efConstruction, efSearch, threads, chunkSize), flat l2 */
function nativeDb(mod) {
  return new mod.NativeDB(DIM, 0, 1, 16, 100, 50, 1, 100);
}

/* A second, independent copy of the addon: same code, another image. */
function otherCopy() {
  const file = path.join(__dirname, '..', 'build', 'Release', 'vecvault.node');
  const copy = path.join(s.tmpDir('addon'), 'vecvault-copy.node');
  fs.copyFileSync(file, copy);
  const mod = require(copy);
  assert.notEqual(mod, native, 'the copy loaded as the same module');
  assert.notEqual(mod.NativeDB, native.NativeDB);
  return mod;
}

function refused(fn, what) {
  let err;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, `${what}: nothing was thrown`);
  assert.ok(err instanceof VecvaultError, `${what}: not a VecvaultError: ${err && err.stack}`);
  assert.equal(err.code, 'ERR_INVALID_ARGUMENT', `${what}: ${err.message}`);
}

async function savedSession() {
  const dir = s.freshPath('tags');
  const db = s.newDb({ dimension: DIM, index: 'flat', encryptAtRest: false });
  db.add('a', [1, 0, 0, 0]);
  db.add('b', [0, 1, 0, 0]);
  await db.save(dir);
  db.close();
  return dir;
}

function loadWith(mod, dir) {
  return mod.loadAsync(dir, null, null, 1, 0, CACHE_BYTES, null, null, undefined);
}

describe('25 binding: type-tagged native objects', function () {
  let copy;
  before(function () {
    copy = otherCopy();
  });

  it('the prototype has the methods lib/ calls', function () {
    for (const m of ['add', 'addBatch', 'addBatchAsync', 'delete', 'has', 'get', 'size', 'search', 'searchBatch',
      'searchAsync', 'searchBatchAsync', 'close', 'config', 'setSecret', 'saveAsync', 'cacheStats', 'setCacheSize',
      'preloadAsync']) {
      assert.equal(typeof native.NativeDB.prototype[m], 'function', m);
    }
  });

  it('every method refuses a receiver that is not a NativeDB (close() included)', function () {
    const real = nativeDb(native);
    const receivers = {
      'a plain object': {},
      'NativeDB.prototype': native.NativeDB.prototype,
      'an object inheriting from a real NativeDB': Object.create(real),
      'a function': function () {},
      'an array': [],
      undefined,
      'a number': 7,
    };
    for (const m of METHODS) {
      for (const [what, self] of Object.entries(receivers)) {
        refused(() => native.NativeDB.prototype[m].call(self, 'x', new Float32Array(DIM)), `${m} on ${what}`);
      }
    }
    assert.equal(real.size(), 0);
    real.close();
  });

  it('a NativeDB of another copy of the addon is refused, and each copy still serves its own', function () {
    const ours = nativeDb(native);
    const theirs = nativeDb(copy);
    ours.add('o', new Float32Array([1, 2, 3, 4]), null);
    theirs.add('t', new Float32Array([4, 3, 2, 1]), null);
    for (const m of METHODS) {
      refused(() => native.NativeDB.prototype[m].call(theirs, 'x', new Float32Array(DIM)), `our ${m} on theirs`);
    }
    /* Neither object was touched by the refused calls (close() included). */
    assert.equal(ours.size(), 1);
    assert.equal(theirs.size(), 1);
    assert.equal(theirs.has('t'), true);
    assert.equal(ours.has('t'), false);
    ours.close();
    theirs.close();
  });

  it('the constructor refuses a loaded-session external from another copy of the addon', async function () {
    const dir = await savedSession();
    const [foreignEngine] = await loadWith(copy, dir);
    refused(() => new native.NativeDB(foreignEngine), 'new NativeDB(their external)');
    /* The copy can still adopt it: the refusal took nothing. */
    const theirs = new copy.NativeDB(foreignEngine);
    assert.equal(theirs.size(), 2);
    theirs.close();

    const [engine] = await loadWith(native, dir);
    refused(() => native.NativeDB.prototype.size.call(engine), 'size() on a loaded-session external');
    const ours = new native.NativeDB(engine);
    assert.equal(ours.size(), 2);
    refused(() => new native.NativeDB(engine), 'adopting the same external twice');
    ours.close();
  });
});
