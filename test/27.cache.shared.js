'use strict';
/*
 * 27.cache.shared.js: one cache budget shared by many lazily loaded sessions
 * (VectorDB.Cache and load()'s `cache` option).
 *
 * Owns: the shared bound never passed while searches run at once across
 * sessions; results the same as with a session's own cache; a session's
 * cacheSizeMb as its cap inside the budget (held at every sample, and its
 * scan then never evicts the others'); an uncapped session's scan evicting
 * the others' values; each session's cacheStats() as its share of the
 * whole; setMaxMb(); bad Cache options and bad `cache` values refused with
 * typed errors, in lib/ and in the binding (type tag); and a Cache that JS
 * no longer references (garbage collected) still serving its sessions.
 */
const assert = require('node:assert/strict');
const v8 = require('node:v8');
const vm = require('node:vm');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();
const native = require('../lib/native');

const DIM = 32;
const N = 2000;
const KEY = s.keyFor('shared-cache');
const MiB = 1048576;

/* A clustered HNSW session of N vectors in small chunks, seeded per tenant. */
async function savedSession(seed) {
  const dir = s.freshPath(`shared${seed}`);
  const db = s.newDb({ dimension: DIM, metric: 'cosine', chunkSize: 100, hnsw: { efConstruction: 64 }, key: KEY });
  const vs = h.clusteredVectors(N, DIM, { clusters: 16, seed });
  db.addBatch(vs.map((vector, i) => ({ id: `t${seed}-${i}`, vector, metadata: i % 2 ? { i } : undefined })));
  await db.save(dir);
  db.close();
  return dir;
}

function queries(nq, seed) {
  return h.clusteredVectors(nq, DIM, { clusters: 16, seed, spread: 0.2 });
}

/* Every query's results with the session's own ample cache: the reference. */
async function reference(dir, qs) {
  const db = await s.loadDb(dir, { key: KEY });
  const out = qs.map((q) => h.plainResults(db.search(q, 10)));
  db.close();
  return out;
}

/* A settled cache: the sessions' shares add up to the whole. */
function assertShares(cache, dbs) {
  const whole = cache.stats();
  const shares = dbs.map((db) => db.cacheStats());
  assert.equal(shares.reduce((a, c) => a + c.bytes, 0), whole.bytes, 'session bytes sum to the cache bytes');
  assert.equal(shares.reduce((a, c) => a + c.misses, 0), whole.misses, 'session misses sum to the cache misses');
  assert.ok(whole.bytes <= whole.capacityBytes);
}

