'use strict';
/*
 * 07.vectordb.concurrency.js: async adds, upserts and searches in flight on
 * worker threads while the JS thread adds, deletes, upserts and searches
 * synchronously. Afterwards the db must match a model of what was done:
 * same size, every live id readable with its own vector and metadata (never
 * one item's vector with another write's metadata) and findable by its own
 * vector, no deleted id ever returned by any search.
 *
 * The id groups keep the expected end state exact despite the races:
 *   s*  touched only by sync calls (add, upsert, delete), in program order
 *   a*  inserted only by async batches, one batch per id
 *   u*  added sync at the start, then upserted by exactly one async batch
 *   c*  written by an async batch and a sync add at about the same time:
 *       either write may win, but the winner must be whole
 */
const assert = require('node:assert/strict');
const h = require('./helpers');

const DIM = 16;

async function runScenario(index, seed) {
  const db = h.openDb({ dimension: DIM, metric: 'l2', index, threads: 2 });
  const r = h.rng(seed);
  const vec = () => {
    const v = new Float32Array(DIM);
    for (let j = 0; j < DIM; j++) v[j] = r() * 2 - 1;
    return v;
  };
  const model = new Map(); /* id -> { vector, metadata } */
  const contested = new Map(); /* id -> [candidate, candidate] */
  const gone = new Set(); /* deleted and never written again */
  const goneVectors = new Map();
  const pending = [];
  const failures = [];

  /* A search's results may include anything live at some point during the
   * call, but never an id that was gone before the call started. */
  const checkResults = (res, goneAtCall, k, what) => {
    if (!Array.isArray(res)) { failures.push(`${what}: not an array`); return; }
    if (res.length !== k) failures.push(`${what}: ${res.length} results, wanted ${k}`);
    const seen = new Set();
    res.forEach((x, i) => {
      if (goneAtCall.has(x.id)) failures.push(`${what}: returned deleted id ${x.id}`);
      if (seen.has(x.id)) failures.push(`${what}: ${x.id} twice`);
      seen.add(x.id);
      if (i > 0 && x.distance < res[i - 1].distance) failures.push(`${what}: not sorted`);
    });
  };
  const track = (p, what) => {
    pending.push(p.catch((e) => failures.push(`${what}: rejected: ${h.describeError(e)}`)));
  };

  /* start: 600 s* and 200 u* ids, sync */
  for (let i = 0; i < 600; i++) {
    const item = { vector: vec(), metadata: { id: `s${i}`, gen: 0 } };
    db.add(`s${i}`, item.vector, item.metadata);
    model.set(`s${i}`, item);
  }
  for (let i = 0; i < 200; i++) {
    const item = { vector: vec(), metadata: { id: `u${i}`, gen: 0 } };
    db.add(`u${i}`, item.vector, item.metadata);
    model.set(`u${i}`, item);
  }
  let nextS = 600;

  for (let round = 0; round < 12; round++) {
    /* async: 150 new a* items, 15 u* upserts, 5 c* writes */
    const batch = [];
    for (let i = 0; i < 150; i++) {
      const id = `a${round}_${i}`;
      const item = { id, vector: vec(), metadata: { id, gen: round } };
      batch.push(item);
      model.set(id, { vector: item.vector, metadata: item.metadata });
    }
    for (let i = 0; i < 15; i++) {
      const id = `u${round * 15 + i}`;
      const item = { id, vector: vec(), metadata: { id, gen: round + 1 } };
      batch.push(item);
      model.set(id, { vector: item.vector, metadata: item.metadata });
    }
    const cIds = [];
    for (let i = 0; i < 5; i++) {
      const id = `c${round}_${i}`;
      const item = { id, vector: vec(), metadata: { id, by: 'async' } };
      batch.push(item);
      cIds.push(id);
      contested.set(id, [{ vector: item.vector, metadata: item.metadata }]);
    }
    /* shuffle so the writes are spread through the batch */
    for (let i = batch.length - 1; i > 0; i--) {
      const j = r.int(i + 1);
      [batch[i], batch[j]] = [batch[j], batch[i]];
    }
    let lastDone = -1;
    track(db.addBatchAsync(batch, {
      onProgress(done, total) {
        if (done < lastDone || total !== batch.length) failures.push(`progress ${done}/${total} after ${lastDone}`);
        lastDone = done;
      },
    }), `addBatchAsync round ${round}`);

    /* async searches, checked when they land */
    for (let q = 0; q < 4; q++) {
      const query = vec();
      const goneAtCall = new Set(gone);
      track(db.searchAsync(query, 10).then((res) => checkResults(res, goneAtCall, 10, `searchAsync r${round}`)),
        'searchAsync');
    }
    {
      const queries = [vec(), vec(), vec()];
      const goneAtCall = new Set(gone);
      track(db.searchBatchAsync(queries, 5).then((lists) => {
        if (lists.length !== 3) failures.push('searchBatchAsync: wrong number of lists');
        lists.forEach((l) => checkResults(l, goneAtCall, 5, `searchBatchAsync r${round}`));
      }), 'searchBatchAsync');
    }
    /* a search aimed straight at a deleted vector */
    if (goneVectors.size) {
      const [id, v] = [...goneVectors][r.int(goneVectors.size)];
      const goneAtCall = new Set(gone);
      track(db.searchAsync(v, 3).then((res) => {
        checkResults(res, goneAtCall, 3, `searchAsync at deleted ${id}`);
      }), 'searchAsync at deleted');
    }

    /* sync work on s* and c* while all that runs */
    for (let step = 0; step < 40; step++) {
      const op = r();
      if (op < 0.3) {
        const id = `s${nextS++}`;
        const item = { vector: vec(), metadata: { id, gen: round } };
        db.add(id, item.vector, item.metadata);
        model.set(id, item);
      } else if (op < 0.55) {
        const live = [...model.keys()].filter((k) => k.startsWith('s'));
        const id = live[r.int(live.length)];
        const item = { vector: vec(), metadata: { id, gen: round, upserted: true } };
        db.add(id, item.vector, item.metadata);
        model.set(id, item);
      } else if (op < 0.8) {
        const live = [...model.keys()].filter((k) => k.startsWith('s'));
        const id = live[r.int(live.length)];
        const removed = db.delete(id);
        if (removed !== true) failures.push(`delete(${id}) returned ${removed}`);
        goneVectors.set(id, model.get(id).vector);
        model.delete(id);
        gone.add(id);
      } else if (op < 0.9) {
        const goneAtCall = new Set(gone);
        checkResults(db.search(vec(), 10), goneAtCall, 10, 'sync search');
      } else {
        const goneAtCall = new Set(gone);
        db.searchBatch([vec(), vec()], 4).forEach((l) => checkResults(l, goneAtCall, 4, 'sync searchBatch'));
      }
      if (step % 10 === 9) await h.tick();
    }
    /* the sync half of the contested writes */
    for (const id of cIds) {
      const item = { vector: vec(), metadata: { id, by: 'sync' } };
      db.add(id, item.vector, item.metadata);
      contested.get(id).push(item);
    }
    if (round % 3 === 2) await h.tick();
  }

  await Promise.all(pending);
  assert.deepEqual(failures, [], `${failures.length} failures during the run:\n${failures.slice(0, 20).join('\n')}`);

  /* end state */
  assert.equal(db.size, model.size + contested.size, 'size');
  for (const [id, want] of model) {
    const rec = db.get(id);
    assert.ok(rec, `${id} missing`);
    assert.deepEqual(Array.from(rec.vector), Array.from(want.vector), `${id} vector`);
    assert.deepEqual(rec.metadata, want.metadata, `${id} metadata`);
  }
  const finalVectors = new Map();
  for (const [id, candidates] of model) finalVectors.set(id, candidates.vector);
  for (const [id, candidates] of contested) {
    const rec = db.get(id);
    assert.ok(rec, `${id} missing`);
    const winner = candidates.find((c) => c.vector.every((x, j) => x === rec.vector[j]));
    assert.ok(winner, `${id}: stored vector is neither write`);
    assert.deepEqual(rec.metadata, winner.metadata, `${id}: metadata from the other write than the vector`);
    finalVectors.set(id, rec.vector);
  }
  for (const id of gone) {
    assert.equal(db.has(id), false, `${id} deleted but has() is true`);
    assert.equal(db.get(id), null, `${id} deleted but get() finds it`);
  }

  /* findable by its own vector */
  let selfHits = 0;
  for (const [id, v] of finalVectors) {
    const [top] = db.search(v, 1, { efSearch: 200 });
    if (top && top.id === id && top.distance === 0) selfHits++;
    else if (index === 'flat') assert.fail(`${id}: exact search for its own vector returned ${top && top.id}`);
  }
  assert.ok(selfHits / finalVectors.size >= 0.98, `self top-1 ${selfHits}/${finalVectors.size}`);

  /* deleted vectors never come back */
  for (const [id, v] of goneVectors) {
    for (const x of db.search(v, 10, { efSearch: 200 })) assert.ok(!gone.has(x.id), `search near ${id} returned deleted ${x.id}`);
  }

  /* k above size lists every live id exactly once */
  const everything = db.search(new Float32Array(DIM), finalVectors.size + 100);
  assert.equal(everything.length, finalVectors.size);
  assert.deepEqual(new Set(everything.map((x) => x.id)), new Set(finalVectors.keys()));
  if (index === 'flat') {
    for (const q of h.randomVectors(5, DIM, seed + 1)) h.assertMatchesReference(db.search(q, 10), finalVectors, q, 10, 'l2');
  }
  return { size: db.size, gone: gone.size };
}

