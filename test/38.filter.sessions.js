'use strict';
/*
 * Filterable values across sessions: a reader that refreshes (in place or
 * by a full reload) filters on the writer's new values; readers on object
 * storage filter without reading a page; an old session without filterable
 * fields keeps working and is refused a filter with a clear error.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./helpers');

const { VectorDB, MemoryStorage } = h.vecvault();
const DIM = 8;

function freshDir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `vv-fsess-${tag}-`));
}

function fill(db, n, seed, lang = (i) => (i % 3 === 0 ? 'en' : 'de')) {
  const vs = h.clusteredVectors(n, DIM, { clusters: 8, seed });
  db.addBatch(vs.map((v, i) => ({ id: `v${i}`, vector: v, metadata: { lang: lang(i), n: i, tags: i % 5 === 0 ? ['five'] : [] } })));
  return vs;
}

describe('38 filterable values across sessions', function () {
  this.timeout(120000);
  afterEach(h.closeAll);

  it('a reader refreshed in place filters on the writer\'s updated, added and deleted rows', async function () {
    const dir = freshDir('refresh');
    const writer = h.openDb({ dimension: DIM, metric: 'l2', filterable: ['lang', 'n', 'tags'], encryptAtRest: false, chunkSize: 200 });
    const vs = fill(writer, 1000, 3);
    await writer.save(dir);
    const reader = await VectorDB.load(dir, { lazy: true });
    assert.deepEqual([...reader.filterable], ['lang', 'n', 'tags']);
    assert.equal(reader.count({ lang: 'en' }), writer.count({ lang: 'en' }));

    /* A small change: the next save is a delta, which the reader applies in place. */
    for (let i = 0; i < 30; i++) assert.equal(writer.updateMetadata(`v${i}`, { lang: 'fr', n: -i, tags: ['moved'] }), true);
    writer.add('new-1', vs[0], { lang: 'fr', n: 5000, tags: ['moved'] });
    assert.equal(writer.deleteMany({ filter: { n: { $gte: 990, $lt: 1000 } } }), 10);
    const st = await writer.save(dir);
    assert.equal(st.full, false, 'a delta, not a full rewrite');
    const misses = reader.cacheStats().misses;
    await reader.refresh();
    assert.equal(reader.loadStats.generation, st.generation);
    for (const f of [{ lang: 'fr' }, { tags: 'moved' }, { n: { $gte: 990 } }, { n: { $lt: 0 } }, { lang: { $in: ['en', 'de'] } }, {}]) {
      assert.equal(reader.count(f), writer.count(f), JSON.stringify(f));
    }
    assert.equal(reader.cacheStats().misses, misses, 'counting reads no page');
    const hits = await reader.searchAsync(vs[0], 40, { filter: { lang: 'fr' } });
    assert.equal(hits.length, 31);
    for (const hit of hits) assert.equal(hit.metadata.lang, 'fr');
    const got = await reader.getAsync('v3');
    assert.deepEqual(got.metadata, { lang: 'fr', n: -3, tags: ['moved'] });
  });

  it('a full reload (a new base) carries the values too, and an eager load agrees with a lazy one', async function () {
    const dir = freshDir('reload');
    const writer = h.openDb({ dimension: DIM, metric: 'cosine', filterable: ['lang', 'n'], encryptAtRest: false });
    fill(writer, 600, 5);
    await writer.save(dir);
    const reader = await VectorDB.load(dir, { lazy: true });
    /* Every row changes: the save writes a new index base, which the reader loads anew. */
    for (let i = 0; i < 600; i++) writer.updateMetadata(`v${i}`, { lang: i % 2 ? 'odd' : 'even', n: i });
    await writer.save(dir);
    await reader.refresh();
    const eager = await VectorDB.load(dir, { lazy: false });
    for (const db of [reader, eager]) {
      assert.equal(db.count({ lang: 'odd' }), 300);
      assert.equal(db.count({ lang: 'en' }), 0);
    }
    const q = h.clusteredVectors(1, DIM, { clusters: 8, seed: 99 })[0];
    const a = await reader.searchAsync(q, 10, { filter: { lang: 'odd' }, plan: 'scan' });
    const b = eager.search(q, 10, { filter: { lang: 'odd' }, plan: 'scan' });
    assert.deepEqual(a.map((x) => x.id), b.map((x) => x.id));
  });

  it('on JavaScript storage, count and filtered searches need no page; updateMetadata needs the async variant', async function () {
    const store = new MemoryStorage();
    const writer = h.openDb({ dimension: DIM, metric: 'l2', filterable: ['lang'], encryptAtRest: false });
    const vs = fill(writer, 500, 7);
    await writer.save(store);
    const reader = await VectorDB.load(store, { lazy: true });
    assert.equal(reader.count({ lang: 'en' }), writer.count({ lang: 'en' }));
    h.throwsCode(() => reader.search(vs[1], 5, { filter: { lang: 'en' } }), 'ERR_ASYNC_REQUIRED');
    h.throwsCode(() => reader.updateMetadata('v1', { lang: 'xx' }), 'ERR_ASYNC_REQUIRED');
    assert.equal(await reader.updateMetadataAsync('v1', { lang: 'xx' }), true);
    assert.equal(await reader.updateMetadataAsync('absent', { lang: 'xx' }), false);
    const hits = await reader.searchAsync(vs[1], 5, { filter: { lang: 'xx' } });
    assert.deepEqual(hits.map((x) => x.id), ['v1']);
    assert.deepEqual(Array.from(hits[0].vector || (await reader.getAsync('v1')).vector), Array.from(vs[1]));
    await reader.save(store);
    const again = await VectorDB.load(store, { lazy: true });
    assert.equal(again.count({ lang: 'xx' }), 1);
    assert.deepEqual((await again.getAsync('v1')).metadata, { lang: 'xx' }, 'the metadata is replaced whole');
  });

  it('a session saved without filterable fields stays version 3, and a filter on it names the missing declaration', async function () {
    const dir = freshDir('plain');
    const db = h.openDb({ dimension: DIM, encryptAtRest: false });
    fill(db, 50, 9);
    await db.save(dir);
    assert.equal((await VectorDB.inspect(dir)).version, 3);
    const back = await VectorDB.load(dir);
    assert.deepEqual([...back.filterable], []);
    assert.equal(back.count(), 50);
    assert.equal(back.count({}), 50);
    const err = h.throwsCode(() => back.count({ lang: 'en' }), 'ERR_INVALID_FILTER');
    assert.match(err.message, /lang/);
  });
});
