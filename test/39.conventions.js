'use strict';
/*
 * 39.conventions.js: the conventions a Node user expects of an API.
 *
 * Owns: save() into a directory path whose parents are missing (created, as
 * mkdir -p; a parent that cannot be created is an error naming it); `signal`
 * on every async method, searches included; a structural AbortSignal (any
 * object shaped like one, from another realm or a polyfill); and
 * Symbol.dispose / Symbol.asyncDispose (`using db = ...`).
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

function smallDb(n = 20) {
  const db = s.newDb({ dimension: 4, encryptAtRest: false, threads: 1 });
  s.fill(db, n, { seed: 7, unicode: false });
  return db;
}

describe('39 conventions', function () {
  afterEach(() => {
    s.closeTracked();
    s.cleanupTmp();
  });

  describe('save() creates the directory path', function () {
    it('creates every missing parent of a directory target, then loads back', async function () {
      const root = s.tmpDir('mkp');
      const dir = path.join(root, 'a', 'b', 'c', 'session');
      const db = smallDb();
      const r = await db.save(dir);
      assert.equal(r.generation, 1);
      assert.ok(fs.statSync(path.join(dir, 'manifest.json')).isFile());
      const back = await s.loadDb(dir);
      assert.equal(back.size, 20);
    });

    it('a parent that cannot be created is an error that names it, and nothing is written', async function () {
      const root = s.tmpDir('mkp');
      const file = path.join(root, 'plain-file');
      fs.writeFileSync(file, 'x');
      const dir = path.join(file, 'sub', 'session');
      const db = smallDb();
      const err = await h.rejectsCode(() => db.save(dir), 'ERR_IO');
      assert.ok(err.message.includes(JSON.stringify(path.join(file, 'sub'))), `message names the parent: ${err.message}`);
      assert.equal(fs.readFileSync(file, 'utf8'), 'x');
    });

    it('still refuses a foreign directory as the target itself', async function () {
      const root = s.tmpDir('mkp');
      const dir = path.join(root, 'x', 'foreign');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
      const db = smallDb();
      await h.rejectsCode(() => db.save(dir), 'ERR_NOT_A_SESSION');
      assert.deepEqual(fs.readdirSync(dir), ['notes.txt']);
    });
  });

  describe('signal on every async method', function () {
    const q = [0.1, 0.2, 0.3, 0.4];
    const aborted = () => {
      const ac = new AbortController();
      ac.abort(new Error('stop'));
      return ac.signal;
    };

    /* Each call, given `signal`: the methods a signal was missing from. */
    const calls = {
      'searchAsync': (db, signal) => db.searchAsync(q, 3, { signal }),
      'searchBatchAsync': (db, signal) => db.searchBatchAsync([q, q], 3, { signal }),
      'searchBatchAsync (Float32Array)': (db, signal) => db.searchBatchAsync(Float32Array.from([...q, ...q]), 3, { signal }),
      'getAsync': (db, signal) => db.getAsync('v0', { signal }),
      'updateMetadataAsync': (db, signal) => db.updateMetadataAsync('v0', { x: 1 }, { signal }),
    };

    for (const [name, call] of Object.entries(calls)) {
      it(`${name}: an already-aborted signal rejects with ERR_ABORTED and does nothing`, async function () {
        const db = smallDb();
        const before = db.get('v0').metadata;
        const err = await h.rejectsCode(() => call(db, aborted()), 'ERR_ABORTED');
        assert.equal(err.name, 'AbortError');
        assert.deepEqual(db.get('v0').metadata, before);
      });

      it(`${name}: a signal that never aborts changes nothing`, async function () {
        const db = smallDb();
        const ac = new AbortController();
        const r = await call(db, ac.signal);
        assert.ok(r !== undefined);
      });
    }

    for (const name of ['searchAsync', 'searchBatchAsync', 'getAsync']) {
      it(`${name}: aborted after the call, before it settles, rejects with ERR_ABORTED`, async function () {
        const db = smallDb();
        const ac = new AbortController();
        const p = calls[name](db, ac.signal);
        ac.abort();
        await h.rejectsCode(() => p, 'ERR_ABORTED');
      });
    }

    it('searchBatchAsync still checks its search options, and refuses a non-signal', async function () {
      const db = smallDb();
      await h.rejectsCode(() => db.searchBatchAsync([q], 3, { signal: {} }), 'ERR_INVALID_ARGUMENT');
      await h.rejectsCode(() => db.searchBatchAsync([q], 3, { nope: 1 }), 'ERR_INVALID_ARGUMENT');
      await h.rejectsCode(() => db.getAsync('v0', { signal: 1 }), 'ERR_INVALID_ARGUMENT');
    });

    it('an empty batch with an aborted signal rejects too', async function () {
      const db = smallDb();
      await h.rejectsCode(() => db.searchBatchAsync([], 3, { signal: aborted() }), 'ERR_ABORTED');
    });
  });

  describe('a signal is any object shaped like an AbortSignal', function () {
    /* A minimal polyfill: what index.d.ts's AbortSignalLike declares, no more. */
    function handMade() {
      const listeners = new Set();
      return {
        aborted: false,
        reason: undefined,
        addEventListener(type, fn) {
          if (type === 'abort') listeners.add(fn);
        },
        removeEventListener(type, fn) {
          if (type === 'abort') listeners.delete(fn);
        },
        abort(reason) {
          this.aborted = true;
          this.reason = reason;
          for (const fn of [...listeners]) {
            listeners.delete(fn);
            fn();
          }
        },
        listeners: () => listeners.size,
      };
    }
    const q = [0.1, 0.2, 0.3, 0.4];

    it('is accepted by every async method, and its listeners are removed after the call', async function () {
      const db = smallDb();
      const sig = handMade();
      assert.equal((await db.searchAsync(q, 3, { signal: sig })).length, 3);
      assert.equal((await db.searchBatchAsync([q], 3, { signal: sig }))[0].length, 3);
      assert.equal((await db.getAsync('v1', { signal: sig })).id, 'v1');
      await db.addBatchAsync([{ id: 'new', vector: q }], { signal: sig });
      const dir = s.freshPath('sig');
      await db.save(dir, { signal: sig });
      const info = await VectorDB.inspect(dir, { signal: sig });
      assert.equal(info.totalVectors, 21);
      const back = await s.loadDb(dir, { signal: sig });
      assert.equal(back.size, 21);
      await back.preload(undefined, { signal: sig });
      let seen = 0;
      for await (const batch of db.entries({ signal: sig })) seen += batch.length;
      assert.equal(seen, 21);
      assert.equal(sig.listeners(), 0);
    });

    it('aborting it rejects with ERR_ABORTED, carrying its reason', async function () {
      const db = smallDb();
      const sig = handMade();
      const p = db.searchAsync(q, 3, { signal: sig });
      const reason = new Error('user left');
      sig.abort(reason);
      const err = await h.rejectsCode(() => p, 'ERR_ABORTED');
      assert.equal(err.cause, reason);
      await h.rejectsCode(() => db.searchBatchAsync([q], 3, { signal: sig }), 'ERR_ABORTED');
      await h.rejectsCode(() => db.addBatchAsync([{ id: 'x', vector: q }], { signal: sig }), 'ERR_ABORTED');
      assert.equal(db.has('x'), false);
    });

    it('an object not shaped like one is refused with ERR_INVALID_ARGUMENT', async function () {
      const db = smallDb();
      const noop = () => {};
      const bad = [
        {},
        { aborted: 'no', addEventListener: noop, removeEventListener: noop },
        { aborted: false, addEventListener: noop },
        { aborted: false, removeEventListener: noop },
        null,
        1,
      ];
      const dir = s.freshPath('sig-shape');
      await db.save(dir);
      for (const signal of bad) {
        await h.rejectsCode(() => db.searchAsync(q, 3, { signal }), 'ERR_INVALID_ARGUMENT', `signal ${JSON.stringify(signal)}`);
        await h.rejectsCode(() => db.addBatchAsync([], { signal }), 'ERR_INVALID_ARGUMENT');
        /* The session transfers check it the same way. */
        await h.rejectsCode(() => VectorDB.copy(dir, s.freshPath('sig-copy'), { signal }), 'ERR_INVALID_ARGUMENT', `copy, signal ${JSON.stringify(signal)}`);
        await h.rejectsCode(() => db.export(path.join(s.tmpDir('sig-export'), 'x.vvx'), { signal }), 'ERR_INVALID_ARGUMENT', `export, signal ${JSON.stringify(signal)}`);
      }
    });
  });

  describe('Symbol.dispose and Symbol.asyncDispose', function () {
    const DISPOSE = Symbol.dispose || Symbol.for('nodejs.dispose');
    const ASYNC_DISPOSE = Symbol.asyncDispose || Symbol.for('nodejs.asyncDispose');

    it('are methods of VectorDB.prototype', function () {
      assert.equal(typeof VectorDB.prototype[DISPOSE], 'function');
      assert.equal(typeof VectorDB.prototype[ASYNC_DISPOSE], 'function');
    });

    it('[Symbol.dispose]() closes the database, and a second call does nothing', function () {
      const db = smallDb();
      assert.equal(db[DISPOSE](), undefined);
      assert.equal(db.closed, true);
      h.throwsCode(() => db.search([0.1, 0.2, 0.3, 0.4], 1), 'ERR_CLOSED');
      db[DISPOSE]();
    });

    it('[Symbol.asyncDispose]() resolves once closed, and in-flight work still settles', async function () {
      const db = smallDb();
      const pending = db.searchAsync([0.1, 0.2, 0.3, 0.4], 3);
      const done = db[ASYNC_DISPOSE]();
      assert.ok(done instanceof Promise);
      assert.equal(await done, undefined);
      assert.equal(db.closed, true);
      assert.equal((await pending).length, 3);
      await db[ASYNC_DISPOSE]();
    });
  });

  describe('the runtime holds to what index.d.ts declares readonly', function () {
    it('loadStats cannot be replaced, and its fields cannot be changed', async function () {
      const db = smallDb();
      assert.equal(db.loadStats, null);
      assert.throws(() => {
        db.loadStats = { lazy: true };
      }, TypeError);
      const dir = s.freshPath('ro');
      await db.save(dir);
      const back = await s.loadDb(dir);
      const stats = back.loadStats;
      assert.equal(stats.totalVectors, 20);
      assert.ok(Object.isFrozen(stats));
      assert.throws(() => {
        stats.lazy = !stats.lazy;
      }, TypeError);
      assert.throws(() => {
        back.loadStats = null;
      }, TypeError);
      assert.equal(back.loadStats, stats);
      assert.ok(!Object.hasOwn(back, 'loadStats'), 'an accessor of the class, not an own data property');
    });

    it('VecvaultError.code cannot be changed, and stays an enumerable own property', function () {
      const db = smallDb();
      const err = h.throwsCode(() => db.add('', [1, 2, 3, 4]), 'ERR_INVALID_ID');
      assert.throws(() => {
        err.code = 'ERR_IO';
      }, TypeError);
      assert.equal(err.code, 'ERR_INVALID_ID');
      assert.ok(Object.keys(err).includes('code'));
      const { VecvaultError } = h.vecvault();
      const made = new VecvaultError('m', 'ERR_IO');
      assert.throws(() => {
        made.code = 'ERR_NOSPC';
      }, TypeError);
      assert.equal(made.code, 'ERR_IO');
    });

    it('a Float64Array vector and query are accepted, as VectorLike declares', function () {
      const db = smallDb();
      db.add('f64', Float64Array.from([0.5, 0.25, 0.125, 1]));
      const hits = db.search(Float64Array.from([0.5, 0.25, 0.125, 1]), 1);
      assert.equal(hits[0].id, 'f64');
    });
  });

  describe("every message about a session's files names the session", function () {
    async function saved(tag) {
      const dir = s.freshPath(tag);
      const db = s.newDb({ dimension: 4, chunkSize: 8, key: s.keyFor('names') });
      s.fill(db, 40, { seed: 3, unicode: false });
      await db.save(dir);
      return dir;
    }

    async function rejection(promise) {
      try {
        await promise;
      } catch (err) {
        return err;
      }
      assert.fail('expected a rejection');
    }

    it('load with the wrong key, a damaged manifest, a damaged index object', async function () {
      const dir = await saved('names-load');
      let err = await rejection(VectorDB.load(dir, { key: s.keyFor('other') }));
      h.assertVecvaultError(err, 'ERR_WRONG_KEY');
      assert.ok(err.message.includes(dir), err.message);

      const { index } = s.manifestObjects(dir);
      s.flipBit(index[0].path, fs.statSync(index[0].path).size - 8);
      err = await rejection(VectorDB.load(dir, { key: s.keyFor('names'), lazy: true }));
      h.assertVecvaultError(err, 'ERR_CHUNK_CORRUPT');
      assert.ok(err.message.includes(dir) && err.message.includes(index[0].name), err.message);

      s.flipBit(path.join(dir, 'manifest.json'), 200);
      for (const p of [VectorDB.load(dir, { key: s.keyFor('names') }), VectorDB.inspect(dir)]) {
        err = await rejection(p);
        assert.ok(['ERR_MANIFEST_CORRUPT', 'ERR_MANIFEST_AUTH'].includes(err.code), err.code);
        assert.ok(err.message.includes(dir), err.message);
      }
    });

    it('a lazy read of a damaged chunk names the object and the session', async function () {
      const dir = await saved('names-lazy');
      const { chunks } = s.manifestObjects(dir);
      for (const c of chunks) s.flipBit(c.path, fs.statSync(c.path).size - 8);
      const db = await s.loadDb(dir, { key: s.keyFor('names'), lazy: true });
      const err = await rejection(db.searchAsync([1, 0, 0, 0], 40, { efSearch: 64, rerank: 40 }).then(() => db.getAsync('v0')));
      h.assertVecvaultError(err, 'ERR_CHUNK_CORRUPT');
      assert.ok(err.message.includes(dir), err.message);
      assert.ok(chunks.some((c) => err.message.includes(c.name)), err.message);
    });

    it('a message that already names the session is left alone', async function () {
      const dir = s.freshPath('names-missing');
      const err = await rejection(VectorDB.load(dir, { key: s.keyFor('names') }));
      h.assertVecvaultError(err, 'ERR_NOT_FOUND');
      assert.equal(err.message.split(dir).length, 2, err.message);
    });
  });
});
