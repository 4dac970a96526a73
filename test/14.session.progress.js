'use strict';
/*
 * 14.session.progress.js: progress reporting and concurrency of save/load.
 *
 * Owns: the onProgress contract of save() and load() (done never decreases,
 * the last call has done === total, phases are known names, bytes never
 * decrease), a throwing onProgress (rejects with that very error, the
 * previous generation intact), searches running on while a large save
 * writes, and two saves racing for the same directory.
 *
 * An eager load (lazy: false) counts every index segment and chunk; a lazy
 * one (the default) reads only the index, so it counts index segments alone.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

const PHASES = ['chunks', 'index', 'commit'];

/* Checks a recorded list of [done, total, info] calls against the contract. */
function assertProgress(calls, what) {
  assert.ok(calls.length >= 1, `${what}: onProgress was never called`);
  let prevDone = -1;
  let prevBytes = -1;
  for (const [i, [done, total, info]] of calls.entries()) {
    assert.ok(Number.isInteger(done) && Number.isInteger(total), `${what}[${i}]: integers`);
    assert.ok(done >= 0 && done <= total, `${what}[${i}]: done ${done} outside 0..${total}`);
    assert.ok(done >= prevDone, `${what}[${i}]: done went back from ${prevDone} to ${done}`);
    assert.ok(info && PHASES.includes(info.phase), `${what}[${i}]: phase ${info && info.phase}`);
    assert.ok(Number.isInteger(info.bytes) && info.bytes >= prevBytes, `${what}[${i}]: bytes ${info.bytes} after ${prevBytes}`);
    prevDone = done;
    prevBytes = info.bytes;
  }
  const [done, total] = calls[calls.length - 1];
  assert.equal(done, total, `${what}: the last call is not done === total`);
  const totals = new Set(calls.map((c) => c[1]));
  assert.equal(totals.size, 1, `${what}: total changed during the operation (${[...totals]})`);
}

const record = (calls) => (done, total, info) => calls.push([done, total, { ...info }]);

