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

    it('a beam of 1 and a re-rank pool of 1 still give exactly min(k, matching), eager and lazy', async function () {
      const { db, live } = fdb.buildDb({ metric: 'dot', n: 1200, seed: 91 });
      const { lazy } = await lazyCopy(db, 'ftiny');
      const r = ref.rng(92);
      for (let t = 0; t < 20; t++) {
        const filter = ref.randomFilter(r, ref.FIELDS);
        const query = fdb.randomQuery(r, 12);
        const matching = fdb.matchingIds(live, filter).length;
        for (const plan of fdb.PLANS) {
          for (const k of [1, 7, 60]) {
            const what = `${JSON.stringify(filter)} ${plan} k ${k}`;
            fdb.checkFiltered(db.search(query, k, { filter, plan, efSearch: 1 }), { live, filter, query, k, metric: 'dot', matching, what: `eager ${what}` });
            for (const o of [{ efSearch: 1 }, { efSearch: 1, rerank: 1 }, { rerank: 1 }]) {
              fdb.checkFiltered(lazy.search(query, k, { filter, plan, ...o }), { live, filter, query, k, metric: 'dot', matching, what: `lazy ${what} ${JSON.stringify(o)}` });
            }
          }
        }
      }
    });

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

  describe('edge cases', function () {
    it('filters that fold to everything or nothing, and null against missing, empty and arrays', function () {
      const db = h.openDb({ dimension: 2, filterable: ['lang'] });
      const metas = [{ lang: 'x' }, {}, null, { lang: null }, { lang: [] }, { lang: ['x', 'y'] }, { lang: [null] }, { lang: {} }];
      const live = new Map();
      metas.forEach((m, i) => {
        db.add(`v${i}`, [i, 1], m);
        live.set(`v${i}`, { vector: Float32Array.from([i, 1]), metadata: m });
      });
      const filters = [
        {}, { $not: {} }, { $or: [{}] }, { $and: [{}] }, { $or: [{}, { lang: 'x' }] }, { $not: { $not: {} } }, { $and: [{}, { $not: {} }] },
        { lang: { $not: { $exists: false } } }, { lang: { $nin: [null] } }, { lang: { $in: [null] } }, { lang: null }, { lang: { $ne: null } },
        { lang: { $ne: 'x' } }, { lang: { $not: { $in: ['x'] } } }, { lang: { $exists: true, $ne: null } }, { lang: { $exists: false } },
        { lang: { $gt: '' } }, { lang: { $lt: 'y' } }, { lang: { $gte: 'x', $lte: 'x' } }, { lang: { $gt: 'x', $lt: 'x' } },
      ];
      for (const filter of filters) {
        const want = fdb.matchingIds(live, filter, ['lang']).sort();
        assert.equal(db.count(filter), want.length, `count ${JSON.stringify(filter)}`);
        for (const plan of ['auto', 'scan', 'graph', 'acorn']) {
          assert.deepEqual(db.search([0, 1], 10, { filter, plan }).map((r) => r.id).sort(), want, `search ${JSON.stringify(filter)} ${plan}`);
        }
      }
    });

    it('values are filtered as JSON stores them (toJSON, NaN, undefined, boxed values), through add, addBatch, addBatchAsync and updateMetadata', async function () {
      const metas = [
        { year: new Date(0) }, { year: { toJSON: () => 2021 } }, { year: NaN }, { year: Infinity }, { year: undefined },
        { year: [undefined, 1, () => 1] }, { year: new Map([[1, 2]]) }, { year: -0 }, { year: [NaN] },
        { toJSON: () => ({ year: 7 }) }, { year: Object(5) }, { year: Object('s') }, { year: Object(false) }, { year: 1e21 }, { year: 2 ** 53 + 2 },
      ];
      const filters = [
        { year: '1970-01-01T00:00:00.000Z' }, { year: 2021 }, { year: null }, { year: { $exists: false } }, { year: 1 }, { year: 0 },
        { year: 7 }, { year: 5 }, { year: 's' }, { year: false }, { year: 1e21 }, { year: { $gt: 2 ** 53 } }, { year: { $exists: true } },
      ];
      const items = metas.map((metadata, i) => ({ id: `v${i}`, vector: [i, 1], metadata }));
      const live = new Map(metas.map((m, i) => [`v${i}`, { vector: Float32Array.from([i, 1]), metadata: fdb.stored(m) }]));
      const ways = {
        add: (db) => items.forEach((e) => db.add(e.id, e.vector, e.metadata)),
        addBatch: (db) => db.addBatch(items),
        addBatchAsync: (db) => db.addBatchAsync(items),
        updateMetadata: (db) => {
          items.forEach((e) => db.add(e.id, e.vector, { year: 'old' }));
          items.forEach((e) => assert.equal(db.updateMetadata(e.id, e.metadata), true));
        },
      };
      for (const [way, fill] of Object.entries(ways)) {
        const db = h.openDb({ dimension: 2, filterable: ['year'] });
        await fill(db);
        for (const filter of filters) {
          assert.equal(db.count(filter), fdb.matchingIds(live, filter, ['year']).length, `${way}: ${JSON.stringify(filter)}`);
        }
      }
    });

    it('after most vectors are deleted, a filtered walk still returns exactly min(k, matching), in memory and reloaded lazily', async function () {
      const { db, live } = fdb.buildDb({ metric: 'l2', n: 2500, seed: 81, deleted: 0 });
      /* Delete about 95%, by filter and by ids, keeping a scattered few. */
      const r = ref.rng(82);
      const doomed = [...live.keys()].filter(() => r() < 0.95);
      assert.equal(db.deleteMany(doomed), doomed.length);
      for (const id of doomed) live.delete(id);
      const check = (d, what) => {
        const rr = ref.rng(83);
        for (let t = 0; t < 12; t++) {
          const filter = ref.randomFilter(rr, ref.FIELDS);
          const query = fdb.randomQuery(rr, 12);
          for (const plan of ['auto', 'graph', 'acorn', 'scan']) {
            fdb.checkFiltered(d.search(query, 15, { filter, plan }), { live, filter, query, k: 15, metric: 'l2', what: `${what} ${JSON.stringify(filter)} ${plan}` });
          }
        }
      };
      check(db, 'in memory');
      const { lazy } = await lazyCopy(db, 'fdel');
      check(lazy, 'lazy');
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
      /* Clusters loose enough that a lazy session's codes rank them well
       * without a filter (the tight case is the next describe's). */
      const vectors = h.clusteredVectors(N, DIM, { seed: 5, clusters: 200, spread: 0.4 });
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
      /* Near stored vectors, as real queries are. */
      const noise = h.randomVectors(QUERIES, DIM, 6);
      queries = noise.map((e, i) => Float32Array.from(vectors[(i * 997) % N], (x, j) => x + 0.1 * e[j]));
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

      /* 'scan' is documented as exact: lazily it ranks the matches on PQ
       * codes and re-ranks its pool, which must still find eager's answer. */
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
          /* Cache misses count pages and the page tables of their chunks
           * (docs/PERFORMANCE.md: at most `rerank` pages, plus a table per
           * chunk not cached). */
          const read = lazy.cacheStats().misses - before;
          const bound = pool + Math.min(pool, lazy.loadStats.chunkCount);
          assert.ok(read <= bound, `${name} ${plan}: read ${read} pages and tables, more than the re-rank pool ${pool} and its tables`);
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

  /* Tightly clustered vectors in few dimensions are the case where a lazy
   * session's PQ codes rank worst: with the default re-rank pool recall is
   * about 0.7 there, with or without a filter (eager: 1.0); docs/FILTER.md
   * and PERFORMANCE.md say so and name the remedy, a larger `rerank`, which
   * this checks. The filter changes nothing about it: with a filter the
   * lazy session is exactly as good as without one. */
  describe('eager and lazy agree on tightly clustered data', function () {
    it('with a larger rerank, recall@10 of lazy >= 0.95 without a filter and at 50%; a filter costs lazy nothing', async function () {
      const N = 5000;
      const DIM = 16;
      const vectors = h.clusteredVectors(N, DIM, { seed: 5, clusters: 10, spread: 0.15 });
      const live = new Map();
      const db = h.openDb({ dimension: DIM, metric: 'cosine', filterable: ['sel'], encryptAtRest: false });
      db.addBatch(vectors.map((vector, i) => {
        live.set(`v${i}`, { vector, metadata: { sel: i % 2 } });
        return { id: `v${i}`, vector, metadata: { sel: i % 2 } };
      }));
      const { lazy } = await lazyCopy(db, 'ftight');
      const noise = h.randomVectors(16, DIM, 6);
      const queries = noise.map((e, i) => Float32Array.from(vectors[(i * 997) % N], (x, j) => x + 0.1 * e[j]));
      const recalls = {};
      for (const filter of [undefined, { sel: 0 }]) {
        let eagerRecall = 0;
        let lazyRecall = 0;
        let lazyDefault = 0;
        for (const query of queries) {
          const exact = fdb.exactTopK(live, filter || {}, query, 10, 'cosine', ['sel']);
          eagerRecall += h.recallAtK(db.search(query, 10, { filter }), exact);
          lazyRecall += h.recallAtK(lazy.search(query, 10, { filter, rerank: 400 }), exact);
          lazyDefault += h.recallAtK(lazy.search(query, 10, { filter }), exact);
        }
        const what = JSON.stringify(filter);
        assert.ok(eagerRecall / queries.length >= 0.95, `${what}: eager recall ${eagerRecall / queries.length}`);
        assert.ok(lazyRecall / queries.length >= 0.95, `${what}: lazy recall (rerank 400) ${lazyRecall / queries.length}`);
        recalls[what] = lazyDefault / queries.length;
      }
      /* A filter keeping half the vectors loses lazy nothing against no filter. */
      assert.ok(recalls['{"sel":0}'] >= recalls[undefined] - 0.05, `lazy, default rerank: filtered ${recalls['{"sel":0}']} against unfiltered ${recalls[undefined]}`);
    });
  });

  describe('save and load', function () {
    const FILTERS = 24;
    /* count() of FILTERS seeded random filters, against the reference over `live`. */
    function counts(db, live, what) {
      const r = ref.rng(99);
      for (let t = 0; t < FILTERS; t++) {
        const filter = ref.randomFilter(r, ref.FIELDS);
        assert.equal(db.count(filter), fdb.matchingIds(live, filter).length, `${what}: count ${JSON.stringify(filter)}`);
      }
    }

    it('filterable paths and values come back after a full save and an incremental one, eager and lazy', async function () {
      const { db, live } = fdb.buildDb({ metric: 'l2', n: 800, seed: 31 });
      const dir = s.tmpDir('fsave');
      const full = await db.save(dir);
      assert.equal(full.full, true);
      counts(db, live, 'before save');
      for (const lazy of [false, true]) {
        const back = await s.loadDb(dir, { lazy });
        assert.deepEqual(back.filterable, ref.FIELDS, `lazy ${lazy}: filterable`);
        assert.ok(Object.isFrozen(back.filterable));
        counts(back, live, `full save, lazy ${lazy}`);
        back.close();
      }
      /* Writes between saves: adds, deletes, metadata updates. */
      const r = ref.rng(32);
      const extra = h.randomVectors(100, 12, 33);
      extra.forEach((vector, i) => {
        const metadata = ref.randomMetadata(r);
        db.add(`x${i}`, vector, metadata);
        live.set(`x${i}`, { vector, metadata: fdb.stored(metadata) });
      });
      const ids = [...live.keys()];
      for (let i = 0; i < 60; i++) {
        const id = ids[r.int(ids.length)];
        if (!live.has(id)) continue;
        if (i % 3 === 0) {
          assert.equal(db.delete(id), true);
          live.delete(id);
        } else {
          const metadata = ref.randomMetadata(r);
          assert.equal(db.updateMetadata(id, metadata), true);
          live.get(id).metadata = fdb.stored(metadata);
        }
      }
      counts(db, live, 'after writes');
      const inc = await db.save(dir);
      assert.equal(inc.full, false, 'the second save is incremental');
      for (const lazy of [false, true]) {
        const back = await s.loadDb(dir, { lazy });
        assert.deepEqual(back.filterable, ref.FIELDS);
        assert.equal(back.size, live.size);
        counts(back, live, `incremental save, lazy ${lazy}`);
        const q = h.randomVectors(1, 12, 34)[0];
        fdb.checkFiltered(back.search(q, 10, { filter: { lang: { $exists: true } } }), { live, filter: { lang: { $exists: true } }, query: q, k: 10, metric: 'l2', what: `lazy ${lazy}` });
        back.close();
      }
    });

    it('a lazy session saved again keeps its filterable values', async function () {
      const { db, live } = fdb.buildDb({ metric: 'dot', n: 500, seed: 35 });
      const dir = s.tmpDir('fsave2');
      await db.save(dir);
      const lazy = await s.loadDb(dir, { lazy: true });
      lazy.add('new', h.randomVectors(1, 12, 36)[0], { lang: 'en', year: 2021 });
      live.set('new', { vector: null, metadata: { lang: 'en', year: 2021 } });
      const victim = [...live.keys()][3];
      assert.equal(await lazy.updateMetadataAsync(victim, { lang: 'de' }), true);
      live.get(victim).metadata = { lang: 'de' };
      await lazy.save(dir);
      const back = await s.loadDb(dir, {});
      counts(back, live, 'lazy, saved again');
      assert.deepEqual(back.get(victim).metadata, { lang: 'de' });
    });

    it('encrypted, with unicode paths: no value in plaintext on disk; paths and values survive load, copy, export/import and a reader\'s refresh', async function () {
      const fs = require('node:fs');
      const path = require('node:path');
      const key = s.keyFor('filter');
      const fields = ['名前', 'a.ü', 'secret'];
      const db = h.openDb({ dimension: 3, filterable: fields, key });
      for (let i = 0; i < 60; i++) db.add(`v${i}`, [i, 1, 2], { 名前: i % 2 ? 'ä' : 'b', a: { ü: i }, secret: `SECRETVALUE-${i % 3}` });
      const dir = s.tmpDir('fenc');
      await db.save(dir);
      const plain = [];
      for (const f of fs.readdirSync(dir, { recursive: true })) {
        const p = path.join(dir, f);
        if (fs.statSync(p).isFile() && fs.readFileSync(p).includes('SECRETVALUE')) plain.push(f);
      }
      assert.deepEqual(plain, [], 'no attribute value in plaintext');
      const expect = async (d, what) => {
        for (const lazy of [false, true]) {
          const back = await s.loadDb(d, { key, lazy });
          assert.deepEqual(back.filterable, fields, `${what}: filterable`);
          assert.deepEqual([back.count({ 名前: 'ä' }), back.count({ 'a.ü': { $gte: 40 } }), back.count({ secret: 'SECRETVALUE-1' })], [30, 20, 20], what);
          back.close();
        }
      };
      await expect(dir, 'loaded');
      const copy = s.tmpDir('fcopy');
      await VectorDB.copy(dir, copy);
      await expect(copy, 'copied');
      const file = path.join(s.tmpDir('fexp'), 'db.vvx');
      await db.export(fs.createWriteStream(file));
      const imported = s.tmpDir('fimp');
      await VectorDB.import(fs.createReadStream(file), imported);
      await expect(imported, 'imported');
      /* A lazy reader refreshes to the writer's next generation and filters on its values. */
      const reader = await s.loadDb(dir, { key, lazy: true });
      assert.equal(db.updateMetadata('v0', { 名前: 'zz' }), true);
      assert.equal(db.deleteMany({ filter: { secret: 'SECRETVALUE-2' } }), 20);
      await db.save(dir);
      assert.equal(reader.count({ 名前: 'zz' }), 0, 'before refresh');
      await reader.refresh();
      assert.deepEqual([reader.count({ 名前: 'zz' }), reader.count({ secret: 'SECRETVALUE-2' }), reader.count()], [1, 0, 40]);
    });

    it('an empty database, a field nobody sets, and a database emptied by deleteMany survive saves, eager and lazy', async function () {
      for (const n of [0, 3]) {
        const db = h.openDb({ dimension: 2, filterable: ['never', 'x'], encryptAtRest: false });
        for (let i = 0; i < n; i++) db.add(`v${i}`, [i, 1], i === 0 ? null : { x: i });
        const dir = s.tmpDir('fempty');
        await db.save(dir);
        for (const lazy of [false, true]) {
          const back = await s.loadDb(dir, { lazy });
          assert.deepEqual(back.filterable, ['never', 'x']);
          assert.deepEqual([back.count({ never: null }), back.count({ never: { $exists: true } }), back.count({ x: { $gte: 1 } })], [n, 0, Math.max(0, n - 1)]);
          assert.equal(back.search([0, 1], 5, { filter: { never: null } }).length, n);
          back.add('z', [1, 1], { never: 'now' });
          assert.equal(back.count({ never: 'now' }), 1, 'a value the dictionary never held');
        }
        assert.equal(db.deleteMany({ filter: {} }), n);
        await db.save(dir);
        const emptied = await s.loadDb(dir, { lazy: true });
        assert.deepEqual([emptied.count(), emptied.count({ x: 1 }), emptied.filterable], [0, 0, ['never', 'x']]);
      }
    });

    it('a session without filterable fields stays format version 3; with them it is version 4', async function () {
      const plain = h.openDb({ dimension: 4, encryptAtRest: false });
      plain.add('a', [1, 2, 3, 4], { lang: 'en' });
      const d3 = s.tmpDir('fv3');
      await plain.save(d3);
      assert.equal((await VectorDB.inspect(d3)).version, 3);
      const back3 = await s.loadDb(d3, {});
      assert.deepEqual(back3.filterable, []);
      assert.equal(back3.count(), 1);
      const withFields = h.openDb({ dimension: 4, encryptAtRest: false, filterable: ['lang'] });
      withFields.add('a', [1, 2, 3, 4], { lang: 'en' });
      const d4 = s.tmpDir('fv4');
      await withFields.save(d4);
      assert.equal((await VectorDB.inspect(d4)).version, 4);
      const back4 = await s.loadDb(d4, {});
      assert.deepEqual(back4.filterable, ['lang']);
      assert.equal(back4.count({ lang: 'en' }), 1);
    });
  });

  describe('range search', function () {
    for (const metric of h.METRICS) {
      it(`${metric}: maxDistance and minScore, with and without a filter: within the bound, and with 'scan' exactly the bounded set, capped at k`, function () {
        const { db, live } = fdb.buildDb({ metric, index: 'hnsw', n: 900, seed: 51 });
        const r = ref.rng(52);
        const filters = [undefined, { lang: { $exists: true } }, { $or: [{ year: { $gte: 2020 } }, { tags: 'a' }] }];
        let recall = 0;
        let asked = 0;
        for (let t = 0; t < 12; t++) {
          const query = fdb.randomQuery(r, 12);
          const filter = filters[t % filters.length];
          const all = fdb.exactTopK(live, filter || {}, query, live.size, metric);
          /* A bound that lets in about 15 of the matches; k = 10 and 40.
           * Bounds a float32 holds exactly: rounding is the next test's. */
          const bound = all[Math.min(14, all.length - 1)];
          const maxDistance = Math.fround(bound.distance);
          const minScore = Math.fround(bound.score);
          for (const k of [10, 40]) {
            for (const [opt, value, inside] of [
              ['maxDistance', maxDistance, (e) => e.distance <= maxDistance],
              ['minScore', minScore, (e) => e.score >= minScore],
            ]) {
              const what = `${metric} query ${t} ${opt} ${JSON.stringify(filter)} k ${k}`;
              const expected = all.filter(inside).slice(0, k);
              for (const plan of ['auto', 'scan']) {
                const res = db.search(query, k, { filter, [opt]: value, plan });
                fdb.checkFiltered(res, { live, filter: filter || {}, query, k, metric, bounded: true, what: `${what} ${plan}` });
                if (plan === 'auto' && expected.length > 0) {
                  recall += h.recallAtK(res, expected);
                  asked++;
                }
                for (const hit of res) {
                  if (opt === 'maxDistance') assert.ok(hit.distance <= value, `${what}: ${hit.distance} > ${value}`);
                  else assert.ok(hit.score >= value, `${what}: ${hit.score} < ${value}`);
                }
                /* Exact under 'scan' when filtered (the plan is about filters); float ties at the bound aside. */
                if (plan === 'scan' && filter) {
                  assert.ok(Math.abs(res.length - expected.length) <= 1, `${what}: ${res.length} hits, ${expected.length} within the bound`);
                  const n = Math.min(res.length, expected.length);
                  fdb.checkExact(res.slice(0, n), expected.slice(0, n), what);
                }
              }
            }
          }
          const nearest = all[0];
          assert.ok(nearest, 'the filters match something');
          assert.deepEqual(db.search(query, 10, { filter, maxDistance: nearest.distance - 1 }), [], 'maxDistance below the nearest');
          assert.deepEqual(db.search(query, 10, { filter, minScore: nearest.score + 1 }), [], 'minScore above the best');
        }
        assert.ok(recall / asked >= 0.95, `${metric}: recall of 'auto' within the bound ${recall / asked}`);
      });
    }

    /* Fails on the engine as of this writing (see the report): the binding
     * rounds the bound to float32 to nearest, so a hit a hair beyond it is kept. */
    it('a bound between two float32 values still excludes the hit just beyond it', function () {
      for (const metric of h.METRICS) {
        const { db } = fdb.buildDb({ metric, index: 'flat', n: 200, seed: 55 });
        const query = fdb.randomQuery(ref.rng(56), 12);
        const [first, second] = db.search(query, 2);
        /* Just below the nearest hit's distance, in a double, rounding to it as a float32. */
        const maxDistance = first.distance - Math.abs(first.distance) * 2 ** -26;
        assert.ok(maxDistance < first.distance && Math.fround(maxDistance) === first.distance);
        for (const plan of ['auto', 'scan']) {
          for (const hit of db.search(query, 5, { maxDistance, plan })) {
            assert.ok(hit.distance <= maxDistance, `${metric} ${plan}: distance ${hit.distance} > maxDistance ${maxDistance}`);
          }
        }
        const minScore = first.score + Math.abs(first.score) * 2 ** -26;
        assert.ok(minScore > first.score && Math.fround(minScore) === first.score);
        for (const hit of db.search(query, 5, { minScore })) {
          assert.ok(hit.score >= minScore, `${metric}: score ${hit.score} < minScore ${minScore}`);
        }
        assert.ok(second.distance > first.distance || second.distance === first.distance);
      }
    });

    it('lazy: the same hits as eager under \'scan\', every one within the bound', async function () {
      for (const metric of h.METRICS) {
        const { db, live } = fdb.buildDb({ metric, n: 700, seed: 57 });
        const { lazy } = await lazyCopy(db, 'frange');
        const r = ref.rng(58);
        for (let t = 0; t < 8; t++) {
          const query = fdb.randomQuery(r, 12);
          const filter = ref.randomFilter(r, ref.FIELDS);
          const all = fdb.exactTopK(live, filter, query, live.size, metric);
          if (all.length === 0) continue;
          const b = all[Math.min(7, all.length - 1)];
          for (const opts of [{ maxDistance: Math.fround(b.distance) }, { minScore: Math.fround(b.score) }]) {
            const what = `${metric} query ${t} ${JSON.stringify(opts)} ${JSON.stringify(filter)}`;
            const eagerHits = db.search(query, 20, { filter, plan: 'scan', ...opts });
            const lazyHits = await lazy.searchAsync(query, 20, { filter, plan: 'scan', ...opts });
            fdb.checkFiltered(lazyHits, { live, filter, query, k: 20, metric, bounded: true, what });
            assert.deepEqual(lazyHits.map((x) => x.id), eagerHits.map((x) => x.id), what);
            for (const hit of await lazy.searchAsync(query, 20, { filter, ...opts })) {
              if (opts.maxDistance !== undefined) assert.ok(hit.distance <= opts.maxDistance, what);
              else assert.ok(hit.score >= opts.minScore, what);
            }
          }
        }
        lazy.close();
      }
    });

    it('flat index without a filter: exactly the brute-force set within the bound', function () {
      const { db, live } = fdb.buildDb({ metric: 'l2', index: 'flat', n: 600, seed: 53 });
      const r = ref.rng(54);
      for (let t = 0; t < 10; t++) {
        const query = fdb.randomQuery(r, 12);
        const all = fdb.exactTopK(live, {}, query, live.size, 'l2');
        const bound = (all[9].distance + all[10].distance) / 2;
        const res = db.search(query, 100, { maxDistance: bound });
        fdb.checkExact(res, all.slice(0, 10), `query ${t}`);
        const capped = db.search(query, 4, { maxDistance: bound });
        fdb.checkExact(capped, all.slice(0, 4), `query ${t}, k 4`);
      }
    });
  });

  describe('async and batch variants take the same options', function () {
    it('searchAsync, searchBatch and searchBatchAsync with filter, plan and bounds give search()\'s answers', async function () {
      const { db, live } = fdb.buildDb({ metric: 'cosine', n: 900, seed: 61 });
      const r = ref.rng(62);
      for (let t = 0; t < 10; t++) {
        const filter = ref.randomFilter(r, ref.FIELDS);
        const queries = Array.from({ length: 4 }, () => fdb.randomQuery(r, 12));
        for (const opts of [{ filter }, { filter, plan: 'scan' }, { filter, plan: 'acorn', maxDistance: 0.9 }, { filter, minScore: 0.2, includeVector: true }]) {
          const what = `${JSON.stringify(opts)}`;
          const sync = queries.map((q) => h.plainResults(db.search(q, 10, opts)));
          queries.forEach((q, i) => fdb.checkFiltered(db.search(q, 10, opts), { live, filter, query: q, k: 10, metric: 'cosine', bounded: opts.maxDistance !== undefined || opts.minScore !== undefined, what }));
          const asyncs = await Promise.all(queries.map((q) => db.searchAsync(q, 10, opts)));
          assert.deepEqual(asyncs.map(h.plainResults), sync, `${what}: searchAsync`);
          assert.deepEqual(db.searchBatch(queries, 10, opts).map(h.plainResults), sync, `${what}: searchBatch`);
          assert.deepEqual((await db.searchBatchAsync(queries, 10, opts)).map(h.plainResults), sync, `${what}: searchBatchAsync`);
          assert.deepEqual((await db.searchBatchAsync(h.flatten(queries, 12), 10, opts)).map(h.plainResults), sync, `${what}: searchBatchAsync, flat`);
        }
      }
    });

    it('lazy: searchBatch and searchBatchAsync with a filter give search()\'s answers', async function () {
      const { db, live } = fdb.buildDb({ metric: 'l2', n: 700, seed: 64 });
      const { lazy } = await lazyCopy(db, 'fbatch');
      const r = ref.rng(65);
      for (let t = 0; t < 8; t++) {
        const filter = ref.randomFilter(r, ref.FIELDS);
        const queries = Array.from({ length: 3 }, () => fdb.randomQuery(r, 12));
        for (const opts of [{ filter }, { filter, plan: 'scan', includeVector: true }]) {
          const what = JSON.stringify(opts);
          const one = queries.map((q) => h.plainResults(lazy.search(q, 10, opts)));
          queries.forEach((q) => fdb.checkFiltered(lazy.search(q, 10, opts), { live, filter, query: q, k: 10, metric: 'l2', what }));
          assert.deepEqual(lazy.searchBatch(queries, 10, opts).map(h.plainResults), one, `${what}: searchBatch`);
          assert.deepEqual((await lazy.searchBatchAsync(queries, 10, opts)).map(h.plainResults), one, `${what}: searchBatchAsync`);
        }
      }
    });

    it('the async variants reject bad filters and options with the same typed errors', async function () {
      const { db } = fdb.buildDb({ n: 50, seed: 63 });
      const q = new Float32Array(12);
      q[0] = 1;
      await h.rejectsCode(() => db.searchAsync(q, 3, { filter: { nope: 1 } }), 'ERR_INVALID_FILTER');
      await h.rejectsCode(() => db.searchBatchAsync([q], 3, { filter: { lang: { $gt: true } } }), 'ERR_INVALID_FILTER');
      await h.rejectsCode(() => db.searchAsync(q, 3, { plan: 'fast' }), 'ERR_INVALID_ARGUMENT');
      await h.rejectsCode(() => db.searchBatchAsync([q], 3, { maxDistance: NaN }), 'ERR_INVALID_ARGUMENT');
      h.throwsCode(() => db.searchBatch([q], 3, { filter: { nope: 1 } }), 'ERR_INVALID_FILTER');
    });
  });

  describe('errors', function () {
    function smallDb() {
      const db = h.openDb({ dimension: 4, metric: 'l2', filterable: ['lang', 'year', 'author.name'] });
      db.add('a', [1, 0, 0, 0], { lang: 'en', year: 2021, author: { name: 'x' } });
      db.add('b', [0, 1, 0, 0], { lang: 'de', year: 2019 });
      return db;
    }
    const Q = [1, 0, 0, 0];

    /* The database still answers correctly after a refused call. */
    function stillWorks(db) {
      assert.deepEqual(db.search(Q, 5, { filter: { lang: 'en' } }).map((r) => r.id), ['a']);
      assert.equal(db.count({ year: { $lt: 2020 } }), 1);
      assert.equal(db.count(), 2);
    }

    it('a field that is not declared: ERR_INVALID_FILTER naming it, from every method', async function () {
      const db = smallDb();
      const calls = [
        () => db.search(Q, 3, { filter: { 'author.age': 3 } }),
        () => db.searchBatch([Q], 3, { filter: { $or: [{ lang: 'en' }, { 'author.age': 3 }] } }),
        () => db.count({ $not: { 'author.age': 3 } }),
        () => db.deleteMany({ filter: { 'author.age': 3 } }),
        () => db.count({ author: { name: 'x' } }),
      ];
      for (const call of calls) {
        const err = h.throwsCode(call, 'ERR_INVALID_FILTER', call.toString());
        assert.match(err.message, /author/, err.message);
      }
      assert.match((await h.rejectsCode(() => db.searchAsync(Q, 3, { filter: { 'author.age': 3 } }), 'ERR_INVALID_FILTER')).message, /author\.age/);
      const it = db.entries({ filter: { 'author.age': 3 } });
      await h.rejectsCode(() => it.next(), 'ERR_INVALID_FILTER');
      assert.equal(db.count(), 2, 'deleteMany deleted nothing');
      stillWorks(db);
    });

    it('bad maxDistance, minScore and plan: ERR_INVALID_ARGUMENT', function () {
      const db = smallDb();
      for (const opts of [
        { maxDistance: '1' }, { maxDistance: NaN }, { maxDistance: Infinity }, { maxDistance: null }, { minScore: -Infinity },
        { minScore: '0.5' }, { minScore: {} }, { plan: 'fast' }, { plan: 1 }, { plan: null }, { plan: 'SCAN' }, { plan: '__proto__' },
        { plan: 'toString' },
      ]) {
        h.throwsCode(() => db.search(Q, 3, opts), 'ERR_INVALID_ARGUMENT', JSON.stringify(opts));
        h.throwsCode(() => db.searchBatch([Q], 3, opts), 'ERR_INVALID_ARGUMENT', `batch ${JSON.stringify(opts)}`);
      }
      stillWorks(db);
    });

    it('hostile filters: typed errors, no crash or hang, and the database works afterwards', function () {
      const db = smallDb();
      let deepAnd = { lang: 'en' };
      for (let i = 0; i < 100000; i++) deepAnd = { $and: [deepAnd] };
      let deepOr = { lang: 'en' };
      for (let i = 0; i < 100000; i++) deepOr = { $or: [deepOr, { lang: 'de' }] };
      let deepNot = { lang: 'en' };
      for (let i = 0; i < 100000; i++) deepNot = { $not: deepNot };
      let deepFieldNot = { $gt: 1 };
      for (let i = 0; i < 100000; i++) deepFieldNot = { $not: deepFieldNot };
      const wide = { $or: Array.from({ length: 30000 }, (_, i) => ({ lang: `l${i}` })) };
      const cyclic = { $and: [] };
      cyclic.$and.push(cyclic);
      const hostile = [
        deepAnd, deepOr, deepNot, { year: deepFieldNot }, wide, cyclic,
        { lang: { $in: Array.from({ length: 70000 }, (_, i) => `s${i}`) } },
        { lang: { $nin: Array.from({ length: 70000 }, (_, i) => i) } },
        { year: { $gt: true } }, { year: { $in: 'a' } }, { year: { $in: [] } }, { year: { $in: [[1]] } }, { year: { $in: [{}] } },
        { year: { $exists: 1 } }, { year: { $foo: 1 } }, { year: { a: 1 } }, { year: [1] }, { year: NaN }, { year: Infinity },
        { year: 10n }, { year: () => 1 }, { year: Symbol('s') }, { year: new Date(0) }, { year: /x/ },
        { $and: [] }, { $or: {} }, { $not: [] }, { $nor: [{ lang: 'en' }] }, { $and: [null] }, { $where: 'true' },
        JSON.parse('{"__proto__": {"$gt": 1}}'), JSON.parse('{"lang": {"__proto__": 1}}'), { constructor: 1 }, { 'lang.': 1 }, { '': 1 },
        { get lang() { throw new Error('boom'); } }, new Proxy({}, { ownKeys() { throw new Error('trap'); } }),
        { [Symbol('k')]: 1, lang: { $eq: 'en', [Symbol('op')]: 1 } },
        null, 'lang', [], 42, new Map([['lang', 'en']]),
      ];
      for (const filter of hostile) {
        let label;
        try {
          label = String(JSON.stringify(filter)).slice(0, 60);
        } catch (_) {
          label = 'unprintable';
        }
        h.throwsCode(() => db.search(Q, 3, { filter }), 'ERR_INVALID_FILTER', `search ${label}`);
        h.throwsCode(() => db.count(filter), 'ERR_INVALID_FILTER', `count ${label}`);
        h.throwsCode(() => db.deleteMany({ filter }), 'ERR_INVALID_FILTER', `deleteMany ${label}`);
      }
      /* The limits themselves are allowed. */
      assert.equal(db.count({ lang: { $in: Array.from({ length: 65536 }, (_, i) => (i === 7 ? 'en' : `s${i}`)) } }), 1);
      let depth31 = { lang: 'en' };
      for (let i = 0; i < 30; i++) depth31 = { $and: [depth31] };
      assert.equal(db.count(depth31), 1);
      stillWorks(db);
    });

    it('a database without filterable fields refuses a non-empty filter; {} means everything', async function () {
      const db = h.openDb({ dimension: 4 });
      db.add('a', [1, 0, 0, 0], { lang: 'en' });
      assert.deepEqual(db.filterable, []);
      const err = h.throwsCode(() => db.search(Q, 3, { filter: { lang: 'en' } }), 'ERR_INVALID_FILTER');
      assert.match(err.message, /lang/);
      h.throwsCode(() => db.count({ lang: 'en' }), 'ERR_INVALID_FILTER');
      await h.rejectsCode(() => db.searchAsync(Q, 3, { filter: { lang: 'en' } }), 'ERR_INVALID_FILTER');
      assert.equal(db.search(Q, 3, { filter: {} }).length, 1);
      assert.equal(db.count({}), 1);
    });

    it('filterable option validation: ERR_INVALID_ARGUMENT', function () {
      const bad = [
        ['a', 'a'], [''], ['a..b'], ['.a'], ['a.'], ['$a'], ['a.$b'], [1], [null], ['__proto__'], ['a.__proto__'], ['x\0y'], ['\ud800'],
        'a', {}, 7, Array.from({ length: 65 }, (_, i) => `f${i}`),
      ];
      for (const filterable of bad) {
        h.throwsCode(() => new VectorDB({ dimension: 4, filterable }), 'ERR_INVALID_ARGUMENT', JSON.stringify(filterable));
      }
      const ok = h.openDb({ dimension: 4, filterable: Array.from({ length: 64 }, (_, i) => `f${i}.x`) });
      assert.equal(ok.filterable.length, 64);
      const given = ['lang'];
      const db = h.openDb({ dimension: 4, filterable: given });
      given.push('year');
      assert.deepEqual(db.filterable, ['lang'], 'a copy of the declared paths');
      assert.throws(() => db.filterable.push('x'), TypeError);
    });
  });

  describe('concurrency', function () {
    const DIM = 12;
    const FIELDS = ['g', 'n'];

    /* A database of 1200 vectors; the 200 with g = 'keep' no writer touches,
     * so every search below has at least k matches. Returns the metadata mirror. */
    function fill(db) {
      const mirror = new Map();
      const base = h.randomVectors(1200, DIM, 72);
      db.addBatch(base.map((vector, i) => {
        const metadata = { g: i < 200 ? 'keep' : `g${i % 5}`, n: i };
        mirror.set(`b${i}`, metadata);
        return { id: `b${i}`, vector, metadata };
      }));
      return mirror;
    }

    /* Filtered searchAsync calls launched round after round while the writers run between them. */
    async function race(db, mirror) {
      const r = ref.rng(71);
      const filters = [{ g: { $in: ['keep', 'g1'] } }, { $or: [{ g: 'keep' }, { n: { $gte: 600 } }] }, { g: { $ne: 'g2' } }];
      const K = 20;
      let checked = 0;
      const searches = [];
      const launch = (i) => {
        const filter = filters[i % filters.length];
        const query = fdb.randomQuery(r, DIM);
        const plan = ['auto', 'scan', 'graph', 'acorn'][i % 4];
        searches.push(db.searchAsync(query, K, { filter, plan }).then((res) => {
          assert.equal(res.length, K, `search ${i}: k results`);
          for (let j = 0; j < res.length; j++) {
            /* The metadata a hit carries is read with it: it must match. */
            assert.ok(ref.matches(filter, res[j].metadata, FIELDS), `search ${i}: ${res[j].id} ${JSON.stringify(res[j].metadata)} does not match ${JSON.stringify(filter)}`);
            if (j > 0) assert.ok(res[j].distance >= res[j - 1].distance, `search ${i}: not sorted`);
          }
          checked++;
        }));
      };
      const adds = [];
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 4; i++) launch(round * 4 + i);
        const extra = h.randomVectors(30, DIM, 100 + round).map((vector, i) => ({ id: `r${round}-${i}`, vector, metadata: { g: `g${i % 5}`, n: 1000 + i } }));
        for (const e of extra) mirror.set(e.id, e.metadata);
        adds.push(db.addBatchAsync(extra));
        for (let i = 0; i < 10; i++) {
          const n = 200 + ((round * 37 + i * 11) % 1000);
          const metadata = { g: `g${(round + i) % 5}`, n };
          assert.equal(db.updateMetadata(`b${n}`, metadata), mirror.has(`b${n}`));
          if (mirror.has(`b${n}`)) mirror.set(`b${n}`, metadata);
        }
        const ids = [`b${200 + round * 3}`, `b${201 + round * 3}`];
        assert.equal(db.deleteMany(ids), ids.filter((id) => mirror.has(id)).length);
        for (const id of ids) mirror.delete(id);
        /* Only b(1199 - round) has that n: the adds in flight have n < 1030. */
        const gone = [...mirror].filter(([, m]) => m.n === 1199 - round).map(([id]) => id);
        assert.equal(db.deleteMany({ filter: { n: 1199 - round } }), gone.length);
        for (const id of gone) mirror.delete(id);
        await h.tick();
      }
      await Promise.all([...searches, ...adds]);
      assert.equal(checked, searches.length);
      /* Afterwards, the state is what the writes made it. */
      assert.equal(db.count(), mirror.size);
      assert.equal(db.count({ g: 'keep' }), 200);
      for (const f of filters) {
        assert.equal(db.count(f), [...mirror.values()].filter((m) => ref.matches(f, m, FIELDS)).length, JSON.stringify(f));
      }
      const seen = new Map();
      for await (const batch of db.entries({ batchSize: 500 })) for (const e of batch) seen.set(e.id, e.metadata);
      assert.deepEqual(new Map([...seen].sort()), new Map([...mirror].sort()));
    }

    it('eager: filtered searchAsync calls while addBatchAsync, updateMetadata and deleteMany run: every result matching and sorted', async function () {
      const db = h.openDb({ dimension: DIM, metric: 'l2', filterable: FIELDS });
      await race(db, fill(db));
    });

    it('lazy: the same, on a session loaded lazily from files', async function () {
      const db = h.openDb({ dimension: DIM, metric: 'l2', filterable: FIELDS, encryptAtRest: false, chunkSize: 100 });
      const mirror = fill(db);
      const { lazy } = await lazyCopy(db, 'frace');
      await race(lazy, mirror);
    });
  });
});
