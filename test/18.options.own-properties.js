'use strict';
/*
 * 18.options.own-properties.js: options are read only from the object's own
 * properties, each once.
 *
 * Owns: a polluted Object.prototype (any option name, of any method, set to a
 * hostile value) changing nothing; in particular `encryptAtRest: false` on
 * the prototype never producing a plaintext save. The option names come from
 * lib/options.js (OPTION_KEYS), so an option added later is covered without
 * editing this file. Also: a getter on an options object is read once, an
 * inherited item field (id, vector, metadata) is not an item field, and the
 * rules between options (a secret with encryptAtRest: false, a passphrase
 * with a lone surrogate, the one cacheSizeMb range of all three entry points).
 */
const assert = require('node:assert/strict');
const path = require('node:path');
const util = require('node:util');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();
const { OPTION_KEYS } = require(path.join(h.ROOT, 'lib', 'options.js'));

const DIM = 4;
const KEY = s.keyFor('own-properties');
const OTHER_KEY = s.keyFor('own-properties-other');

/* Every option name of every method, once. */
const NAMES = [...new Set(Object.values(OPTION_KEYS).flat())];

/*
 * Values that would change the outcome if the option were read from the
 * prototype: valid-but-different where that is observable, plus values of
 * the wrong type (which fail validation, so reading them is visible too).
 */
let progressCalls = 0;
const SPECIFIC = {
  encryptAtRest: [false],
  key: [OTHER_KEY],
  passphrase: ['hostile passphrase'],
  metric: ['l2'],
  index: ['flat'],
  hnsw: [{ m: 2 }],
  chunkSize: [1],
  cacheSizeMb: [0.001, 1e300],
  lazy: [false],
  includeVector: [true],
  onProgress: [() => { progressCalls++; }],
  signal: [AbortSignal.abort(new Error('hostile abort'))],
  id: ['hostile-id'],
  vector: [[0.5, 0.5, 0.5, 0.5]],
  metadata: [{ polluted: true }],
  minGeneration: [Number.MAX_SAFE_INTEGER],
};
const GENERIC = ['hostile', 0, -1, true, null];

function hostileValues(name) {
  return [...(SPECIFIC[name] || []), ...GENERIC];
}

/* What one step did: its value, or its error's code and message. */
async function step(out, name, fn) {
  try {
    out[name] = { ok: await fn() };
  } catch (err) {
    out[name] = { code: err && err.code, message: err && err.message };
  }
}

const shape = (results) => results.map((r) => ({ id: r.id, metadata: r.metadata, vector: Object.hasOwn(r, 'vector') }));

function inspectShape(i) {
  return { encrypted: i.encrypted, metric: i.metric, index: i.index, hnsw: i.hnsw, chunkSize: i.chunkSize, dimension: i.dimension, chunkCount: i.chunkCount, totalVectors: i.totalVectors, kdf: i.kdf };
}

/*
 * Calls every method with option objects that leave every option out (so a
 * polluted prototype is the only place an option could come from) and items
 * that leave optional fields out, and records what happened.
 */
async function exercise() {
  progressCalls = 0;
  const out = {};
  const vs = h.randomVectors(12, DIM, 18);
  const dir = s.freshPath('own');
  let db = null;
  let loaded = null;
  try {
    await step(out, 'construct', () => {
      db = new VectorDB({ dimension: DIM, key: KEY, hnsw: {} });
      return { dimension: db.dimension, metric: db.metric, index: db.index };
    });
    if (!db) return out;
    await step(out, 'add', () => {
      db.add('a0', vs[0]);
      return db.get('a0').metadata;
    });
    await step(out, 'addBatch', () => {
      db.addBatch([{ id: 'b0', vector: vs[1] }, { id: 'b1', vector: vs[2], metadata: { own: 1 } }]);
      return [db.get('b0').metadata, db.get('b1').metadata];
    });
    await step(out, 'addBatch without id', () => db.addBatch([{ vector: vs[3] }]));
    await step(out, 'addBatch without vector', () => db.addBatch([{ id: 'novec' }]));
    await step(out, 'addBatchAsync', async () => {
      await db.addBatchAsync(vs.slice(4).map((vector, i) => ({ id: `c${i}`, vector })), {});
      return db.size;
    });
    await step(out, 'search', () => shape(db.search(vs[0], 3, {})));
    await step(out, 'searchAsync', async () => shape(await db.searchAsync(vs[0], 3, {})));
    await step(out, 'searchBatch', () => db.searchBatch([vs[0]], 3, {}).map(shape));
    await step(out, 'searchBatchAsync', async () => (await db.searchBatchAsync([vs[0]], 3, {})).map(shape));
    await step(out, 'save', async () => (await db.save(dir, {})).generation);
    await step(out, 'inspect', async () => inspectShape(await VectorDB.inspect(dir)));
    await step(out, 'load', async () => {
      loaded = await VectorDB.load(dir, { key: KEY });
      const st = loaded.loadStats;
      return { lazy: st.lazy, cacheSizeMb: st.cacheSizeMb, generation: st.generation, size: loaded.size, meta: loaded.get('b1').metadata };
    });
    if (loaded) await step(out, 'preload', () => loaded.preload(undefined, {}));
    await step(out, 'no secret, default encryption', async () => {
      const plain = new VectorDB({ dimension: DIM });
      try {
        plain.add('p', vs[0]);
        const where = s.freshPath('own-nokey');
        await plain.save(where);
        return inspectShape(await VectorDB.inspect(where));
      } finally {
        plain.close();
      }
    });
    out.progressCalls = progressCalls;
    return out;
  } finally {
    if (db) db.close();
    if (loaded) loaded.close();
  }
}

