'use strict';
/*
 * 06.vectordb.async.js: searchAsync, searchBatchAsync and addBatchAsync:
 * same answers as the sync calls, work kept off the JS thread, progress
 * reports, AbortSignal (before and during the work) and a throwing
 * onProgress.
 */
const assert = require('node:assert/strict');
const h = require('./helpers');

/* Counts event-loop turns until stop() is called. */
function loopCounter() {
  let turns = 0;
  let running = true;
  const spin = () => {
    if (!running) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  return { stop: () => { running = false; return turns; } };
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
    it('searchBatchAsync lets the event loop turn while it works', async function () {
      this.timeout(30000);
      const dim = 64;
      const db = h.openDb({ dimension: dim, metric: 'l2', index: 'flat' });
      db.addBatch(h.makeItems(h.randomVectors(20000, dim, 64), 'v', false));
      const queries = h.flatten(h.randomVectors(400, dim, 65), dim);
      const t0 = process.hrtime.bigint();
      const p = db.searchBatchAsync(queries, 10);
      const callMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const counter = loopCounter();
      const res = await p;
      const turns = counter.stop();
      const totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
      assert.equal(res.length, 400);
      assert.ok(turns >= 1, `event loop never turned during ${totalMs.toFixed(0)} ms of searching`);
      assert.ok(callMs < totalMs / 2, `the call itself blocked for ${callMs.toFixed(0)} of ${totalMs.toFixed(0)} ms`);
    });

    it('addBatchAsync lets the event loop turn while it works', async function () {
      this.timeout(30000);
      const db = h.openDb({ dimension: 32, metric: 'cosine', index: 'hnsw' });
      const items = h.makeItems(h.randomVectors(8000, 32, 66));
      const p = db.addBatchAsync(items);
      const counter = loopCounter();
      await p;
      const turns = counter.stop();
      assert.equal(db.size, 8000);
      assert.ok(turns >= 1, 'event loop never turned while inserting 8000 vectors into HNSW');
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
      await h.sleep(20);
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
        const db = h.openDb({ dimension: dim, metric: 'l2', index: 'hnsw', hnsw: { efConstruction: 200 } });
        const vs = h.randomVectors(n, dim, 75);
        const items = h.makeItems(vs);
        const ac = new AbortController();
        let lastDone = 0;
        let abortedAt = -1;
        const p = db.addBatchAsync(items, {
          signal: ac.signal,
          onProgress(done) {
            lastDone = done;
            if (abortedAt < 0 && done > 0 && done < n) {
              abortedAt = done;
              ac.abort();
            }
          },
        });
        /* progress may be coarse: abort soon after the start regardless */
        setTimeout(() => { if (abortedAt < 0) { abortedAt = 0; ac.abort(); } }, 30);
        let err;
        try {
          await p;
        } catch (e) {
          err = e;
        }
        assert.ok(err, `addBatchAsync resolved although it was aborted (at done=${abortedAt}) before finishing`);
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
        await h.sleep(5);
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
