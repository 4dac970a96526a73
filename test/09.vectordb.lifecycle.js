'use strict';
/*
 * 09.vectordb.lifecycle.js: close(), close() racing async work, garbage
 * collection of unclosed databases, process exit and worker_threads
 * teardown with work in flight.
 *
 * Everything that could crash the process runs in a child (see
 * test/helpers/children/): a segfault there fails one test with its output
 * instead of killing mocha.
 */
const assert = require('node:assert/strict');
const h = require('./helpers');

describe('09 VectorDB lifecycle', function () {
  describe('close()', function () {
    it('sets closed, and a second close is a no-op', function () {
      const db = h.openDb({ dimension: 3 });
      db.add('a', [1, 2, 3]);
      assert.equal(db.closed, false);
      assert.equal(db.close(), undefined);
      assert.equal(db.closed, true);
      assert.doesNotThrow(() => db.close());
      assert.equal(db.closed, true);
    });

    it('after close, every method fails with ERR_CLOSED', function () {
      const db = h.openDb({ dimension: 2 });
      db.add('a', [1, 0]);
      db.close();
      h.throwsCode(() => db.get('a'), 'ERR_CLOSED');
      h.throwsCode(() => db.search([1, 0], 1), 'ERR_CLOSED');
    });

    it('closing one db leaves others working', function () {
      const a = h.openDb({ dimension: 2, metric: 'l2' });
      const b = h.openDb({ dimension: 2, metric: 'l2' });
      a.add('x', [1, 1]);
      b.add('y', [2, 2]);
      a.close();
      assert.equal(b.size, 1);
      assert.equal(b.search([2, 2], 1)[0].id, 'y');
      b.add('z', [3, 3]);
      assert.equal(b.size, 2);
    });

    it('closing an empty db and a db with data both work', function () {
      const empty = h.openDb({ dimension: 8 });
      empty.close();
      const full = h.openDb({ dimension: 8, index: 'hnsw' });
      full.addBatch(h.makeItems(h.randomVectors(3000, 8, 1)));
      full.close();
      assert.equal(empty.closed && full.closed, true);
    });
  });

  describe('close() while async work is in flight (child process)', function () {
    it('every in-flight promise settles cleanly; later calls get ERR_CLOSED; no crash or hang', async function () {
      this.timeout(60000);
      const run = await h.runChild('close-inflight', { timeoutMs: 55000 });
      const r = h.assertChildOk(run, 'close-inflight');
      assert.equal(r.hung, 0, 'some in-flight promise never settled after close()');
      assert.equal(r.rounds, 16);
      assert.deepEqual(r.foreign, [], 'in-flight work rejected with something other than a VecvaultError');
      assert.equal(r.badResults, 0, 'a search that resolved after close() returned malformed results');
      assert.equal(r.closedFlag, true, 'closed was not true right after close()');
      assert.equal(r.secondCloseThrew, 0, 'a second close() threw');
      const codes = Object.keys(r.afterClose);
      assert.deepEqual(codes, ['ERR_CLOSED'], `calls after close: ${JSON.stringify(r.afterClose)}`);
      for (const code of Object.keys(r.rejected)) {
        assert.ok(['ERR_CLOSED', 'ERR_ABORTED'].includes(code), `in-flight work rejected with ${code}`);
      }
    });
  });

  describe('garbage collection (child process, --expose-gc)', function () {
    this.timeout(60000);

    for (const phase of ['drop', 'close', 'hnsw-drop']) {
      it(`${phase}: RSS stays bounded over many databases with data`, async function () {
        const run = await h.runChild('gc-leak', { args: [phase], execArgv: ['--expose-gc'], timeoutMs: 55000 });
        const r = h.assertChildOk(run, `gc-leak ${phase}`);
        const limit = r.leakIfNothingFreedMb * (phase === 'hnsw-drop' ? 0.4 : 0.25);
        assert.ok(r.growthMb < limit,
          `RSS grew ${r.growthMb.toFixed(1)} MB over ${r.measured} dbs ` +
          `(${r.leakIfNothingFreedMb.toFixed(0)} MB if nothing were freed; limit ${limit.toFixed(0)} MB; ` +
          `${r.collected} of ${r.iterations} wrappers collected)`);
        if (phase !== 'close') {
          assert.ok(r.collected >= r.iterations / 2,
            `only ${r.collected} of ${r.iterations} unclosed VectorDB objects were collected`);
        }
      });
    }

    it('a db dropped while async work runs is kept alive until the work completes', async function () {
      const run = await h.runChild('gc-pending', { execArgv: ['--expose-gc'], timeoutMs: 55000 });
      const r = h.assertChildOk(run, 'gc-pending');
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(r.lists, 300);
      assert.equal(r.selfTop1, 300, 'searchBatchAsync results were wrong after GC');
      assert.equal(r.one, 'v7');
      assert.equal(r.addedSize, 5000);
    });
  });

  describe('process and thread teardown (child process)', function () {
    this.timeout(60000);

    it('process.exit() with work in flight exits with status 0', async function () {
      const run = await h.runChild('exit-pending', { args: ['exit'] });
      const r = h.assertChildOk(run, 'exit-pending exit');
      assert.equal(r.mode, 'exit');
    });

    it('a script that never closes its dbs finishes its pending work and exits with status 0', async function () {
      const run = await h.runChild('exit-pending', { args: ['natural'] });
      const r = h.assertChildOk(run, 'exit-pending natural');
      assert.equal(r.settled, r.pending, 'the process exited before its pending work settled');
    });

    it('works in worker_threads, and survives a worker terminated mid-work', async function () {
      const run = await h.runChild('workers');
      const r = h.assertChildOk(run, 'workers');
      for (const key of ['a', 'b']) {
        assert.equal(r[key].code, 0, `worker ${key} exit code`);
        assert.ok(r[key].result && !r[key].result.error, `worker ${key}: ${JSON.stringify(r[key].result)}`);
        /* a is HNSW (approximate), b is flat (exact) */
        assert.ok(r[key].result.self >= (key === 'a' ? 98 : 100), `worker ${key} self top-1: ${r[key].result.self}/100`);
        assert.equal(r[key].result.closedOk, true);
      }
      assert.ok(r.main.self >= 98, `main thread (HNSW) self top-1: ${r.main.self}/100`);
      assert.equal(r.after.self, 100);
      assert.equal(r.after.closedOk, true);
      assert.equal(r.killed.code, 1, 'terminated worker exits with code 1');
    });
  });
});
