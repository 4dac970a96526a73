'use strict';
/*
 * 15.session.format.js: sessions vecvault writes are readable by an
 * independent implementation of docs/FORMAT.md.
 *
 * Owns: running test/session-format/reader.py (python3-cbor2, python3-nacl,
 * written from the spec alone) on sessions saved with a key, a passphrase and
 * unencrypted, through deletes, upserts and incremental generations, and
 * checking that it returns exactly what db.get() returns for every id; and
 * that it refuses damaged or foreign sessions with the same error code the
 * engine uses, so a reader that accepted anything would fail here.
 *
 * Needs Debian's python3 with python3-cbor2 and python3-nacl installed
 * (apt-get install -y python3-cbor2 python3-nacl).
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

const READER = path.join(__dirname, 'session-format', 'reader.py');

function secretArgs(seal) {
  const o = s.SEALS[seal].load;
  if (o.key) return ['--key', Buffer.from(o.key).toString('hex')];
  if (o.passphrase) return ['--passphrase', o.passphrase];
  return [];
}

/* Runs the reader; returns its parsed JSON output ({error} on refusal). */
function read(dir, args) {
  const r = spawnSync(s.PYTHON, [READER, dir, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  assert.ok(r.status === 0 || r.status === 2, `reader crashed (status ${r.status}):\n${r.stderr}${r.stdout.slice(0, 2000)}`);
  const out = JSON.parse(r.stdout);
  assert.equal('error' in out, r.status === 2, 'exit status and output disagree');
  return out;
}

/* The reader's output holds exactly the live vectors of `db` among `ids`. */
function assertReaderMatches(out, db, ids, what) {
  assert.ok(!out.error, `${what}: reader refused the session: ${out.error} ${out.message}`);
  const byId = new Map(out.vectors.map((v) => [v.id, v]));
  assert.equal(byId.size, out.vectors.length, `${what}: an id appears twice`);
  assert.equal(out.vectors.length, db.size, `${what}: reader has ${out.vectors.length} vectors, db has ${db.size}`);
  for (const id of ids) {
    const rec = db.get(id);
    const got = byId.get(id);
    if (rec === null) {
      assert.equal(got, undefined, `${what}: ${JSON.stringify(id)} was deleted but the reader has it`);
      continue;
    }
    assert.ok(got, `${what}: reader lacks ${JSON.stringify(id)}`);
    assert.deepEqual(got.vector, Array.from(rec.vector), `${what}: vector of ${JSON.stringify(id)}`);
    assert.deepEqual(got.metadata, rec.metadata, `${what}: metadata of ${JSON.stringify(id)}`);
  }
}

describe('15 session format (independent reader)', function () {
  this.timeout(60000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  before(function () {
    const r = spawnSync(s.PYTHON, ['-c', 'import cbor2, nacl.bindings'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${s.PYTHON} lacks cbor2 or nacl: apt-get install -y python3-cbor2 python3-nacl\n${r.stderr || r.error}`);
  });

  for (const seal of Object.keys(s.SEALS)) {
    for (const index of h.INDEXES) {
      it(`${seal} / ${index}: three generations with deletes and upserts read back exactly`, async function () {
        const dir = s.freshPath('fmt');
        const db = s.newDb({ dimension: 12, index, metric: 'l2', chunkSize: 25, hnsw: { m: 6, efConstruction: 32 }, ...s.SEALS[seal].db });
        const ids = s.fill(db, 300, { seed: 15 });
        const args = secretArgs(seal);

        const st1 = await db.save(dir);
        let out = read(dir, args);
        assert.equal(out.generation, st1.generation);
        assert.equal(out.sessionId, (await VectorDB.inspect(dir)).sessionId);
        assertReaderMatches(out, db, ids, 'generation 1');

        s.churn(db, ids, { seed: 1, every: 6 });
        const more = s.fill(db, 40, { prefix: 'g2-', seed: 16, unicode: false });
        const st2 = await db.save(dir);
        assert.equal(st2.full, false);
        out = read(dir, args);
        assert.equal(out.generation, 2);
        assertReaderMatches(out, db, [...ids, ...more], 'generation 2');

        s.churn(db, [...ids, ...more], { seed: 2, every: 4, offset: 2 });
        db.add(ids[0], new Float32Array(12).fill(-0.5), { back: true }); /* an id deleted earlier comes back */
        const st3 = await db.save(dir);
        out = read(dir, args);
        assert.equal(out.generation, st3.generation);
        assertReaderMatches(out, db, [...ids, ...more], 'generation 3');
      });
    }
  }

  for (const index of h.INDEXES) {
    it(`${index}: 20 generations of adds, deletes and upserts: the reader agrees with the database at every one`, async function () {
      const dir = s.freshPath('fmt-gens');
      const key = s.keyFor('fmt-gens');
      const db = s.newDb({ dimension: 8, index, chunkSize: 32, hnsw: { efConstruction: 32 }, threads: 1, key });
      const all = s.fill(db, 300, { seed: 32 });
      const r = h.rng(32);
      const args = ['--key', Buffer.from(key).toString('hex')];
      for (let g = 1; g <= 20; g++) {
        if (g > 1) s.generationChanges(db, g, all, r);
        assert.equal((await db.save(dir)).generation, g);
        const out = read(dir, args);
        assert.equal(out.generation, g);
        assertReaderMatches(out, db, all, `generation ${g}`);
      }
    });
  }

  it('an empty session reads as no vectors', async function () {
    const dir = s.freshPath('fmt-empty');
    const db = s.newDb({ dimension: 3, key: s.keyFor('e') });
    await db.save(dir);
    const out = read(dir, ['--key', Buffer.from(s.keyFor('e')).toString('hex')]);
    assert.deepEqual(out.vectors, []);
    assert.equal(out.generation, 1);
  });

  describe('the reader refuses what the engine refuses, with the same code', function () {
    let dir;
    let plain;
    const key = s.keyFor('fmt-err');
    const keyArgs = ['--key', Buffer.from(key).toString('hex')];

    before(async function () {
      dir = s.freshPath('fmt-err');
      const db = s.newDb({ dimension: 6, chunkSize: 20, key });
      s.fill(db, 80);
      await db.save(dir);
      db.add('x', [1, 2, 3, 4, 5, 6]);
      await db.save(dir);
      plain = s.freshPath('fmt-err-plain');
      const p = s.newDb({ dimension: 6, chunkSize: 20, encryptAtRest: false });
      s.fill(p, 80);
      await p.save(plain);
    });

    async function both(target, args, loadOpts, code, damage) {
      const file = damage ? path.join(target, damage.rel()) : null;
      const saved = file && fs.existsSync(file) ? fs.readFileSync(file) : null;
      try {
        if (damage) damage.apply(file);
        const out = read(target, args);
        assert.equal(out.error, code, `reader: ${out.error || 'accepted the session'} ${out.message || ''}`);
        await h.rejectsCode(() => VectorDB.load(target, loadOpts), code, 'engine');
      } finally {
        if (saved) fs.writeFileSync(file, saved);
      }
      const good = read(target, target === plain ? [] : keyArgs);
      assert.ok(!good.error, `the restored session reads again: ${good.error} ${good.message}`);
    }

    const chunk = () => `objects/${s.readManifest(dir).json.chunks[0].name}`;
    const delta = () => `objects/${s.readManifest(dir).json.index.deltas[0].name}`;

    it('wrong key, no key, a key for an unencrypted session', async function () {
      await both(dir, ['--key', Buffer.from(s.keyFor('nope')).toString('hex')], { key: s.keyFor('nope') }, 'ERR_WRONG_KEY');
      await both(dir, [], {}, 'ERR_KEY_REQUIRED');
      await both(dir, ['--passphrase', 'pw'], { passphrase: 'pw' }, 'ERR_WRONG_KEY');
      await both(plain, keyArgs, { key }, 'ERR_MANIFEST_AUTH');
    });

    it('damaged objects', async function () {
      await both(dir, keyArgs, { key }, 'ERR_CHUNK_CORRUPT', { rel: chunk, apply: (f) => s.flipBit(f, 60, 2) });
      await both(dir, keyArgs, { key }, 'ERR_CHUNK_CORRUPT', { rel: delta, apply: (f) => s.truncateTo(f, 30) });
      await both(dir, keyArgs, { key }, 'ERR_CHUNK_MISSING', { rel: chunk, apply: (f) => fs.unlinkSync(f) });
    });

    it('damaged and edited manifests', async function () {
      const m = { rel: () => 'manifest.json' };
      await both(dir, keyArgs, { key }, 'ERR_MANIFEST_CORRUPT', { ...m, apply: (f) => s.flipBit(f, 300, 1) });
      await both(dir, keyArgs, { key }, 'ERR_MANIFEST_AUTH', { ...m, apply: (f) => s.flipBit(f, 100, 0) });
      await both(dir, keyArgs, { key }, 'ERR_MANIFEST_AUTH', { ...m, apply: () => s.editManifest(dir, (b) => b.replace(/"totalVectors":\d+/, '"totalVectors":3')) });
      await both(dir, keyArgs, { key }, 'ERR_UNSUPPORTED_VERSION', { ...m, apply: () => s.editManifest(dir, (b) => b.replace('"version":1,', '"version":7,')) });
      await both(plain, [], {}, 'ERR_CHUNK_CORRUPT', { ...m, apply: () => s.editManifest(plain, (b) => b.replace(/"totalVectors":\d+/, '"totalVectors":3')) });
      await both(plain, [], {}, 'ERR_MANIFEST_CORRUPT', { ...m, apply: () => s.editManifest(plain, (b) => b.replace('"format":', '"extra":0,"format":')) });
    });
  });
});
