'use strict';
/*
 * 24.session.writes-during-save.js: what a save holds when the database keeps
 * changing while it runs.
 *
 * Owns: a save writes the database as it was at one instant (its capture,
 * taken before the first object is written), whatever adds, upserts and
 * deletes run while it writes; the next save carries those; an
 * addBatchAsync in flight contributes a prefix of its items, whole items
 * only. That writers do not wait for the save's I/O is checked with a
 * handshake in test/c/test_concurrency_save.c (a save held inside its I/O)
 * and measured by bench/save-writes.js.
 */
const assert = require('node:assert/strict');
const h = require('./helpers');
const s = require('./helpers/session');

const DIM = 16;
const KEY = s.keyFor('writes-during-save');

for (const index of ['hnsw', 'flat']) {
  describe(`24 writes during a save (${index})`, function () {
    afterEach(s.closeTracked);

    it('the save holds its capture; writes made while it writes go into the next save', async function () {
      const db = s.newDb({ dimension: DIM, index, chunkSize: 50, key: KEY, threads: 2 });
      const ids = s.fill(db, 600, { unicode: false });
      const before = s.capture(db, ids);
      const dir = s.freshPath('wds');
      const late = h.randomVectors(40, DIM, 123);
      let wrote = false;
      const stats = await db.save(dir, {
        onProgress: () => {
          if (wrote) return;
          wrote = true; /* the first progress report comes after the capture */
          late.forEach((v, i) => db.add(`late-${i}`, v, { late: i }));
          for (let i = 0; i < 30; i++) db.delete(ids[i]);
          db.add(ids[30], late[0], { upserted: true });
          assert.equal(db.search(late[1], 1)[0].id, 'late-1');
        },
      });
      assert.ok(wrote, 'the save reported progress');
      assert.equal(stats.full, true);

      const first = await s.loadDb(dir, { key: KEY, lazy: false });
      s.assertState(first, before, 600, 'the generation saved while writes ran');
      for (let i = 0; i < late.length; i++) assert.equal(first.has(`late-${i}`), false);

      const again = await db.save(dir);
      assert.equal(again.full, false, 'the next save is incremental');
      const after = s.capture(db, [...ids, ...late.map((_, i) => `late-${i}`)]);
      const second = await s.loadDb(dir, { key: KEY, lazy: false });
      s.assertState(second, after, 600 - 30 + late.length, 'the next generation');
      assert.deepEqual(second.get(ids[30]).metadata, { upserted: true });
    });

    it('a save during addBatchAsync holds a prefix of the batch, whole items only', async function () {
      const db = s.newDb({ dimension: DIM, index, chunkSize: 100, key: KEY, threads: 2 });
      const seedIds = s.fill(db, 200, { unicode: false, prefix: 'seed-' });
      const vs = h.randomVectors(3000, DIM, 77);
      const items = vs.map((vector, i) => ({ id: `batch-${i}`, vector, metadata: { i } }));
      const dir = s.freshPath('wds-batch');
      let saving = null;
      await db.addBatchAsync(items, {
        onProgress: (done) => {
          if (!saving && done > 0) saving = db.save(dir);
        },
      });
      assert.ok(saving, 'the batch reported progress');
      await saving;

      const saved = await s.loadDb(dir, { key: KEY, lazy: false });
      for (const id of seedIds) assert.ok(saved.has(id), `${id} predates the batch`);
      const held = items.map((it) => saved.has(it.id));
      const prefix = held.indexOf(false) === -1 ? held.length : held.indexOf(false);
      assert.ok(held.slice(prefix).every((x) => !x), `the saved items are a prefix of the batch (first gap at ${prefix})`);
      assert.equal(saved.size, seedIds.length + prefix);
      for (let i = 0; i < prefix; i++) {
        const got = saved.get(items[i].id);
        assert.deepEqual(got.metadata, { i });
        const want = h.normalized(items[i].vector); /* cosine stores unit vectors */
        want.forEach((x, j) => h.assertClose(got.vector[j], x, `${items[i].id}[${j}]`, 1e-6));
      }
      /* The next save has the whole batch. */
      await db.save(dir);
      const whole = await s.loadDb(dir, { key: KEY, lazy: false });
      assert.equal(whole.size, seedIds.length + items.length);
    });
  });
}