describe('14 session progress and concurrency', function () {
  this.timeout(60000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  /* One large database shared by the tests that need a long save. */
  let big;
  before(function () {
    this.timeout(60000);
    big = new VectorDB({ dimension: 64, chunkSize: 500, hnsw: { m: 12, efConstruction: 32 }, key: s.keyFor('big') });
    const vs = h.clusteredVectors(20000, 64, { clusters: 40, seed: 14 });

    big.addBatch(vs.map((vector, i) => ({ id: `big-${i}`, vector, metadata: { i } })));
  });
  after(() => big && big.close());

  describe('save and load progress', function () {
    /* Small operations finish before most reports reach JS: the final call must still be right. */
    for (const [what, n, rounds] of [['a small database', 30, 12], ['a large database', 0, 1]]) {
      it(`${what}: save and load report monotonic progress ending at done === total${rounds > 1 ? ` (${rounds} rounds)` : ''}`, async function () {
        for (let round = 0; round < rounds; round++) await progressRound(n, false);
      });
    }

    it('the final report is accurate: a save ends with the commit and its byte count, a load with its own total and phases', async function () {
      /* The stale final report is a race: enough rounds that it shows when it exists. */
      for (let round = 0; round < 25; round++) await progressRound(30, true);
      await progressRound(0, true);
    });

    async function progressRound(n, strict) {
      const db = n ? s.newDb({ dimension: 4, chunkSize: 3, key: s.keyFor('p') }) : big;
      if (n) s.fill(db, n);
      const key = n ? s.keyFor('p') : s.keyFor('big');
      const dir = s.freshPath('prog');

      const saveCalls = [];
      const st = await db.save(dir, { onProgress: record(saveCalls) });
      assertProgress(saveCalls, 'save');
      const last = saveCalls[saveCalls.length - 1][2];
      if (strict) assert.equal(last.phase, 'commit', `the last save report is the commit: ${JSON.stringify(saveCalls)}`);
      if (strict) assert.equal(last.bytes, st.bytesWritten, `the last save report counts every byte written: ${JSON.stringify(saveCalls)}`);

      const info = await VectorDB.inspect(dir);
      const indexBytes = s.manifestObjects(dir).index.reduce((sum, o) => sum + o.bytes, 0);
      const loadCalls = [];
      const loaded = await s.loadDb(dir, { key, lazy: false, onProgress: record(loadCalls) });
      assertProgress(loadCalls, 'eager load');
      if (strict) assert.equal(loadCalls[0][1], info.chunkCount + info.indexSegmentCount, `eager load total: ${JSON.stringify(loadCalls)}`);
      if (strict) assert.ok(loadCalls.every(([, , i]) => i.phase !== 'commit'), `a load has no commit phase: ${JSON.stringify(loadCalls)}`);
      if (strict) assert.ok(loadCalls[loadCalls.length - 1][2].bytes >= info.bytes, `the last load report counts the object bytes read: ${JSON.stringify(loadCalls)}`);
      assert.equal(loaded.size, db.size);
      assert.equal(loaded.loadStats.lazy, false);

      const lazyCalls = [];
      const lazy = await s.loadDb(dir, { key, onProgress: record(lazyCalls) });
      assertProgress(lazyCalls, 'lazy load');
      assert.equal(lazy.loadStats.lazy, true);
      const [lastDone, lastTotal] = lazyCalls[lazyCalls.length - 1];
      assert.deepEqual([lastDone, lastTotal], [info.indexSegmentCount, info.indexSegmentCount], `a lazy load counts index segments only: ${JSON.stringify(lazyCalls)}`);
      if (strict) assert.ok(lazyCalls.every(([, , i]) => i.phase === 'index'), `a lazy load reports the index phase only: ${JSON.stringify(lazyCalls)}`);
      if (strict) {
        /* The index objects, perhaps with manifest.json (loadStats.bytesRead counts it), and no chunk. */
        const { bytes } = lazyCalls[lazyCalls.length - 1][2];
        const most = indexBytes + fs.statSync(path.join(dir, 'manifest.json')).size;
        assert.ok(bytes >= indexBytes && bytes <= most, `the last lazy load report counts the index bytes (${indexBytes}..${most}) and no chunk: ${JSON.stringify(lazyCalls)}`);
      }
      assert.equal(lazy.size, db.size);
      lazy.close();

      /* an incremental save reports too */
      db.add('one-more', new Float32Array(db.dimension).fill(0.25));
      const incCalls = [];
      await db.save(dir, { onProgress: record(incCalls) });
      assertProgress(incCalls, 'incremental save');
      db.delete('one-more');
      loaded.close();
    }

    it('a throwing onProgress rejects the save with that error, and the previous generation is intact', async function () {
      const dir = s.freshPath('throw');
      const key = s.keyFor('throw');
      const db = s.newDb({ dimension: 8, chunkSize: 20, key });
      const ids = s.fill(db, 400);
      await db.save(dir);
      const state = s.capture(db, ids);
      const before = s.hashDir(dir);
      s.fill(db, 400, { prefix: 'next-', seed: 3, unicode: false });
      const boom = new Error('progress callback failed');
      let calls = 0;
      await assert.rejects(db.save(dir, {
        onProgress() {
          calls++;
          throw boom;
        },
      }), (err) => err === boom);
      assert.equal(calls, 1, 'onProgress was called again after it threw');
      const after = s.hashDir(dir);
      for (const [rel, hash] of Object.entries(before)) assert.equal(after[rel], hash, `${rel} changed`);
      assert.equal((await VectorDB.inspect(dir)).generation, 1);
      for (const lazy of [false, true]) {
        const loaded = await s.loadDb(dir, { key, lazy });
        assert.equal(loaded.loadStats.generation, 1);
        s.assertState(loaded, state, 400, `lazy: ${lazy}`);
      }
    });

    it('a throwing onProgress rejects the load with that error', async function () {
      const dir = s.freshPath('throwload');
      const db = s.newDb({ dimension: 8, chunkSize: 20, encryptAtRest: false });
      s.fill(db, 400);
      await db.save(dir);
      const boom = new TypeError('no thanks');
      for (const lazy of [false, true]) {
        let calls = 0;
        await assert.rejects(VectorDB.load(dir, { lazy, onProgress() { calls++; throw boom; } }), (err) => err === boom, `lazy: ${lazy}`);
        assert.equal(calls, 1, `lazy: ${lazy}: onProgress was called again after it threw`);
        assert.equal((await s.loadDb(dir, { lazy })).size, 400);
      }
    });
  });

  describe('concurrency', function () {
    /* That searches do not wait for a save's I/O is proven with a handshake
     * in test/c/test_concurrency_save.c (a save held inside its I/O while
     * another thread searches). Here: what searches return while a save is
     * in flight. Nothing is counted against a clock. */
    it('searches keep returning the right results while a large save runs', async function () {
      const dir = s.freshPath('busy');
      const queries = h.randomVectors(8, 64, 140);
      const expected = queries.map((q) => h.plainResults(big.search(q, 10)));
      let reports = 0;
      let saving = true;
      /* A progress report runs on the JS thread while the save's promise is pending. */
      const saved = big.save(dir, {
        onProgress() {
          const q = reports++ % queries.length;
          assert.deepEqual(h.plainResults(big.search(queries[q], 10)), expected[q], `sync search in progress report ${reports}`);
        },
      }).finally(() => {
        saving = false;
      });
      /* Issued before the event loop turns: all of them while the save is pending. */
      const first = queries.map((q) => big.searchAsync(q, 10));
      assert.deepEqual(h.plainResults(big.search(queries[0], 10)), expected[0], 'sync search right after the save started');
      (await Promise.all(first)).forEach((res, q) => assert.deepEqual(h.plainResults(res), expected[q], `search ${q} issued during the save`));
      for (let i = 0; saving; i++) {
        const q = i % queries.length;
        assert.deepEqual(h.plainResults(await big.searchAsync(queries[q], 10)), expected[q], `search ${i} during the save`);
      }
      await saved;
      assert.ok(reports >= 1, 'the save made no progress report');
      /* sync search during a save too: it must not wait for the save to finish */
      const p = big.save(dir);
      assert.deepEqual(h.plainResults(big.search(queries[0], 10)), expected[0]);
      await p;
      const loaded = await s.loadDb(dir, { key: s.keyFor('big'), lazy: false });
      assert.deepEqual(h.plainResults(loaded.search(queries[1], 10)), expected[1]);
      /* A lazy load of what was written reads back the same records. */
      const sample = Array.from({ length: 50 }, (_, i) => `big-${i * 397}`);
      s.assertState(await s.loadDb(dir, { key: s.keyFor('big') }), s.capture(big, sample), big.size, 'lazily');
    });

    it('the same database saved twice at once into one dir: both succeed or one gets ERR_LOCKED, and the dir loads', async function () {
      const dir = s.freshPath('race');
      const key = s.keyFor('race');
      const db = s.newDb({ dimension: 16, chunkSize: 50, key });
      const ids = s.fill(db, 2000, { unicode: false });
      const state = s.capture(db, ids);
      for (let round = 0; round < 3; round++) {
        const before = fs.existsSync(path.join(dir, 'manifest.json')) ? (await VectorDB.inspect(dir)).generation : 0;
        const results = await Promise.allSettled([db.save(dir), db.save(dir)]);
        const ok = results.filter((r) => r.status === 'fulfilled');
        for (const r of results) {
          if (r.status === 'rejected') h.assertVecvaultError(r.reason, 'ERR_LOCKED', `round ${round}`);
        }
        assert.ok(ok.length >= 1, `round ${round}: neither save succeeded`);
        const gens = ok.map((r) => r.value.generation).sort();
        assert.deepEqual(gens, ok.map((_, k) => before + k + 1), `round ${round}: generations ${gens}`);
        for (const lazy of [false, true]) {
          const loaded = await s.loadDb(dir, { key, lazy });
          assert.equal(loaded.loadStats.generation, before + ok.length);
          s.assertState(loaded, state, 2000, `round ${round} (lazy: ${lazy})`);
          loaded.close();
        }
      }
    });

    it('two databases saving into one dir at once: the dir loads as one of them, whole', async function () {
      const dir = s.freshPath('race2');
      const key = s.keyFor('race2');
      const a = s.newDb({ dimension: 8, chunkSize: 50, key });
      const b = s.newDb({ dimension: 8, chunkSize: 50, key });
      const ia = s.fill(a, 1500, { prefix: 'a', seed: 1, unicode: false });
      const ib = s.fill(b, 1500, { prefix: 'b', seed: 2, unicode: false });
      const results = await Promise.allSettled([a.save(dir), b.save(dir)]);
      for (const r of results) if (r.status === 'rejected') h.assertVecvaultError(r.reason, 'ERR_LOCKED');
      for (const lazy of [false, true]) {
        const loaded = await s.loadDb(dir, { key, lazy });
        const isA = loaded.has('a0');
        assert.equal(loaded.has('b0'), !isA, 'a mix of both databases');
        s.assertState(loaded, s.capture(isA ? a : b, isA ? ia : ib), 1500, `lazy: ${lazy}`);
      }
    });

    it('one database saved into two dirs at once: both succeed', async function () {
      const key = s.keyFor('two');
      const db = s.newDb({ dimension: 8, chunkSize: 50, key });
      const ids = s.fill(db, 1000, { unicode: false });
      const [d1, d2] = [s.freshPath('two'), s.freshPath('two')];
      const [r1, r2] = await Promise.all([db.save(d1), db.save(d2)]);
      assert.equal(r1.generation, 1);
      assert.equal(r2.generation, 1);
      const state = s.capture(db, ids);
      for (const lazy of [false, true]) {
        s.assertState(await s.loadDb(d1, { key, lazy }), state, 1000, `first dir (lazy: ${lazy})`);
        s.assertState(await s.loadDb(d2, { key, lazy }), state, 1000, `second dir (lazy: ${lazy})`);
      }
    });
  });
});