/* Runs `fn` with Object.prototype[name] = value, always removing it again. */
async function polluted(name, value, fn) {
  assert.equal(Object.hasOwn(Object.prototype, name), false, `Object.prototype.${name} already exists`);
  // eslint-disable-next-line no-extend-native
  Object.prototype[name] = value; /* a plain assignment, as polluting code does: enumerable */
  try {
    return await fn();
  } finally {
    delete Object.prototype[name];
  }
}

describe('18 options: own properties only', function () {
  let baseline;

  before(async function () {
    baseline = await exercise();
    /* the baseline itself must be what the defaults say */
    assert.equal(baseline.inspect.ok.encrypted, true, 'baseline save is encrypted');
    assert.equal(baseline['no secret, default encryption'].code, 'ERR_KEY_REQUIRED');
    assert.equal(baseline.add.ok, null);
    assert.equal(baseline.load.ok.lazy, true);
  });

  it('enumerates the option names of every method from lib/options.js', function () {
    for (const group of ['VectorDB', 'hnsw', 'search', 'async', 'load', 'item']) {
      assert.ok(Array.isArray(OPTION_KEYS[group]) && OPTION_KEYS[group].length > 0, `OPTION_KEYS.${group}`);
    }
    for (const name of ['encryptAtRest', 'key', 'passphrase', 'cacheSizeMb', 'efSearch', 'signal', 'onProgress', 'lazy', 'threads', 'id', 'vector', 'metadata']) {
      assert.ok(NAMES.includes(name), `${name} is enumerated`);
    }
  });

  it('Object.prototype.encryptAtRest = false does not make a keyed database save plaintext', async function () {
    await polluted('encryptAtRest', false, async () => {
      const db = s.newDb({ dimension: DIM, key: KEY });
      db.add('x', [1, 2, 3, 4]);
      const dir = s.freshPath('own-enc');
      await db.save(dir);
      assert.equal((await VectorDB.inspect(dir)).encrypted, true, 'the session was saved in plaintext');
      assert.notEqual(s.readManifest(dir).json.encryption, null, 'manifest says unencrypted');
    });
  });

  for (const name of NAMES) {
    it(`a polluted Object.prototype.${name} is ignored by every method`, async function () {
      for (const value of hostileValues(name)) {
        const got = await polluted(name, value, exercise);
        assert.deepEqual(got, baseline, `Object.prototype.${name} = ${util.inspect(value)} changed the outcome`);
      }
    });
  }

  it('a polluted Object.prototype.signal cannot unhook the abort listener of a running job', async function () {
    const { getEventListeners } = require('node:events');
    const db = s.newDb({ dimension: DIM, encryptAtRest: false, threads: 1 });
    const ac = new AbortController();
    await polluted('signal', AbortSignal.abort(), async () => {
      /* addEventListener(type, fn, { once: true }) reads `signal` from its
       * options object: an inherited aborted one would drop the listener */
      const p = db.addBatchAsync(h.randomVectors(20, DIM, 4).map((vector, i) => ({ id: `s${i}`, vector })), { signal: ac.signal });
      assert.equal(getEventListeners(ac.signal, 'abort').length, 1, 'the job listens for abort');
      await p;
    });
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0, 'and stops listening when it ends');
  });

  describe('contradictory and inconsistent options', function () {
    it('a key or passphrase with encryptAtRest: false is refused, not silently ignored', function () {
      for (const secret of [{ key: KEY }, { passphrase: 'pw' }, { passphrase: new Uint8Array([1]) }]) {
        const err = h.throwsCode(() => new VectorDB({ dimension: DIM, encryptAtRest: false, ...secret }), 'ERR_INVALID_ARGUMENT');
        assert.match(err.message, /encryptAtRest: false/);
        assert.match(err.message, new RegExp(Object.keys(secret)[0]));
      }
      /* either alone is fine */
      s.newDb({ dimension: DIM, encryptAtRest: false }).close();
      s.newDb({ dimension: DIM, encryptAtRest: true, key: KEY }).close();
    });

    it('a passphrase with a lone surrogate is refused (UTF-8 would make two passphrases one)', async function () {
      for (const bad of ['pw\uD800', '\uDC00pw', 'a\uDBFFb', '\uDFFF']) {
        h.throwsCode(() => new VectorDB({ dimension: DIM, passphrase: bad }), 'ERR_INVALID_ARGUMENT');
        await h.rejectsCode(() => VectorDB.load(s.freshPath('own-sur'), { passphrase: bad }), 'ERR_INVALID_ARGUMENT');
      }
      /* a well-formed pair is an ordinary character */
      s.newDb({ dimension: DIM, passphrase: 'pw\uD83E\uDD84' }).close();
    });

    it('cacheSizeMb follows one rule in the constructor, load() and setCacheSize(), up to 1 TiB', async function () {
      const { LIMITS } = require(path.join(h.ROOT, 'lib', 'options.js'));
      const max = LIMITS.maxCacheSizeMb;
      assert.equal(max, 1048576);
      const dir = s.freshPath('own-cache');
      const db = s.newDb({ dimension: DIM, encryptAtRest: false });
      db.add('x', [1, 2, 3, 4]);
      await db.save(dir);
      const justOver = max + 2 ** -32; /* the next doubles above max are this far apart at most */
      assert.ok(justOver > max);
      const tries = {
        constructor: (mb) => s.newDb({ dimension: DIM, cacheSizeMb: mb }).close(),
        load: async (mb) => (await s.loadDb(dir, { cacheSizeMb: mb })).close(),
        setCacheSize: (mb) => db.setCacheSize(mb),
      };
      for (const [where, fn] of Object.entries(tries)) {
        for (const ok of [max, 1e-6, 1, 150]) await fn(ok);
        for (const bad of [justOver, 1e300, Number.MAX_VALUE, Infinity, 0, -0, -1, NaN, '1', null]) {
          let err = null;
          try {
            await fn(bad);
          } catch (e) {
            err = e;
          }
          assert.ok(err, `${where} accepted cacheSizeMb ${bad}`);
          h.assertVecvaultError(err, 'ERR_INVALID_ARGUMENT', `${where}(${bad})`);
        }
      }
      const loaded = await s.loadDb(dir, { cacheSizeMb: max });
      assert.equal(loaded.loadStats.cacheSizeMb, max);
      assert.equal(loaded.cacheStats().capacityBytes, max * 1048576);
    });
  });

  describe('getters', function () {
    /* An object whose properties are getters counting their reads. */
    function counting(values) {
      const reads = Object.create(null);
      const o = {};
      for (const [k, v] of Object.entries(values)) {
        reads[k] = 0;
        Object.defineProperty(o, k, { enumerable: true, get() { reads[k]++; return v; } });
      }
      return { o, reads };
    }
    const once = (reads, what) => {
      for (const [k, n] of Object.entries(reads)) assert.equal(n, 1, `${what}: ${k} read ${n} times`);
    };

    it('each constructor, hnsw, search and load option is read exactly once', async function () {
      const hn = counting({ m: 8, efConstruction: 20, efSearch: 16 });
      const ctor = counting({ dimension: DIM, metric: 'l2', index: 'hnsw', hnsw: hn.o, chunkSize: 5, cacheSizeMb: 1, encryptAtRest: true, key: KEY, threads: 1 });
      const db = s.newDb(ctor.o);
      once(ctor.reads, 'constructor');
      once(hn.reads, 'hnsw');
      db.addBatch(h.randomVectors(6, DIM, 3).map((vector, i) => ({ id: `g${i}`, vector })));
      const so = counting({ efSearch: 10, includeVector: true, rerank: 2 });
      db.search([1, 0, 0, 0], 2, so.o);
      once(so.reads, 'search');
      const dir = s.freshPath('own-get');
      const ao = counting({ onProgress: () => {} });
      await db.save(dir, ao.o);
      once(ao.reads, 'save');
      const lo = counting({ key: KEY, cacheSizeMb: 2, lazy: true, threads: 1, onProgress: () => {} });
      const db2 = await s.loadDb(dir, lo.o);
      once(lo.reads, 'load');
      assert.equal(db2.size, 6);
    });

    it('an encryptAtRest getter cannot pass validation with one value and act on another', async function () {
      let n = 0;
      const o = { dimension: DIM, key: KEY };
      Object.defineProperty(o, 'encryptAtRest', { enumerable: true, get: () => (n++ === 0 ? true : false) });
      const db = s.newDb(o);
      db.add('x', [1, 2, 3, 4]);
      const dir = s.freshPath('own-toctou');
      await db.save(dir);
      assert.equal((await VectorDB.inspect(dir)).encrypted, true);
    });

    it('item fields are read once and only from the item itself', function () {
      const db = s.newDb({ dimension: DIM, encryptAtRest: false, threads: 1 });
      const it = counting({ id: 'i0', vector: [1, 2, 3, 4], metadata: { m: 1 } });
      db.addBatch([it.o]);
      once(it.reads, 'item');
      /* an item whose fields are inherited from its own prototype is not an item */
      const inherited = Object.create({ id: 'proto-id', vector: [1, 2, 3, 4] });
      h.throwsCode(() => db.addBatch([inherited]), 'ERR_INVALID_ID');
      assert.equal(db.has('proto-id'), false);
    });
  });
});
