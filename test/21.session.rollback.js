'use strict';
/*
 * 21.session.rollback.js: detecting a session rolled back to an older
 * generation (VectorDB.load's minGeneration).
 *
 * Owns: replacing manifest.json with a genuine older copy (from
 * manifests/<generation>.json) is refused with ERR_ROLLBACK when the caller
 * says which generation it saw last, eagerly and lazily, encrypted and
 * plaintext; without the option the older generation opens (documented);
 * the check comes before any object is read; the generation a service
 * remembers is in loadStats and inspect(); and the option's validation.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

const DIM = 8;

/* Saves generation 1 (20 vectors) and generation 2 (30), then puts the
 * genuine generation-1 manifest back in place: a rolled-back directory. */
async function rolledBack(seal) {
  const dir = s.freshPath('rb');
  const db = s.newDb({ dimension: DIM, chunkSize: 8, ...seal.db });
  s.fill(db, 20, { unicode: false });
  assert.equal((await db.save(dir)).generation, 1);
  s.fill(db, 30, { prefix: 'w', unicode: false, seed: 2 });
  assert.equal((await db.save(dir)).generation, 2);
  db.close();
  const gen1 = path.join(dir, 'manifests', `${'1'.padStart(20, '0')}.json`);
  fs.copyFileSync(gen1, path.join(dir, 'manifest.json'));
  return dir;
}

const SEALS = { key: s.SEALS.key, plaintext: s.SEALS.none };

describe('21 session rollback', function () {
  this.timeout(60000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  for (const [sealName, seal] of Object.entries(SEALS)) {
    for (const lazy of [false, true]) {
      describe(`${sealName}, ${lazy ? 'lazy' : 'eager'}`, function () {
        let dir;
        before(async function () {
          dir = await rolledBack(seal);
        });

        it('an older genuine manifest with minGeneration: 2 -> ERR_ROLLBACK naming both generations', async function () {
          const err = await h.rejectsCode(() => VectorDB.load(dir, { ...seal.load, lazy, minGeneration: 2 }), 'ERR_ROLLBACK');
          assert.match(err.message, /generation 1\b/);
          assert.match(err.message, /\b2\b/);
        });

        it('without minGeneration the older generation opens (the caller did not say what it saw)', async function () {
          const db = await s.loadDb(dir, { ...seal.load, lazy });
          assert.equal(db.loadStats.generation, 1);
          assert.equal(db.size, 20);
          assert.equal((await VectorDB.inspect(dir)).generation, 1);
        });

        it('minGeneration equal to the current generation (or lower, or 0) opens it', async function () {
          for (const minGeneration of [1, 0, 1n]) {
            const db = await s.loadDb(dir, { ...seal.load, lazy, minGeneration });
            assert.equal(db.loadStats.generation, 1, `minGeneration ${minGeneration}`);
            assert.equal(db.size, 20);
          }
        });
      });
    }
  }

  it('the genuine newest generation opens with minGeneration equal to it; one more is a rollback', async function () {
    const dir = s.freshPath('rb');
    const db = s.newDb({ dimension: DIM, ...s.SEALS.key.db });
    s.fill(db, 10, { unicode: false });
    await db.save(dir);
    s.fill(db, 12, { prefix: 'w', unicode: false });
    await db.save(dir);
    db.close();
    const info = await VectorDB.inspect(dir);
    assert.equal(info.generation, 2);
    const loaded = await s.loadDb(dir, { ...s.SEALS.key.load, minGeneration: info.generation });
    assert.equal(loaded.loadStats.generation, 2);
    assert.equal(loaded.size, 22);
    await h.rejectsCode(() => VectorDB.load(dir, { ...s.SEALS.key.load, minGeneration: 3 }), 'ERR_ROLLBACK');
    await h.rejectsCode(() => VectorDB.load(dir, { ...s.SEALS.key.load, minGeneration: 2n ** 64n - 1n }), 'ERR_ROLLBACK');
  });

  it('is decided from the manifest alone: no object is read (they may all be gone)', async function () {
    for (const lazy of [false, true]) {
      const dir = await rolledBack(SEALS.key);
      const objects = path.join(dir, 'objects');
      for (const name of fs.readdirSync(objects)) fs.rmSync(path.join(objects, name));
      const events = [];
      await h.rejectsCode(
        () => VectorDB.load(dir, { ...SEALS.key.load, lazy, minGeneration: 2, onProgress: (p) => events.push(p) }),
        'ERR_ROLLBACK'
      );
      assert.ok(events.every((p) => p.bytes === 0 || p.bytes === undefined), JSON.stringify(events));
      /* The same directory without the option does need its objects. */
      await h.rejectsCode(() => VectorDB.load(dir, { ...SEALS.key.load, lazy }), 'ERR_CHUNK_MISSING');
    }
  });

  it('a wrong key is still ERR_WRONG_KEY, not ERR_ROLLBACK: the generation is trusted only once authenticated', async function () {
    const dir = await rolledBack(SEALS.key);
    await h.rejectsCode(() => VectorDB.load(dir, { key: s.keyFor('other'), minGeneration: 2 }), 'ERR_WRONG_KEY');
  });

  it('minGeneration must be a non-negative safe integer or a bigint below 2^64', async function () {
    const dir = await rolledBack(SEALS.plaintext);
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53, '2', null, true, -1n, 2n ** 64n, {}]) {
      await h.rejectsCode(() => VectorDB.load(dir, { minGeneration: bad }), 'ERR_INVALID_ARGUMENT', `minGeneration ${String(bad)}`);
    }
  });
});