describe('27 one cache budget for many sessions', function () {
  this.timeout(120000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  let dirs; /* three tenants' sessions */
  let qs;
  let refs;
  let valueBytes; /* what one cached value of these sessions costs, about */
  before(async function () {
    dirs = [await savedSession(1), await savedSession(2), await savedSession(3)];
    qs = queries(40, 9);
    refs = [];
    for (const dir of dirs) refs.push(await reference(dir, qs));
    const probe = await s.loadDb(dirs[0], { key: KEY });
    probe.search(qs[0], 10);
    const c = probe.cacheStats();
    valueBytes = Math.ceil(c.bytes / Math.max(1, c.misses));
    probe.close();
    assert.ok(valueBytes > 0, 'a search caches something');
  });

  it('never passes the shared bound while sessions search at once, with the same results as unshared', async function () {
    const cache = new VectorDB.Cache({ maxMb: (valueBytes * 6) / MiB });
    const dbs = [];
    for (const dir of dirs) dbs.push(await s.loadDb(dir, { key: KEY, cache }));
    assert.equal(cache.stats().sessions, 3);
    let samples = 0;
    const runs = [];
    for (let round = 0; round < 2; round++) {
      dbs.forEach((db, t) => {
        qs.forEach((q, i) => {
          runs.push(db.searchAsync(q, 10).then((res) => {
            const c = cache.stats();
            samples++;
            assert.ok(c.bytes <= c.capacityBytes, `cached ${c.bytes} > ${c.capacityBytes}`);
            const own = db.cacheStats();
            assert.ok(own.bytes <= c.capacityBytes && own.capacityBytes === c.capacityBytes);
            assert.deepEqual(h.plainResults(res), refs[t][i], `tenant ${t} query ${i}`);
          }));
        });
      });
    }
    await Promise.all(runs);
    assert.equal(samples, 2 * 3 * qs.length);
    const c = cache.stats();
    assert.ok(c.evictions > 0, 'a budget of a few values must evict');
    assert.ok(c.hits > 0 && c.misses > 0);
    assertShares(cache, dbs);
  });

  it('holds a session to its cacheSizeMb inside the budget, so its scan leaves the others alone', async function () {
    const cache = new VectorDB.Cache({ maxMb: (valueBytes * 200) / MiB });
    const capMb = (valueBytes * 3) / MiB;
    const scanner = await s.loadDb(dirs[0], { key: KEY, cache, cacheSizeMb: capMb });
    const others = [await s.loadDb(dirs[1], { key: KEY, cache }), await s.loadDb(dirs[2], { key: KEY, cache })];
    for (const db of others) for (const q of qs.slice(0, 10)) db.search(q, 10);
    const before = others.map((db) => db.cacheStats());
    assert.ok(before.every((c) => c.bytes > 0 && c.evictions === 0));
    const cap = scanner.cacheStats().capacityBytes;
    assert.equal(cap, Math.round(capMb * MiB), 'the session reports its cap as its bound');
    /* The others' values and the scanner's cap must fit the budget together,
     * or evicting the others would be right. What the others hold varies
     * from run to run (their graphs were built on several threads), so the
     * budget grows to fit when 200 values were not enough. */
    let budget = cache.stats().capacityBytes;
    const needed = before.reduce((a, c) => a + c.bytes, 0) + cap + valueBytes;
    if (needed > budget) {
      cache.setMaxMb(needed / MiB);
      budget = cache.stats().capacityBytes;
    }
    const runs = qs.map((q, i) => scanner.searchAsync(q, 10).then((res) => {
      const own = scanner.cacheStats();
      assert.ok(own.bytes <= cap, `session holds ${own.bytes} > its cap ${cap}`);
      assert.deepEqual(h.plainResults(res), refs[0][i], `query ${i}`);
    }));
    await Promise.all(runs);
    const own = scanner.cacheStats();
    assert.ok(own.evictions > 0, 'the capped session recycled its own values');
    others.forEach((db, i) => {
      const c = db.cacheStats();
      assert.equal(c.evictions, 0, `tenant ${i + 1} lost values to a capped scan`);
      assert.equal(c.bytes, before[i].bytes);
    });
    assertShares(cache, [scanner, ...others]);
    /* setCacheSize() on a shared session changes its cap, not the budget. */
    scanner.setCacheSize((valueBytes * 1) / MiB);
    assert.ok(scanner.cacheStats().bytes <= valueBytes);
    assert.equal(cache.stats().capacityBytes, budget);
  });

  it("lets an uncapped session's scan take the others' room, least recently used first", async function () {
    const cache = new VectorDB.Cache({ maxMb: (valueBytes * 12) / MiB });
    const idle = await s.loadDb(dirs[1], { key: KEY, cache });
    const busy = await s.loadDb(dirs[0], { key: KEY, cache });
    for (const q of qs.slice(0, 5)) idle.search(q, 10);
    assert.ok(idle.cacheStats().bytes > 0);
    for (const q of qs) busy.search(q, 10);
    assert.ok(idle.cacheStats().evictions > 0, "the busy session evicted the idle one's values");
    assert.ok(busy.cacheStats().bytes > idle.cacheStats().bytes);
    assertShares(cache, [idle, busy]);
    /* A smaller budget evicts at once. */
    cache.setMaxMb((valueBytes * 2) / MiB);
    assert.equal(cache.maxMb, (valueBytes * 2) / MiB);
    const c = cache.stats();
    assert.ok(c.bytes <= c.capacityBytes && c.capacityBytes === Math.round(valueBytes * 2));
    h.throwsCode(() => cache.setMaxMb(0), 'ERR_INVALID_ARGUMENT');
    h.throwsCode(() => cache.setMaxMb('1'), 'ERR_INVALID_ARGUMENT');
  });

  it('refuses bad Cache options and bad cache values with typed errors', async function () {
    for (const bad of [undefined, null, 1, 'x', [], { maxMb: 0 }, { maxMb: -1 }, { maxMb: '4' }, { maxMb: NaN },
      { maxMb: Infinity }, { maxMb: 2 * 1048576 }, { maxMb: 4, extra: 1 }, {}]) {
      h.throwsCode(() => new VectorDB.Cache(bad), 'ERR_INVALID_ARGUMENT', `new Cache(${JSON.stringify(bad)})`);
    }
    const proto = Object.getPrototypeOf({});
    proto.maxMb = 4; /* inherited options are not options */
    try {
      h.throwsCode(() => new VectorDB.Cache({}), 'ERR_INVALID_ARGUMENT', 'an inherited maxMb');
    } finally {
      delete proto.maxMb;
    }
    h.throwsCode(() => VectorDB.Cache.prototype.stats.call({}), 'ERR_INVALID_ARGUMENT', 'stats on a plain object');
    const fake = Object.create(VectorDB.Cache.prototype);
    for (const bad of [null, 1, 'cache', {}, fake, new native.Cache(MiB), s.newDb({ dimension: DIM })]) {
      await h.rejectsCode(() => VectorDB.load(dirs[0], { key: KEY, cache: bad }), 'ERR_INVALID_ARGUMENT',
        `load with cache ${Object.prototype.toString.call(bad)}`);
    }
    /* The binding checks the type tag itself: a plain object never reaches the engine as a cache. */
    for (const bad of [{}, fake, new Uint8Array(8)]) {
      h.throwsCode(() => native.loadAsync(dirs[0], KEY, null, 1, 1, 0, null, null, undefined, bad),
        'ERR_INVALID_ARGUMENT', 'native loadAsync with a foreign cache');
    }
    h.throwsCode(() => native.Cache.prototype.stats.call({}), 'ERR_INVALID_ARGUMENT', 'native stats on a plain object');
    h.throwsCode(() => new native.Cache(0), 'ERR_INVALID_ARGUMENT', 'a native cache of 0 bytes');
  });

  it('keeps serving its sessions after JS drops and collects the Cache', async function () {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc');
    let collected = false;
    const registry = new FinalizationRegistry(() => { collected = true; });
    const dbs = [];
    await (async () => {
      const cache = new VectorDB.Cache({ maxMb: (valueBytes * 4) / MiB });
      registry.register(cache, 'cache');
      for (const dir of dirs.slice(0, 2)) dbs.push(await s.loadDb(dir, { key: KEY, cache }));
    })();
    for (let i = 0; i < 50 && !collected; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(collected, 'the Cache object was garbage collected');
    const runs = [];
    dbs.forEach((db, t) => qs.forEach((q, i) => runs.push(db.searchAsync(q, 10).then((res) => {
      assert.deepEqual(h.plainResults(res), refs[t][i]);
    }))));
    await Promise.all(runs);
    const shares = dbs.map((db) => db.cacheStats());
    assert.ok(shares.every((c) => c.misses > 0));
    assert.ok(shares[0].bytes + shares[1].bytes <= Math.round(valueBytes * 4), 'the collected budget still binds');
    dbs.forEach((db) => db.close());
  });
});
