'use strict';
/*
 * 22.session.error-detail.js: errors found on the lazy path name their
 * object.
 *
 * Owns: when a chunk of a lazily loaded session is missing or damaged, the
 * get(), search(), searchAsync(), searchBatch(), preload() and (flat index)
 * exact search that need it fail with ERR_CHUNK_MISSING / ERR_CHUNK_CORRUPT
 * and a message that names the chunk object's file and seq, as an eager
 * load's message does; callers that share one failed read (the cache's
 * single flight) get the same detail. Which calls fail and that the
 * database stays usable is 16.session.lazy.js.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

const DIM = 16;
const KEY = s.keyFor('detail');

async function damagedSession(kind, index = 'hnsw') {
  const dir = s.freshPath('detail');
  const db = s.newDb({ dimension: DIM, index, chunkSize: 100, key: KEY });
  const vs = h.clusteredVectors(600, DIM, { clusters: 6, seed: 3 });
  const ids = vs.map((_, i) => `id-${i}`);
  db.addBatch(vs.map((vector, i) => ({ id: ids[i], vector })));
  await db.save(dir);
  db.close();
  const loaded = await s.loadDb(dir, { key: KEY });
  assert.equal(loaded.loadStats.lazy, true);
  const victim = s.manifestObjects(dir).chunks[2];
  if (kind === 'missing') fs.rmSync(victim.path);
  else s.flipBit(victim.path, -30);
  /* The ids whose rows are in the victim chunk (missing) or in its last page
   * (corrupt: the flipped bit is there): exactly those fail get(). */
  const inVictim = [];
  for (const id of ids) {
    try {
      loaded.get(id);
    } catch (e) {
      inVictim.push([id, vs[ids.indexOf(id)], e]);
    }
  }
  assert.ok(inVictim.length > 0, 'some ids live in the damaged chunk');
  return { db: loaded, victim, inVictim };
}

function assertNames(err, code, victim, what) {
  h.assertVecvaultError(err, code, what);
  assert.ok(err.message.includes(victim.name), `${what}: the message names the object file: ${err.message}`);
  assert.match(err.message, /\bchunk object\b/, `${what}: says which kind of object`);
  assert.match(err.message, new RegExp(`\\bseq ${victim.seq}\\b`), `${what}: gives the chunk seq: ${err.message}`);
}

describe('22 error detail on the lazy path', function () {
  this.timeout(60000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  for (const [kind, code, why] of [
    ['missing', 'ERR_CHUNK_MISSING', /missing/],
    ['corrupt', 'ERR_CHUNK_CORRUPT', /\bpage \d+ is corrupt: /],
  ]) {
    it(`a ${kind} chunk: get() names the object, its seq and what failed`, async function () {
      const { victim, inVictim } = await damagedSession(kind);
      for (const [id, , err] of inVictim) {
        assertNames(err, code, victim, `get(${id})`);
        assert.match(err.message, why);
      }
    });

    it(`a ${kind} chunk: search, searchBatch, searchAsync and preload name the object`, async function () {
      const { db, victim, inVictim } = await damagedSession(kind);
      const [, vector] = inVictim[0];
      const opts = { rerank: 50 };
      assertNames(h.throwsCode(() => db.search(vector, 5, opts), code), code, victim, 'search');
      assertNames(h.throwsCode(() => db.searchBatch([vector, vector, vector], 5, opts), code), code, victim, 'searchBatch');
      assertNames(await h.rejectsCode(() => db.searchAsync(vector, 5, opts), code), code, victim, 'searchAsync');
      assertNames(await h.rejectsCode(() => db.preload([victim.seq]), code), code, victim, 'preload');
      /* The same detail the second time round (the failure is not cached, the note is). */
      assertNames(h.throwsCode(() => db.get(inVictim[0][0]), code), code, victim, 'get again');
    });
  }

  it('a flat index: the exact scan names the chunk it could not read', async function () {
    const { db, victim } = await damagedSession('missing', 'flat');
    const q = h.randomVectors(1, DIM, 9)[0];
    assertNames(h.throwsCode(() => db.search(q, 3), 'ERR_CHUNK_MISSING'), 'ERR_CHUNK_MISSING', victim, 'flat search');
    assertNames(await h.rejectsCode(() => db.searchAsync(q, 3), 'ERR_CHUNK_MISSING'), 'ERR_CHUNK_MISSING', victim, 'flat searchAsync');
  });

  it('many concurrent searches sharing one failed read all get the detail', async function () {
    const { db, victim, inVictim } = await damagedSession('corrupt');
    const [, vector] = inVictim[0];
    const runs = await Promise.allSettled(Array.from({ length: 16 }, () => db.searchAsync(vector, 5)));
    for (const r of runs) {
      assert.equal(r.status, 'rejected');
      assertNames(r.reason, 'ERR_CHUNK_CORRUPT', victim, 'concurrent searchAsync');
    }
  });
});