describe('07 VectorDB concurrency', function () {
  this.timeout(60000);

  it('flat: async adds/upserts/searches interleaved with sync add/delete/upsert/search', async function () {
    const { gone } = await runScenario('flat', 1001);
    assert.ok(gone > 50, 'the scenario deleted enough to matter');
  });

  it('hnsw: the same scenario', async function () {
    await runScenario('hnsw', 2002);
  });

  it('concurrent async batches on one db, with no awaits in between', async function () {
    const db = h.openDb({ dimension: 8, metric: 'l2', index: 'hnsw' });
    const batches = [];
    for (let b = 0; b < 8; b++) batches.push(h.makeItems(h.randomVectors(500, 8, 300 + b), `b${b}_`));
    await Promise.all(batches.map((items) => db.addBatchAsync(items)));
    assert.equal(db.size, 4000);
    for (const items of batches) {
      for (const it of items.slice(0, 50)) {
        assert.deepEqual(Array.from(db.get(it.id).vector), Array.from(it.vector));
      }
    }
  });

  for (const index of h.INDEXES) {
    it(`${index}: two async batches writing the same ids at once: each id ends whole, from one of them`, async function () {
      const db = h.openDb({ dimension: 8, metric: 'l2', index });
      const n = 1500;
      const mk = (seed, tag) => h.randomVectors(n, 8, seed).map((vector, i) => ({ id: `shared${i}`, vector, metadata: { tag, i } }));
      const one = mk(501, 'one');
      const two = mk(502, 'two');
      await Promise.all([db.addBatchAsync(one), db.addBatchAsync(two), db.searchBatchAsync(one.slice(0, 50).map((x) => x.vector), 5)]);
      assert.equal(db.size, n);
      const finals = new Map();
      for (let i = 0; i < n; i++) {
        const rec = db.get(`shared${i}`);
        const from = rec.metadata.tag === 'one' ? one[i] : two[i];
        assert.deepEqual(Array.from(rec.vector), Array.from(from.vector), `shared${i}: vector and metadata from different writes`);
        finals.set(`shared${i}`, rec.vector);
      }
      const all = db.search(new Float32Array(8), n + 10);
      assert.equal(all.length, n);
      assert.equal(new Set(all.map((x) => x.id)).size, n, 'an id is listed twice');
      let self = 0;
      for (const [id, v] of finals) {
        const [top] = db.search(v, 1, { efSearch: 200 });
        if (top.id === id && top.distance === 0) self++;
      }
      assert.ok(self / n >= (index === 'flat' ? 1 : 0.98), `self top-1 ${self}/${n}`);
    });
  }

  it('two dbs working at once do not see each other\'s data', async function () {
    const a = h.openDb({ dimension: 8, metric: 'l2', index: 'flat' });
    const b = h.openDb({ dimension: 8, metric: 'l2', index: 'hnsw' });
    const va = h.randomVectors(2000, 8, 401);
    const vb = h.randomVectors(2000, 8, 402);
    await Promise.all([
      a.addBatchAsync(h.makeItems(va, 'a')),
      b.addBatchAsync(h.makeItems(vb, 'b')),
      a.searchBatchAsync(vb.slice(0, 20), 5),
      b.searchBatchAsync(va.slice(0, 20), 5),
    ]);
    assert.equal(a.size, 2000);
    assert.equal(b.size, 2000);
    const [ra, rb] = await Promise.all([a.searchBatchAsync(va.slice(0, 50), 3), b.searchBatchAsync(vb.slice(0, 50), 3)]);
    ra.forEach((l, i) => {
      assert.equal(l[0].id, `a${i}`);
      for (const x of l) assert.ok(x.id.startsWith('a'));
    });
    rb.forEach((l) => { for (const x of l) assert.ok(x.id.startsWith('b')); });
  });
});
