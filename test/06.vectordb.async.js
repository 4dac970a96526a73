'use strict';
/*
 * 06.vectordb.async.js: searchAsync, searchBatchAsync and addBatchAsync:
 * same answers as the sync calls, work kept off the JS thread, progress
 * reports, AbortSignal (before and during the work) and a throwing
 * onProgress.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const h = require('./helpers');

/*
 * Holds every thread of libuv's pool (the threads async work runs on) in
 * open(2) of a FIFO nobody writes to, until release(). Work queued
 * meanwhile cannot start, so a promise that settles while the pool is held
 * was settled by work done on the JS thread. libuv's queue is first in,
 * first out: the opens are queued first, so they take every thread.
 */
function holdThreadPool() {
  const size = Number(process.env.UV_THREADPOOL_SIZE) || 4; /* libuv's default */
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-pool-'));
  const fifos = [];
  const readers = [];
  for (let i = 0; i < size; i++) {
    const fifo = path.join(dir, `hold-${i}`);
    execFileSync('mkfifo', [fifo]);
    fifos.push(fifo);
    readers.push(new Promise((resolve, reject) => fs.open(fifo, 'r', (err, fd) => (err ? reject(err) : resolve(fd)))));
  }
  return {
    /* Opens each FIFO for writing, which lets its reader through; ENXIO
     * means that reader has not reached open(2) yet: try again next turn. */
    async release() {
      for (const fifo of fifos) {
        for (;;) {
          try {
            fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
            break;
          } catch (err) {
            if (err.code !== 'ENXIO') throw err;
            await h.tick();
          }
        }
      }
      for (const fd of await Promise.all(readers)) fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/* Settles once every thread-safe call already queued by finished work has
 * been delivered: each turn of the event loop polls for them. */
async function drainEventLoop() {
  for (let i = 0; i < 5; i++) await h.tick();
}

/*
 * Runs `start()` (an async call) while the thread pool is held and checks,
 * over `turns` turns of the event loop, that its promise stays pending and
 * the JS thread keeps running (`during()` is called on each turn). Then
 * releases the pool and returns the promise's value.
 */
async function whilePoolHeld(start, during, turns = 10) {
  const pool = holdThreadPool();
  let settled = false;
  let p;
  try {
    p = start();
    p.then(() => { settled = true; }, () => { settled = true; });
    for (let turn = 0; turn < turns; turn++) {
      await h.tick();
      assert.equal(settled, false, `the promise settled while no pool thread was free (turn ${turn}): the work ran on the JS thread`);
      during(turn);
    }
  } finally {
    await pool.release();
  }
  return p;
}

describe('06 VectorDB async calls', function () {
  describe('searchAsync', function () {
    for (const index of h.INDEXES) {
      it(`${index}: resolves to what search returns, for every metric`, async function () {
        for (const metric of h.METRICS) {
          const db = h.openDb({ dimension: 8, metric, index });
          db.addBatch(h.makeItems(h.randomVectors(400, 8, 61)));
          for (const q of h.randomVectors(5, 8, 62)) {
            const p = db.searchAsync(q, 10, { includeVector: true });
            assert.ok(p instanceof Promise, 'returns a Promise');
            const res = await p;
            assert.deepEqual(h.plainResults(res), h.plainResults(db.search(q, 10, { includeVector: true })), metric);
            assert.ok(res[0].vector instanceof Float32Array);
          }
          assert.deepEqual(h.plainResults(await db.searchAsync(Array.from(new Float32Array(8).fill(0.5)), 3)),
            h.plainResults(db.search(new Float32Array(8).fill(0.5), 3)));
        }
      });
    }

    it('on an empty db resolves to []', async function () {
      const db = h.openDb({ dimension: 3 });
      assert.deepEqual(await db.searchAsync([1, 2, 3], 5), []);
    });

    it('many concurrent searchAsync calls all resolve correctly', async function () {
      const db = h.openDb({ dimension: 8, metric: 'l2', index: 'flat' });
      const vs = h.randomVectors(1000, 8, 63);
      db.addBatch(h.makeItems(vs));
      const results = await Promise.all(vs.slice(0, 200).map((v) => db.searchAsync(v, 1)));
      results.forEach((res, i) => {
        assert.equal(res[0].id, `v${i}`);
        assert.equal(res[0].distance, 0);
      });
    });

    it('does not see a later change to the query array (input is copied before the work starts)', async function () {
      const db = h.openDb({ dimension: 2, metric: 'l2', index: 'flat' });
      db.add('a', [0, 0]);
      db.add('b', [10, 10]);
      const q = new Float32Array([0, 0]);
      const p = db.searchAsync(q, 1);
      q[0] = 10;
      q[1] = 10;
      assert.equal((await p)[0].id, 'a');
    });
  });

  describe('work runs off the JS thread', function () {
    /* The call returns a pending promise and its work waits for a pool
     * thread: held there, the JS thread keeps turning the event loop and
     * answering sync calls, and the result arrives once the pool is free. */
    it('searchBatchAsync queues its work on the thread pool; the JS thread stays free until it runs', async function () {
      const dim = 16;
      const db = h.openDb({ dimension: dim, metric: 'l2', index: 'flat' });
      const vs = h.randomVectors(2000, dim, 64);
      db.addBatch(h.makeItems(vs, 'v', false));
      const queries = h.flatten(h.randomVectors(40, dim, 65), dim);
      const expected = db.searchBatch(queries, 10).map(h.plainResults);
      let syncCalls = 0;
      const res = await whilePoolHeld(() => db.searchBatchAsync(queries, 10), (turn) => {
        assert.equal(db.search(vs[turn], 1)[0].id, `v${turn}`);
        syncCalls++;
      });
      assert.equal(syncCalls, 10);
      assert.deepEqual(res.map(h.plainResults), expected);
    });

    it('addBatchAsync queues its work on the thread pool; the JS thread stays free until it runs', async function () {
      const db = h.openDb({ dimension: 32, metric: 'cosine', index: 'hnsw' });
      const items = h.makeItems(h.randomVectors(2000, 32, 66));
      await whilePoolHeld(() => db.addBatchAsync(items), () => {
        assert.equal(db.size, 0, 'items were inserted before a pool thread was free');
      });
      assert.equal(db.size, 2000);
      assert.equal(db.search(items[7].vector, 1)[0].id, items[7].id);
    });
  });

  describe('addBatchAsync', function () {
    it('inserts everything and resolves to undefined', async function () {
      const db = h.openDb({ dimension: 8, metric: 'l2' });
      const vs = h.randomVectors(1000, 8, 71);
      const p = db.addBatchAsync(h.makeItems(vs));
      assert.ok(p instanceof Promise);
      assert.equal(await p, undefined);
      assert.equal(db.size, 1000);
      vs.forEach((v, i) => {
        const rec = db.get(`v${i}`);
        assert.deepEqual(Array.from(rec.vector), Array.from(v));
        assert.deepEqual(rec.metadata, { i, tag: `v-${i % 7}` });
      });
      assert.equal(db.search(vs[10], 1)[0].id, 'v10');
    });

    it('works without options and with an empty batch', async function () {
      const db = h.openDb({ dimension: 2 });
      await db.addBatchAsync([{ id: 'a', vector: [1, 0] }]);
      await db.addBatchAsync([], {});
      assert.equal(db.size, 1);
    });

    it('the caller may change items after the call without affecting what is inserted', async function () {
      const db = h.openDb({ dimension: 2, metric: 'l2' });
      const items = [{ id: 'a', vector: new Float32Array([1, 2]), metadata: { m: 1 } }];
      const p = db.addBatchAsync(items);
      items[0].vector[0] = 99;
      items[0].metadata.m = 2;
      items[0].id = 'changed';
      await p;
      assert.deepEqual(Array.from(db.get('a').vector), [1, 2]);
      assert.deepEqual(db.get('a').metadata, { m: 1 });
      assert.equal(db.has('changed'), false);
    });

    it('reports progress: total fixed, done never decreasing, last call done === total, none after resolve', async function () {
      this.timeout(30000);
      const db = h.openDb({ dimension: 32, index: 'hnsw' });
      const n = 6000;
      const calls = [];
      await db.addBatchAsync(h.makeItems(h.randomVectors(n, 32, 72)), {
        onProgress(done, total) {
          calls.push([done, total]);
        },
      });
      const atResolve = calls.length;
      await drainEventLoop();
      assert.equal(calls.length, atResolve, 'onProgress called after the promise resolved');
      assert.ok(calls.length >= 1, 'onProgress never called');
      let prev = -1;
      for (const [done, total] of calls) {
        assert.equal(typeof done, 'number');
        assert.equal(total, n, 'total is the number of items');
        assert.ok(Number.isInteger(done) && done >= 0 && done <= total, `done ${done} in range`);
        assert.ok(done >= prev, `done went from ${prev} to ${done}`);
        prev = done;
      }
      assert.deepEqual(calls[calls.length - 1], [n, n]);
      assert.equal(db.size, n);
    });

    it('onProgress runs on the JS thread (can call into the db)', async function () {
      const db = h.openDb({ dimension: 4, metric: 'l2' });
      const seen = [];
      await db.addBatchAsync(h.makeItems(h.randomVectors(2000, 4, 73)), {
        onProgress() {
          seen.push(db.size);
          db.has('v0');
        },
      });
      assert.ok(seen.length >= 1);
      assert.equal(db.size, 2000);
    });

    describe('AbortSignal', function () {
      it('an already aborted signal rejects with AbortError / ERR_ABORTED and inserts nothing', async function () {
        const db = h.openDb({ dimension: 4 });
        const ac = new AbortController();
        ac.abort();
        let progress = 0;
        const err = await h.rejectsCode(() => db.addBatchAsync(h.makeItems(h.randomVectors(100, 4, 74)), {
          signal: ac.signal,
          onProgress() { progress++; },
        }), 'ERR_ABORTED');
        assert.equal(err.name, 'AbortError');
        assert.equal(db.size, 0);
        assert.equal(progress, 0, 'no progress for work that never started');
      });

      it('aborting mid-way rejects with AbortError; what was inserted stays, intact; the db stays usable', async function () {
        this.timeout(60000);
        const dim = 32;
        const n = 8000;
        const vs = h.randomVectors(n, dim, 75);
        const items = h.makeItems(vs);
        /* The abort comes from the first progress report (the binding posts
         * the first tick at once), while seconds of inserts remain. Should the
         * worker still finish first, the batch resolves whole, which an abort
         * allows: try again on a fresh database, up to 3 times. */
        let db;
        let err;
        let lastDone = 0;
        let abortedAt = -1;
        for (let attempt = 0; attempt < 3 && !err; attempt++) {
          db = h.openDb({ dimension: dim, metric: 'l2', index: 'hnsw', hnsw: { efConstruction: 200 } });
          const ac = new AbortController();
          lastDone = 0;
          abortedAt = -1;
          try {
            await db.addBatchAsync(items, {
              signal: ac.signal,
              onProgress(done) {
                lastDone = done;
                if (abortedAt < 0 && done < n) {
                  abortedAt = done;
                  ac.abort();
                }
              },
            });
            assert.equal(db.size, n, 'a batch that resolved inserted everything');
          } catch (e) {
            err = e;
          }
        }
        assert.ok(err, `addBatchAsync resolved in 3 tries although aborted from its first progress report (at done=${abortedAt})`);
        h.assertVecvaultError(err, 'ERR_ABORTED');
        assert.equal(err.name, 'AbortError');
        const size = db.size;
        assert.ok(size < n, `all ${n} inserted despite abort`);
        assert.ok(size >= lastDone, `progress reported ${lastDone} done but size is ${size}`);
        let present = 0;
        vs.forEach((v, i) => {
          const rec = db.get(`v${i}`);
          if (!rec) return;
          present++;
          assert.deepEqual(Array.from(rec.vector), Array.from(v), `v${i} vector`);
          assert.deepEqual(rec.metadata, { i, tag: `v-${i % 7}` }, `v${i} metadata`);
        });
        assert.equal(present, size, 'size counts exactly the items that get() finds');
        /* whatever is in, search sees it and only it */
        const res = db.search(vs[0], 10);
        assert.equal(res.length, Math.min(10, size));
        for (const r of res) assert.ok(db.has(r.id));
        /* and the db keeps working: finish the batch */
        await db.addBatchAsync(items.filter((it) => !db.has(it.id)));
        assert.equal(db.size, n);
        assert.equal(db.search(vs[n - 1], 1)[0].id, `v${n - 1}`);
      });

      it('aborting after completion changes nothing', async function () {
        const db = h.openDb({ dimension: 4 });
        const ac = new AbortController();
        await db.addBatchAsync(h.makeItems(h.randomVectors(50, 4, 76)), { signal: ac.signal });
        ac.abort();
        await drainEventLoop();
        assert.equal(db.size, 50);
      });
    });

    describe('a throwing onProgress', function () {
      it('rejects the promise with that error (or one wrapping it), without crashing', async function () {
        this.timeout(30000);
        const db = h.openDb({ dimension: 16, index: 'hnsw' });
        const boom = new Error('boom from onProgress');
        let caught;
        try {
          await db.addBatchAsync(h.makeItems(h.randomVectors(4000, 16, 77)), {
            onProgress() {
              throw boom;
            },
          });
        } catch (e) {
          caught = e;
        }
        assert.ok(caught, 'promise resolved although onProgress threw');
        const related = caught === boom || caught.cause === boom ||
          (typeof caught.message === 'string' && caught.message.includes('boom from onProgress'));
        assert.ok(related, `rejection does not carry the thrown error: ${h.describeError(caught)}`);
        /* still usable afterwards */
        assert.ok(db.size <= 4000);
        db.add('after', new Float32Array(16).fill(1));
        assert.equal(db.has('after'), true);
        await db.addBatchAsync([{ id: 'after2', vector: new Float32Array(16).fill(2) }]);
        assert.equal(db.has('after2'), true);
      });

      it('a non-Error throw value also rejects', async function () {
        const db = h.openDb({ dimension: 4 });
        let caught = null;
        let rejected = false;
        try {
          await db.addBatchAsync(h.makeItems(h.randomVectors(500, 4, 78)), {
            onProgress() {
              // eslint-disable-next-line no-throw-literal
              throw 'a string';
            },
          });
        } catch (e) {
          rejected = true;
          caught = e;
        }
        assert.ok(rejected, 'resolved although onProgress threw');
        assert.ok(caught === 'a string' || caught instanceof Error, `rejected with ${String(caught)}`);
      });
    });
  });
});
