'use strict';
/*
 * 36.filter.search.js: filtered search and range search, end to end.
 *
 * Owns: the differential test of count(filter) and search({ filter }) under
 * every plan against the reference evaluator (test/helpers/filter-ref.js),
 * eager and lazy, each metric and index; recall of the planner's choice
 * against the exact filtered answer from 50% down to 0.01% selectivity;
 * eager and lazy sessions agreeing; a lazy session deciding matches without
 * reading a page; filterable fields and values surviving full and
 * incremental saves (and the format version they need); range search
 * (maxDistance, minScore); the async and batch variants; typed errors for
 * bad and hostile filters and options; filtered searches running while
 * writers change the database.
 */
const assert = require('node:assert/strict');
const h = require('./helpers');
const s = require('./helpers/session');
const ref = require('./helpers/filter-ref');
const fdb = require('./helpers/filter-db');

const { VectorDB } = h.vecvault();

async function lazyCopy(db, tag) {
  const dir = s.tmpDir(tag);
  await db.save(dir);
  const lazy = await s.loadDb(dir, { lazy: true });
  assert.equal(lazy.loadStats.lazy, true, 'loaded lazily');
  return { lazy, dir };
}

describe('36 filtered search', function () {
  this.timeout(120000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  describe('differential against the reference evaluator', function () {
    for (const metric of h.METRICS) {
      for (const index of h.INDEXES) {
        it(`${metric}, ${index}, eager: count and every plan agree with the reference`, function () {
          const { db, live } = fdb.buildDb({ metric, index, n: 1200, seed: 11 });
          const spread = fdb.differential(db, live, { metric, seed: 12, filters: 36, what: `${metric} ${index} eager` });
          assert.ok(spread.none > 0 && spread.fewer > 0 && spread.more > 0, `filters of every kind: ${JSON.stringify(spread)}`);
        });
      }
      it(`${metric}, hnsw, lazy: count and every plan agree with the reference`, async function () {
        const { db, live } = fdb.buildDb({ metric, index: 'hnsw', n: 1200, seed: 21 });
        const { lazy } = await lazyCopy(db, 'flz');
        const spread = fdb.differential(lazy, live, { metric, seed: 22, filters: 36, what: `${metric} hnsw lazy` });
        assert.ok(spread.none > 0 && spread.fewer > 0 && spread.more > 0, `filters of every kind: ${JSON.stringify(spread)}`);
      });
      /* In a child: a crash here must fail this test only. */
      it(`${metric}, flat, lazy: count and every plan agree with the reference (child process)`, async function () {
        const run = await h.runChild('filter-lazy-flat', { args: [metric] });
        const result = h.assertChildOk(run, `lazy flat ${metric}`);
        assert.equal(result.ok, true, result.error);
      });
    }

    it('the fields of the data: unicode, nested paths through arrays, missing, null, mixed types', function () {
      /* A fixed table on top of the random one: each row is a case the
       * encoder and the program must get right, checked by the reference. */
      const db = h.openDb({ dimension: 4, metric: 'l2', filterable: ['lang', 'year', 'tags', 'author.name'] });
      const metas = [
        { lang: 'en', year: 2021, tags: ['a', 'b'], author: { name: 'x' } },
        { lang: '\u{1F600}', year: '2021', tags: 'a', author: [{ name: 'x' }, { name: 'y' }] },
        { lang: '\uFFFF', year: null, tags: [], author: [[{ name: 'x' }]] },
        { lang: null, year: -0, tags: [['a']], author: { name: null } },
        { year: 1.5, tags: [{ v: 'a' }, 'c'], author: 'x' },
        { lang: 'é', year: [2020, '2022'], author: {} },
        { lang: 'e\u0301', year: true, tags: ['a', 'a', null] },
        null,
      ];
      const live = new Map();
      metas.forEach((m, i) => {
        const vector = Float32Array.from([i, 1, 0, 0]);
        db.add(`m${i}`, vector, m);
        live.set(`m${i}`, { vector, metadata: m });
      });
      const filters = [
        { lang: 'en' }, { lang: null }, { lang: { $exists: false } }, { lang: { $gt: '\uFFFF' } }, { lang: { $lt: '\u{1F600}' } },
        { lang: '\ud800' }, { year: 2021 }, { year: '2021' }, { year: 0 }, { year: { $gte: 1 } }, { year: { $lt: '2022' } },
        { year: null }, { year: { $ne: null } }, { year: true }, { tags: 'a' }, { tags: { $exists: true } }, { tags: null },
        { tags: { $nin: ['a', 'c'] } }, { 'author.name': 'x' }, { 'author.name': null }, { 'author.name': { $exists: true } },
        { 'author.name': { $in: ['y', null] } }, { $not: { lang: 'en' } }, { year: { $not: { $gt: 2000 } } },
        { $or: [{ lang: 'é' }, { tags: 'c' }] }, { $and: [{ tags: 'a' }, { year: { $exists: true } }] },
      ];
      for (const filter of filters) {
        const want = fdb.matchingIds(live, filter);
        assert.equal(db.count(filter), want.length, `count ${JSON.stringify(filter)}`);
        const got = db.search([0, 1, 0, 0], 20, { filter }).map((r) => r.id).sort();
        assert.deepEqual(got, want.sort(), `search ${JSON.stringify(filter)}`);
      }
    });
  });

  describe('selectivity from 50% to 0.01%', function () {
    /* 20000 vectors, a numeric field `sel` uniform over 0..9999 and
     * unrelated to the vectors: each bucket's filter matches a known share. */
    const N = 20000;
    const DIM = 16;
    const METRIC = 'cosine';
    const BUCKETS = [
      ['50%', { sel: { $lt: 5000 } }],
      ['10%', { sel: { $gte: 9000 } }],
      ['1%', { sel: { $in: Array.from({ length: 100 }, (_, i) => i * 97) } }],
      ['0.1%', { $and: [{ sel: { $gte: 4000 } }, { sel: { $lt: 4010 } }] }],
      ['0.01%', { sel: 7777 }],
    ];
    const QUERIES = 16;
    const FIELDS = ['sel', 'cat'];
    const matchingIds = (filter) => fdb.matchingIds(live, filter, FIELDS);
    const check = (results, filter, query, what, matching) =>
      fdb.checkFiltered(results, { live, filter, query, k: 10, metric: METRIC, matching, what, fields: FIELDS });
    let eager;
    let lazy;
    let live;
    let queries;

    before(async function () {
      const vectors = h.clusteredVectors(N, DIM, { seed: 5, clusters: 40 });
      live = new Map();
      eager = new VectorDB({ dimension: DIM, metric: METRIC, filterable: FIELDS, encryptAtRest: false });
      eager.addBatch(vectors.map((vector, i) => {
        const metadata = { sel: i % 10000, cat: `c${i % 3}` };
        live.set(`v${i}`, { vector, metadata });
        return { id: `v${i}`, vector, metadata };
      }));
      const dir = s.tmpDir('fsel');
      await eager.save(dir);
      lazy = await VectorDB.load(dir, { lazy: true });
      queries = h.clusteredVectors(QUERIES, DIM, { seed: 5, clusters: 40 }).map((q, i) => {
        const noisy = Float32Array.from(q, (x, j) => x + 0.3 * Math.sin(i * 7 + j));
        return noisy;
      });
    });
    after(function () {
      if (eager) eager.close();
      if (lazy) lazy.close();
    });

    /* Runs `fn(query, exact, what)` per query and returns the mean recall@10 of what it returns. */
    function meanRecall(name, filter, fn) {
      let sum = 0;
      queries.forEach((query, qi) => {
        const exact = fdb.exactTopK(live, filter, query, 10, METRIC, FIELDS);
        sum += h.recallAtK(fn(query, exact, `${name} query ${qi}`), exact);
      });
      return sum / QUERIES;
    }

    for (const [name, filter] of BUCKETS) {
      const share = Number.parseFloat(name) / 100;
      it(`${name}, eager: count, exactly min(k, matching) under every plan, scan exact, recall@10 of 'auto' >= 0.95`, function () {
        const matching = matchingIds(filter).length;
        assert.ok(matching >= 1 && Math.abs(matching / N - share) <= 0.0001 + 0.01 * share, `${name}: ${matching} of ${N} match`);
        assert.equal(eager.count(filter), matching, 'count');
        const recall = meanRecall(name, filter, (query, exact, what) => {
          fdb.checkExact(eager.search(query, 10, { filter, plan: 'scan' }), exact, `${what} scan`);
          for (const plan of ['graph', 'acorn']) check(eager.search(query, 10, { filter, plan }), filter, query, `${what} ${plan}`, matching);
          const auto = eager.search(query, 10, { filter });
          check(auto, filter, query, `${what} auto`, matching);
          return auto;
        });
        assert.ok(recall >= 0.95, `${name}: eager recall@10 ${recall}`);
      });

      /* Fails at 50% on the engine as of this writing: see the report (lazy 'auto' picks the scan, which ranks on PQ codes). */
      it(`${name}, lazy: count, exactly min(k, matching) under every plan, recall@10 of 'auto' >= 0.95, and of lazy against eager`, function () {
        const matching = matchingIds(filter).length;
        assert.equal(lazy.count(filter), matching, 'count');
        let vsEager = 0;
        const recall = meanRecall(name, filter, (query, exact, what) => {
          for (const plan of ['scan', 'graph', 'acorn']) check(lazy.search(query, 10, { filter, plan }), filter, query, `${what} ${plan}`, matching);
          const auto = lazy.search(query, 10, { filter });
          check(auto, filter, query, `${what} auto`, matching);
          vsEager += h.recallAtK(auto, eager.search(query, 10, { filter }));
          return auto;
        });
        assert.ok(recall >= 0.95, `${name}: lazy recall@10 ${recall}`);
        assert.ok(vsEager / QUERIES >= 0.95, `${name}: lazy against eager ${vsEager / QUERIES}`);
      });

      /* 'scan' is documented as exact. Fails at 50% on the engine as of this
       * writing (see the report): lazily it ranks the matches on PQ codes
       * and re-ranks only its pool. */
      it(`${name}, lazy: plan 'scan' returns the ids eager 'scan' returns`, function () {
        queries.forEach((query, qi) => {
          const eagerIds = eager.search(query, 10, { filter, plan: 'scan' }).map((r) => r.id);
          const lazyIds = lazy.search(query, 10, { filter, plan: 'scan' }).map((r) => r.id);
          assert.deepEqual(lazyIds, eagerIds, `${name} query ${qi}`);
        });
      });
    }

    it('a lazy session decides matches without reading: count reads nothing, a search at most its re-rank pool', async function () {
      const pool = 24;
      const cold = () => {
        lazy.setCacheSize(1e-6);
        lazy.setCacheSize(64);
      };
      for (const [name, filter] of BUCKETS) {
        cold();
        let before = lazy.cacheStats().misses;
        assert.equal(lazy.count(filter), matchingIds(filter).length);
        assert.equal(lazy.count({ $not: filter }), N - matchingIds(filter).length);
        assert.equal(lazy.cacheStats().misses, before, `${name}: count read a page`);
        for (const plan of ['auto', 'scan', 'graph', 'acorn']) {
          cold();
          before = lazy.cacheStats().misses;
          const res = await lazy.searchAsync(queries[0], 5, { filter, plan, rerank: pool });
          assert.equal(res.length, Math.min(5, matchingIds(filter).length));
          const read = lazy.cacheStats().misses - before;
          assert.ok(read <= pool, `${name} ${plan}: read ${read} pages, more than the re-rank pool ${pool}`);
        }
      }
    });

    it('entries() on a lazy session reads only its batch\'s pages', async function () {
      lazy.setCacheSize(1e-6);
      lazy.setCacheSize(64);
      const before = lazy.cacheStats().misses;
      let first;
      for await (const batch of lazy.entries({ filter: { cat: 'c1' }, batchSize: 5, includeVector: true })) {
        first = batch;
        break;
      }
      assert.equal(first.length, 5);
      const read = lazy.cacheStats().misses - before;
      /* The pages that hold those five rows: what reading them one by one reads. */
      lazy.setCacheSize(1e-6);
      lazy.setCacheSize(64);
      const before2 = lazy.cacheStats().misses;
      for (const e of first) await lazy.getAsync(e.id);
      const rows = lazy.cacheStats().misses - before2;
      assert.ok(read >= 1 && read <= rows, `read ${read} pages for a batch of 5 rows that span ${rows} pages`);
      for (const e of first) {
        assert.deepEqual(e.metadata, live.get(e.id).metadata);
        /* cosine keeps vectors normalised */
        const want = h.normalized(live.get(e.id).vector);
        e.vector.forEach((x, j) => h.assertClose(x, want[j], `${e.id}[${j}]`));
      }
    });
  });
});
