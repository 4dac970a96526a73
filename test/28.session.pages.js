'use strict';
/*
 * 28.session.pages.js: format-3 pages seen from JavaScript.
 *
 * Owns: results of a lazily loaded session that do not depend on the cache
 * (cold, warm, and caches of a few pages, about half, and everything; every
 * metric, sealed or not; search, searchBatch and searchAsync alike); a
 * flipped bit in one page that fails only the reads needing that page, with
 * ERR_CHUNK_CORRUPT naming the object and the page, while gets of the same
 * chunk's other pages work and an eager load fails; and save's pageKb. The
 * C side of the same guarantees (faults, forged tables, threads) is
 * test/c/test_pages.c; what the cache counts is 16.session.lazy.js.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

const DIM = 16;
const KEY = s.keyFor('pages');

/* n clustered vectors with metadata, saved with small pages. */
async function pagedSession({ metric = 'cosine', seal = { key: KEY }, n = 600, pageKb = 1 } = {}) {
  const dir = s.freshPath('pages');
  const db = s.newDb({ dimension: DIM, metric, chunkSize: 100, ...seal });
  const vs = h.clusteredVectors(n, DIM, { clusters: 8, seed: 5 });
  const ids = vs.map((_, i) => `p-${i}`);
  db.addBatch(vs.map((vector, i) => ({ id: ids[i], vector, metadata: { i, tag: `t${i % 7}` } })));
  await db.save(dir, { pageKb });
  db.close();
  return { dir, vs, ids, seal };
}

function queries(nq, seed) {
  return h.clusteredVectors(nq, DIM, { clusters: 8, seed, spread: 0.3 });
}

describe('28 paged sessions', function () {
  this.timeout(120000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  for (const metric of ['l2', 'dot', 'cosine']) {
    for (const sealed of [true, false]) {
      it(`${metric}, ${sealed ? 'encrypted' : 'plaintext'}: the same results cold, warm, and at three cache sizes`, async function () {
        const sess = await pagedSession({ metric, seal: sealed ? { key: KEY } : { encryptAtRest: false } });
        const load = sealed ? { key: KEY } : {};
        assert.ok(s.chunkPages(sess.dir) >= 3 * s.readManifest(sess.dir).json.chunks.length, 'chunks of several pages');
        const db = await s.loadDb(sess.dir, load);
        assert.equal(db.loadStats.lazy, true);
        const qs = queries(12, 31);
        const opts = { includeVector: true };
        /* Cold: each query on an empty cache. */
        const cold = qs.map((q) => {
          db.setCacheSize(1e-6);
          db.setCacheSize(64);
          return h.plainResults(db.search(q, 8, opts));
        });
        await db.preload();
        const all = db.cacheStats();
        const perEntry = all.bytes / all.entries;
        const sizes = [
          ['warm', 64],
          ['a few pages', (3 * perEntry) / 1048576],
          ['about half', all.bytes / 2 / 1048576],
          ['everything', all.bytes / 1048576],
        ];
        for (const [what, mb] of sizes) {
          if (what !== 'warm') {
            db.setCacheSize(1e-6);
            db.setCacheSize(mb);
          }
          const misses = db.cacheStats().misses;
          qs.forEach((q, i) => assert.deepEqual(h.plainResults(db.search(q, 8, opts)), cold[i], `${what}: query ${i}`));
          const batch = db.searchBatch(qs, 8, opts);
          batch.forEach((r, i) => assert.deepEqual(h.plainResults(r), cold[i], `${what}: searchBatch ${i}`));
          const async = await Promise.all(qs.map((q) => db.searchAsync(q, 8, opts)));
          async.forEach((r, i) => assert.deepEqual(h.plainResults(r), cold[i], `${what}: searchAsync ${i}`));
          const c = db.cacheStats();
          assert.ok(c.bytes <= c.capacityBytes, `${what}: ${c.bytes} > ${c.capacityBytes}`);
          if (what === 'warm') assert.equal(c.misses, misses, 'warm: nothing read');
        }
      });
    }
  }

  it('a flipped bit in one page fails only the reads of that page, naming the object and the page', async function () {
    const sess = await pagedSession({ n: 300 });
    const victim = s.manifestObjects(sess.dir).chunks[1];
    const pages = s.objectPages(sess.dir, victim.name);
    assert.ok(pages >= 3, `the victim chunk has ${pages} pages`);
    s.flipBit(victim.path, -40, 3); /* inside its last page */
    const db = await s.loadDb(sess.dir, { key: KEY });
    const failed = [];
    let ok = 0;
    for (const id of sess.ids) {
      try {
        const r = db.get(id);
        assert.deepEqual(r.metadata, { i: Number(id.slice(2)), tag: `t${Number(id.slice(2)) % 7}` });
        ok++;
      } catch (e) {
        h.assertVecvaultError(e, 'ERR_CHUNK_CORRUPT', `get(${id})`);
        assert.ok(e.message.includes(victim.name), `names the object: ${e.message}`);
        assert.match(e.message, new RegExp(`\\(seq ${victim.seq}\\) page ${pages - 1} is corrupt`), e.message);
        failed.push(id);
      }
    }
    /* Only the last page's rows: fewer than the chunk's, more than none. */
    assert.ok(failed.length > 0 && failed.length < victim.count, `${failed.length} of the chunk's ${victim.count} rows failed`);
    assert.equal(ok + failed.length, sess.ids.length);
    /* A search that needs the page fails the same way; the rows of other pages still read. */
    const i = Number(failed[0].slice(2));
    const e = h.throwsCode(() => db.search(sess.vs[i], 5, { rerank: 50 }), 'ERR_CHUNK_CORRUPT');
    assert.match(e.message, new RegExp(`page ${pages - 1} is corrupt`));
    await h.rejectsCode(() => VectorDB.load(sess.dir, { key: KEY, lazy: false }), 'ERR_CHUNK_CORRUPT');
  });

  it('pageKb sets the page size: smaller pages, more of them; out of range is refused', async function () {
    const small = await pagedSession({ n: 300, pageKb: 1, seal: { encryptAtRest: false } });
    const big = await pagedSession({ n: 300, pageKb: 64, seal: { encryptAtRest: false } });
    const chunks = s.readManifest(big.dir).json.chunks.length;
    assert.equal(s.chunkPages(big.dir), chunks, 'a page of 64 KiB holds a whole chunk of 100 rows');
    assert.ok(s.chunkPages(small.dir) >= 3 * chunks);
    for (const dir of [small.dir, big.dir]) {
      const db = await s.loadDb(dir);
      assert.equal(db.get('p-7').metadata.i, 7);
    }
    const db = s.newDb({ dimension: DIM, encryptAtRest: false });
    db.add('a', new Float32Array(DIM).fill(0.5));
    for (const bad of [0, 1025, 1.5, '8', null]) await h.rejectsCode(() => db.save(s.freshPath('bad-page'), { pageKb: bad }), 'ERR_INVALID_ARGUMENT');
    assert.ok(fs.existsSync(small.dir));
  });
});
