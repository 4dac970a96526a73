'use strict';
/*
 * 41.langchain.js: VecvaultStore, the LangChain.js VectorStore at
 * require('vecvault/langchain'), driven through LangChain's own entry points
 * (similaritySearch, asRetriever, fromTexts) with the deterministic
 * SyntheticEmbeddings of @langchain/core/utils/testing: the same text always
 * embeds to the same vector, so a text's own query must find it first.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Document } = require('@langchain/core/documents');
const { SyntheticEmbeddings } = require('@langchain/core/utils/testing');
const { VecvaultStore } = require('vecvault/langchain');
const { VectorDB, MemoryStorage } = require('vecvault');
const h = require('./helpers');

const ROOT = path.resolve(__dirname, '..');
const KEY = new Uint8Array(32).fill(7);
const TEXTS = [
  'the quick brown fox jumps over the lazy dog',
  'a journey of a thousand miles begins with a single step',
  'to be or not to be that is the question',
  'all that glitters is not gold',
  'the early bird catches the worm every morning',
  'knowledge is power and power corrupts',
  'where there is smoke there is fire somewhere',
  'practice makes perfect said the old teacher',
];
const META = TEXTS.map((_, i) => ({ n: i, lang: i % 2 === 0 ? 'en' : 'de', tags: ['t', `t${i}`], nested: { deep: [i, { x: null }] } }));

const embeddings = () => new SyntheticEmbeddings({ vectorSize: 16 });

const stores = new Set();
function track(store) {
  stores.add(store);
  return store;
}
let tmp;
beforeEach(function () {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-41-'));
});
afterEach(function () {
  for (const s of stores) if (s.db && !s.db.closed) s.close();
  stores.clear();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('41 LangChain vector store (vecvault/langchain)', function () {
  it('the synthetic embeddings of the test texts are distinct and non-zero', async function () {
    const vs = await embeddings().embedDocuments(TEXTS);
    for (const v of vs) assert.ok(v.some((x) => x !== 0));
    assert.equal(new Set(vs.map((v) => v.join(','))).size, TEXTS.length);
  });

  it('fromTexts: every text is found first for its own query, score 1 under cosine, scores descending, metadata intact', async function () {
    const store = track(await VecvaultStore.fromTexts(TEXTS, META, embeddings(), { index: 'flat' }));
    assert.equal(store._vectorstoreType(), 'vecvault');
    assert.ok(store.db instanceof VectorDB);
    assert.equal(store.db.size, TEXTS.length);
    for (let i = 0; i < TEXTS.length; i++) {
      const hits = await store.similaritySearchWithScore(TEXTS[i], 3);
      assert.equal(hits.length, 3);
      const [doc, score] = hits[0];
      assert.ok(doc instanceof Document);
      assert.equal(doc.pageContent, TEXTS[i]);
      assert.deepEqual(doc.metadata, META[i], 'user metadata comes back exactly, without the stored text');
      assert.equal(typeof doc.id, 'string');
      h.assertClose(score, 1, `score of text ${i} for itself`);
      assert.ok(hits[1][1] <= hits[0][1] && hits[2][1] <= hits[1][1], 'larger score first');
    }
  });

  it('addDocuments and addVectors: ids from options.ids, then from Document.id, else generated; an id added again is replaced', async function () {
    const emb = embeddings();
    const store = track(new VecvaultStore(emb, { metric: 'cosine' }));
    assert.equal(store.db, null, 'no database until the first vectors fix the dimension');
    assert.deepEqual(await store.similaritySearch('anything', 2), [], 'an empty store finds nothing');
    const ids = await store.addDocuments([
      new Document({ pageContent: TEXTS[0], metadata: { a: 1 } }),
      new Document({ pageContent: TEXTS[1], metadata: {} }),
    ], { ids: ['x', 'y'] });
    assert.deepEqual(ids, ['x', 'y']);
    assert.equal(store.db.dimension, 16);
    const own = await store.addDocuments([new Document({ pageContent: TEXTS[2], id: 'doc-id' })]);
    assert.deepEqual(own, ['doc-id']);
    const [gen] = await store.addVectors(await emb.embedDocuments([TEXTS[3]]), [new Document({ pageContent: TEXTS[3] })]);
    assert.match(gen, /^[0-9a-f-]{36}$/);
    await store.addDocuments([new Document({ pageContent: TEXTS[4], metadata: { a: 2 } })], { ids: ['x'] });
    assert.equal(store.db.size, 4);
    const [[doc]] = await store.similaritySearchWithScore(TEXTS[4], 1);
    assert.equal(doc.id, 'x');
    assert.deepEqual(doc.metadata, { a: 2 });
    assert.deepEqual((await store.similaritySearch(TEXTS[2], 1))[0].metadata, {});
  });

  it('bad input is a typed error and adds nothing', async function () {
    const store = track(new VecvaultStore(embeddings(), { dimension: 16 }));
    const reserved = new Document({ pageContent: 'x', metadata: { __pageContent: 'mine' } });
    await h.rejectsCode(() => store.addDocuments([new Document({ pageContent: TEXTS[0] }), reserved]), 'ERR_INVALID_ARGUMENT', 'the reserved metadata key');
    await h.rejectsCode(() => store.addDocuments([{ pageContent: 1 }]), 'ERR_INVALID_ARGUMENT', 'a pageContent that is not a string');
    await h.rejectsCode(() => store.addDocuments([{ pageContent: 'a', metadata: [1] }]), 'ERR_INVALID_ARGUMENT', 'metadata that is an array');
    await h.rejectsCode(() => store.addDocuments([new Document({ pageContent: TEXTS[0] })], { ids: ['a', 'b'] }), 'ERR_INVALID_ARGUMENT', 'ids of the wrong length');
    await h.rejectsCode(() => store.addVectors([[1, 2]], []), 'ERR_INVALID_ARGUMENT', 'fewer documents than vectors');
    await h.rejectsCode(() => store.addVectors([[1, 2]], [new Document({ pageContent: 'a' })]), 'ERR_DIMENSION_MISMATCH', 'a vector of the wrong length');
    await h.rejectsCode(() => VecvaultStore.fromTexts(['a', 'b'], [{}], embeddings(), {}), 'ERR_INVALID_ARGUMENT', 'fewer metadatas than texts');
    assert.throws(() => new VecvaultStore(embeddings(), { db: store.db, metric: 'l2' }), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => new VecvaultStore(embeddings(), { db: {} }), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => new VecvaultStore(embeddings(), { dimension: 16, bogus: 1 }), { code: 'ERR_INVALID_ARGUMENT' });
    await h.rejectsCode(() => store.delete(), 'ERR_INVALID_ARGUMENT', 'delete without ids or filter');
    await h.rejectsCode(() => store.delete({ ids: 'x' }), 'ERR_INVALID_ARGUMENT', 'delete with ids not an array');
    await h.rejectsCode(() => new VecvaultStore(embeddings()).save(tmp), 'ERR_INVALID_ARGUMENT', 'saving a store that has no database');
    assert.equal(store.db.size, 0);
  });

  it('filters are vecvault filters on the filterable fields, through search and the retriever', async function () {
    const store = track(await VecvaultStore.fromTexts(TEXTS, META, embeddings(), { filterable: ['lang', 'n', 'tags'] }));
    const de = await store.similaritySearch(TEXTS[0], 10, { lang: 'de' });
    assert.deepEqual(de.map((d) => d.metadata.n).sort(), [1, 3, 5, 7]);
    const some = await store.similaritySearchWithScore(TEXTS[2], 10, { $and: [{ n: { $gte: 2 } }, { tags: { $in: ['t2', 't6'] } }] });
    assert.deepEqual(some.map(([d]) => d.pageContent), [TEXTS[2], TEXTS[6]]);
    const retriever = store.asRetriever({ k: 2, filter: { lang: 'en' } });
    const got = await retriever.invoke(TEXTS[1]);
    assert.equal(got.length, 2);
    for (const d of got) assert.equal(d.metadata.lang, 'en');
    await h.rejectsCode(() => store.similaritySearch('x', 2, (doc) => doc.metadata.n === 1), 'ERR_INVALID_FILTER', 'a function filter');
    await h.rejectsCode(() => store.similaritySearch('x', 2, { nested: 1 }), 'ERR_INVALID_FILTER', 'a field that is not filterable');
  });

  it('a store on a VectorDB filled directly reads its items as documents', async function () {
    const db = h.openDb({ dimension: 3, index: 'flat' });
    db.add('obj', [1, 0, 0], { a: 1 });
    db.add('text', [0, 1, 0], { __pageContent: 'stored text', b: 2 });
    db.add('str', [0, 0, 1], 'just a string');
    const store = new VecvaultStore(embeddings(), { db });
    const byId = Object.fromEntries((await store.similaritySearchVectorWithScore([1, 1, 1], 3)).map(([d]) => [d.id, d]));
    assert.deepEqual([byId.obj.pageContent, byId.obj.metadata], ['', { a: 1 }]);
    assert.deepEqual([byId.text.pageContent, byId.text.metadata], ['stored text', { b: 2 }]);
    assert.deepEqual([byId.str.pageContent, byId.str.metadata], ['', {}]);
    assert.equal(db.get('str').metadata, 'just a string', 'the database keeps what the document view cannot show');
  });

  it('asRetriever(k) returns the k nearest documents', async function () {
    const store = track(await VecvaultStore.fromTexts(TEXTS, META, embeddings(), {}));
    const docs = await store.asRetriever(2).invoke(TEXTS[5]);
    assert.equal(docs.length, 2);
    assert.equal(docs[0].pageContent, TEXTS[5]);
  });

  it('maxMarginalRelevanceSearch: a duplicate of the best hit gives way to a different document; lambda 1 is plain similarity; the mmr retriever uses it', async function () {
    const docs = TEXTS.map((t, i) => new Document({ pageContent: t, metadata: META[i], id: `d${i}` }));
    docs.push(new Document({ pageContent: TEXTS[0], metadata: META[0], id: 'twin' }));
    const store = track(await VecvaultStore.fromDocuments(docs, embeddings(), { index: 'flat', filterable: ['lang'] }));
    const plain = await store.similaritySearch(TEXTS[0], 2);
    assert.deepEqual(plain.map((d) => d.id).sort(), ['d0', 'twin'], 'plain similarity returns the text and its twin');
    const mmr = await store.maxMarginalRelevanceSearch(TEXTS[0], { k: 2, fetchK: 5, lambda: 0.25 });
    assert.equal(mmr.length, 2);
    assert.equal(mmr[0].pageContent, TEXTS[0]);
    assert.notEqual(mmr[1].pageContent, TEXTS[0], 'the twin is not picked second');
    assert.deepEqual(mmr[1].metadata, META[Number(mmr[1].id.slice(1))], 'metadata intact');
    const relevance = await store.maxMarginalRelevanceSearch(TEXTS[3], { k: 3, lambda: 1 });
    // By text: the twin and its original tie, in either order.
    assert.deepEqual(relevance.map((d) => d.pageContent), (await store.similaritySearch(TEXTS[3], 3)).map((d) => d.pageContent));
    const filtered = await store.maxMarginalRelevanceSearch(TEXTS[0], { k: 3, filter: { lang: 'de' } });
    assert.equal(filtered.length, 3);
    for (const d of filtered) assert.equal(d.metadata.lang, 'de');
    const viaRetriever = await store.asRetriever({ k: 2, searchType: 'mmr', searchKwargs: { fetchK: 5, lambda: 0.25 } }).invoke(TEXTS[0]);
    assert.deepEqual(viaRetriever.map((d) => d.id), mmr.map((d) => d.id));
    await h.rejectsCode(() => store.maxMarginalRelevanceSearch('x', { k: 0 }), 'ERR_INVALID_ARGUMENT', 'k 0');
    await h.rejectsCode(() => store.maxMarginalRelevanceSearch('x', { k: 2, lambda: 2 }), 'ERR_INVALID_ARGUMENT', 'lambda 2');
    await h.rejectsCode(() => store.maxMarginalRelevanceSearch('x', { k: 2, filter: () => true }), 'ERR_INVALID_FILTER', 'a function filter');
  });

  it('delete by ids and by filter', async function () {
    const ids = TEXTS.map((_, i) => `d${i}`);
    const store = track(await VecvaultStore.fromDocuments(
      TEXTS.map((t, i) => new Document({ pageContent: t, metadata: META[i], id: ids[i] })), embeddings(), { filterable: ['lang'] }));
    await store.delete({ ids: ['d0', 'd1', 'no-such-id'] });
    assert.equal(store.db.size, TEXTS.length - 2);
    const hits = await store.similaritySearch(TEXTS[0], TEXTS.length);
    assert.ok(!hits.some((d) => d.id === 'd0' || d.id === 'd1'));
    await store.delete({ filter: { lang: 'en' } });
    assert.deepEqual((await store.similaritySearch(TEXTS[0], 10)).map((d) => d.id).sort(), ['d3', 'd5', 'd7']);
  });

  it('fromTexts with one metadata object for all, under l2: the score is -distance, larger first', async function () {
    const store = track(await VecvaultStore.fromTexts(TEXTS.slice(0, 4), { src: 'one' }, embeddings(), { metric: 'l2', index: 'flat' }));
    const q = await embeddings().embedQuery(TEXTS[1]);
    const hits = await store.similaritySearchVectorWithScore(q, 4);
    const ref = store.db.search(q, 4);
    assert.deepEqual(hits.map(([d]) => d.id), ref.map((r) => r.id));
    hits.forEach(([d, score], i) => {
      assert.deepEqual(d.metadata, { src: 'one' });
      h.assertClose(score, -ref[i].distance, `score ${i}`);
    });
    assert.equal(hits[0][0].pageContent, TEXTS[1]);
    h.assertClose(hits[0][1], 0, 'a text is at distance 0 from itself');
  });

  it('save then load (a directory, lazily; a MemoryStorage, eagerly) and search again; the key is not kept for serialisation', async function () {
    const store = track(await VecvaultStore.fromTexts(TEXTS, META, embeddings(), { key: KEY, filterable: ['lang'] }));
    assert.ok(!JSON.stringify(store.toJSON()).includes('"key"'), 'toJSON holds no key');
    assert.ok(!Object.values(store.lc_kwargs || {}).some((v) => v === KEY), "LangChain's kwargs hold no key");
    const dir = path.join(tmp, 'session');
    const mem = new MemoryStorage();
    await store.save(dir);
    await store.save(mem);
    await h.rejectsCode(() => VecvaultStore.load(dir, embeddings()), 'ERR_KEY_REQUIRED', 'a load without the key');
    for (const [what, source, options] of [['dir', dir, { key: KEY }], ['memory', mem, { key: KEY, lazy: false }]]) {
      const loaded = track(await VecvaultStore.load(source, embeddings(), options));
      assert.ok(loaded instanceof VecvaultStore, what);
      for (let i = 0; i < TEXTS.length; i++) {
        const [[doc, score]] = await loaded.similaritySearchWithScore(TEXTS[i], 1);
        assert.equal(doc.pageContent, TEXTS[i], `${what}: text ${i}`);
        assert.deepEqual(doc.metadata, META[i], `${what}: metadata ${i}`);
        h.assertClose(score, 1, `${what}: score ${i}`);
      }
      const de = await loaded.similaritySearch(TEXTS[0], 10, { lang: 'de' });
      assert.equal(de.length, 4, `${what}: the filterable fields came with the session`);
      await loaded.addDocuments([new Document({ pageContent: 'a new text added after the load', id: 'new' })]);
      assert.equal((await loaded.similaritySearch('a new text added after the load', 1))[0].id, 'new', what);
    }
  });

  it('works from ESM: import { VecvaultStore } from "vecvault/langchain"', function () {
    const script = `
      import { VecvaultStore } from 'vecvault/langchain';
      import { SyntheticEmbeddings } from '@langchain/core/utils/testing';
      const s = await VecvaultStore.fromTexts(['hello there world'], [{}], new SyntheticEmbeddings({ vectorSize: 4 }), {});
      console.log((await s.similaritySearch('hello there world', 1))[0].pageContent);
      s.close();
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'hello there world');
  });
});

describe('vecvault/langchain without @langchain/core', function () {
  it('require says to install it, with ERR_INVALID_ARGUMENT', function () {
    // A child process whose require() cannot find @langchain/core, as for a user who did not install it.
    const script = `
      const Module = require('node:module');
      const load = Module._load;
      Module._load = function (req, ...rest) {
        if (req.startsWith('@langchain/core')) { const e = new Error("Cannot find module '" + req + "'"); e.code = 'MODULE_NOT_FOUND'; throw e; }
        return load.call(this, req, ...rest);
      };
      try { require('vecvault/langchain'); console.log('no error'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
      // vecvault itself still works without it.
      console.log(typeof require('vecvault').VectorDB);
    `;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [first, second] = r.stdout.trim().split('\n');
    const out = JSON.parse(first);
    assert.equal(out.code, 'ERR_INVALID_ARGUMENT');
    assert.match(out.message, /npm install @langchain\/core/);
    assert.equal(second, 'function');
  });
});
