'use strict';
/*
 * test/helpers/filter-db.js: what the filtered-search and data-API suites
 * (36, 37) and their child scripts share.
 *
 * Owns: building a database of random vectors and hard random metadata
 * (filter-ref.js's generators) with a JS mirror of its live contents; the
 * reference answers over that mirror (which ids a filter matches, the exact
 * filtered top-k); and the checks every filtered result list must pass:
 * exactly min(k, matching) hits, sorted by distance, each one live and
 * matching per the reference, each at the distance reported for it. No
 * mocha globals: child scripts require it too.
 */
const assert = require('node:assert/strict');
const h = require('./index');
const ref = require('./filter-ref');

/* Metadata as the database gives it back: through JSON, absent as null. */
function stored(meta) {
  const json = JSON.stringify(meta);
  return json === undefined ? null : JSON.parse(json);
}

/**
 * A database of `n` random vectors with random metadata over ref.FIELDS,
 * a fraction `deleted` of them deleted again. Returns { db, live } with
 * `live` a Map id -> { vector, metadata } of the live vectors.
 */
function buildDb({ metric = 'l2', index = 'hnsw', n = 1000, dim = 12, seed = 1, deleted = 0.1, open = h.openDb, extra = {} } = {}) {
  const db = open({ dimension: dim, metric, index, filterable: [...ref.FIELDS], encryptAtRest: false, ...extra });
  const r = ref.rng(seed);
  const vectors = h.randomVectors(n, dim, seed + 1000);
  const live = new Map();
  const items = vectors.map((vector, i) => {
    const metadata = ref.randomMetadata(r);
    live.set(`v${i}`, { vector, metadata: stored(metadata) });
    return metadata === undefined ? { id: `v${i}`, vector } : { id: `v${i}`, vector, metadata };
  });
  db.addBatch(items);
  for (let i = 0; i < n; i++) {
    if (r() < deleted) {
      db.delete(`v${i}`);
      live.delete(`v${i}`);
    }
  }
  return { db, live };
}

/** The ids of `live` that `filter` matches, per the reference. */
function matchingIds(live, filter, fields = ref.FIELDS) {
  const out = [];
  for (const [id, e] of live) if (ref.matches(filter, e.metadata, fields)) out.push(id);
  return out;
}

/** The exact filtered top-k: [{ id, distance, score }], nearest first. */
function exactTopK(live, filter, query, k, metric, fields = ref.FIELDS) {
  const entries = [];
  for (const id of matchingIds(live, filter, fields)) entries.push([id, live.get(id).vector]);
  return h.bruteForce(entries, query, k, metric);
}

/**
 * The invariants of any filtered search: exactly min(k, matching) hits (or,
 * with `bounded`, at most that), distinct, sorted, live, matching, each at
 * its own distance. Returns the number of matching live vectors.
 */
function checkFiltered(results, { live, filter, query, k, metric, what, bounded = false, matching, fields = ref.FIELDS }) {
  const want = matching === undefined ? matchingIds(live, filter, fields).length : matching;
  assert.ok(Array.isArray(results), `${what}: not an array`);
  if (bounded) assert.ok(results.length <= Math.min(k, want), `${what}: ${results.length} hits, more than min(${k}, ${want})`);
  else assert.equal(results.length, Math.min(k, want), `${what}: exactly min(k=${k}, matching=${want}) results`);
  const seen = new Set();
  for (let i = 0; i < results.length; i++) {
    const hit = results[i];
    assert.ok(!seen.has(hit.id), `${what}: ${hit.id} twice`);
    seen.add(hit.id);
    const e = live.get(hit.id);
    assert.ok(e, `${what}: ${hit.id} is not live`);
    assert.ok(ref.matches(filter, e.metadata, fields), `${what}: ${hit.id} (${JSON.stringify(e.metadata)}) does not match`);
    if (i > 0) assert.ok(hit.distance >= results[i - 1].distance, `${what}: not sorted at ${i}`);
    h.assertClose(hit.distance, h.measure(metric, query, e.vector).distance, `${what}: ${hit.id}'s distance`);
  }
  return want;
}

/** Results equal the exact answer up to float rounding: compared by distance, rank by rank. */
function checkExact(results, expected, what) {
  assert.equal(results.length, expected.length, `${what}: length`);
  for (let i = 0; i < results.length; i++) h.assertClose(results[i].distance, expected[i].distance, `${what}: rank ${i}`);
}

/* A query vector of `dim` components from the seeded generator r. */
function randomQuery(r, dim) {
  return Float32Array.from({ length: dim }, () => r() * 2 - 1);
}

/**
 * The differential test of filtered search: for `filters` seeded random
 * filters, count(filter) equals the reference's count over the live
 * vectors, and search under every plan in `plans` passes checkFiltered;
 * `plan: 'scan'` also equals the exact filtered top-k. Returns how many
 * filters matched none, fewer than k, and at least k (so a caller can
 * check that the filters were not all trivial).
 */
function differential(db, live, { metric, seed = 7, filters = 30, plans = PLANS, what = '' }) {
  const r = ref.rng(seed);
  const spread = { none: 0, fewer: 0, more: 0 };
  for (let t = 0; t < filters; t++) {
    const filter = ref.randomFilter(r, ref.FIELDS);
    const label = `${what} filter ${t} ${JSON.stringify(filter)}`;
    const matching = matchingIds(live, filter).length;
    assert.equal(db.count(filter), matching, `${label}: count`);
    const query = randomQuery(r, db.dimension);
    const k = t % 3 === 0 ? 40 : 10;
    spread[matching === 0 ? 'none' : matching < k ? 'fewer' : 'more']++;
    for (const plan of plans) {
      const res = db.search(query, k, { filter, plan });
      checkFiltered(res, { live, filter, query, k, metric, matching, what: `${label} plan ${plan}` });
      if (plan === 'scan') checkExact(res, exactTopK(live, filter, query, k, metric), `${label} plan scan vs brute force`);
    }
  }
  return spread;
}

const PLANS = ['auto', 'scan', 'graph', 'acorn'];

module.exports = { stored, buildDb, matchingIds, exactTopK, checkFiltered, checkExact, randomQuery, differential, PLANS };
