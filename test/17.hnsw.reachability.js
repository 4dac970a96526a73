'use strict';
/*
 * 17.hnsw.reachability.js: a graph built with several threads finds every
 * vector it holds (parallel inserts once orphaned nodes). Searching each stored vector for
 * itself with k = 1 and a beam as wide as the database must return that
 * vector, or one at distance 0 (an exact duplicate). Before the fix, parallel
 * inserts could orphan a node, which then no search found at any efSearch.
 * The C tests (test/c/test_concurrency_hnsw.c) check the graph itself.
 */
const assert = require('node:assert/strict');
const h = require('./helpers');

/* A few tight clusters, every seventh vector an exact copy of an earlier
 * one: ties and near-ties make the neighbour heuristic prune hard. */
function nearDuplicates(n, dim, seed) {
  const r = h.rng(seed);
  const centres = [];
  for (let c = 0; c < 6; c++) centres.push(Float32Array.from({ length: dim }, () => r() * 2 - 1));
  const out = [];
  for (let i = 0; i < n; i++) {
    if (i % 7 === 6) {
      out.push(Float32Array.from(out[r.int(i)]));
      continue;
    }
    const c = centres[r.int(centres.length)];
    out.push(Float32Array.from(c, (x) => x + (r() - 0.5) * 2e-4));
  }
  return out;
}

/* The ids whose self-search misses. */
function selfSearchMisses(db, vectors, ids) {
  const missed = [];
  for (const [i, v] of vectors.entries()) {
    const [hit] = db.search(v, 1, { efSearch: Math.max(vectors.length, 1) });
    if (!hit || (hit.id !== ids[i] && hit.distance > 1e-6)) missed.push(ids[i]);
  }
  return missed;
}

function buildAndCheck(vectors, options) {
  const db = h.openDb({ dimension: vectors[0].length, ...options });
  const items = h.makeItems(vectors, 'v', false);
  db.addBatch(items);
  assert.equal(db.size, vectors.length);
  const missed = selfSearchMisses(db, vectors, items.map((it) => it.id));
  db.close();
  return missed;
}

describe('17 HNSW: every stored vector is found after a parallel build', function () {
  it('100 graphs of 120 near-duplicates, threads: 2 (where parallel builds used to orphan nodes)', function () {
    let badGraphs = 0;
    let misses = 0;
    for (let g = 0; g < 100; g++) {
      const missed = buildAndCheck(nearDuplicates(120, 16, 100 + g), {
        threads: 2,
        metric: g % 2 ? 'l2' : 'cosine',
      });
      if (missed.length) badGraphs++;
      misses += missed.length;
    }
    assert.equal(misses, 0, `${misses} self-search misses in ${badGraphs} of 100 graphs`);
  });

  it('8 graphs of 1,000 random 16-D vectors, threads: 2', function () {
    let misses = 0;
    for (let g = 0; g < 8; g++) {
      misses += buildAndCheck(h.randomVectors(1000, 16, 700 + g), { threads: 2, metric: g % 2 ? 'cosine' : 'l2' }).length;
    }
    assert.equal(misses, 0, `${misses} self-search misses in 8,000`);
  });

  it('default options (all cores) build a complete graph too', function () {
    let misses = 0;
    for (let g = 0; g < 50; g++) misses += buildAndCheck(nearDuplicates(120, 16, 900 + g), {}).length;
    assert.equal(misses, 0);
  });

  it('stays complete through deletes, consolidation and slot reuse', function () {
    let misses = 0;
    for (let g = 0; g < 20; g++) {
      const vectors = nearDuplicates(120, 16, 1300 + g);
      const db = h.openDb({ dimension: 16, metric: 'l2', threads: 2 });
      const items = h.makeItems(vectors, 'v', false);
      db.addBatch(items);
      /* A third deleted: the next batch consolidates, then reuses the slots. */
      for (let i = 0; i < items.length; i += 3) assert.equal(db.delete(items[i].id), true);
      const live = items.filter((_, i) => i % 3 !== 0);
      misses += selfSearchMisses(db, live.map((it) => it.vector), live.map((it) => it.id)).length;
      const fresh = nearDuplicates(60, 16, 5300 + g);
      const added = fresh.map((vector, i) => ({ id: `w${i}`, vector }));
      db.addBatch(added);
      const all = live.concat(added);
      assert.equal(db.size, all.length);
      misses += selfSearchMisses(db, all.map((it) => it.vector), all.map((it) => it.id)).length;
      db.close();
    }
    assert.equal(misses, 0);
  });
});
