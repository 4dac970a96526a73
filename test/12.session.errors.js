'use strict';
/*
 * 12.session.errors.js: the fault matrix of saved sessions.
 *
 * Owns: what VectorDB.load reports (the exact error code, and the object's
 * name for object faults) for damaged manifests and objects of every kind,
 * swapped and foreign files, manifests edited with the checksum recomputed,
 * future versions, every wrong combination of secrets, a held writer lock,
 * missing sessions and invalid arguments. After every failed load the files
 * must be exactly as they were, and once the damage is undone the session
 * must load again with the right contents.
 *
 * Every fault is tried with both kinds of load. Damage to manifest.json or
 * an index object fails the open either way. Damage to a chunk fails an
 * eager open (lazy: false); a lazy open (the default) reads no chunk, so it
 * succeeds, and the damage is reported by the first read of that chunk
 * (preload, get, search) while the rest of the database keeps working
 * (docs/FORMAT.md section 9).
 *
 * Where an expectation comes from docs/FORMAT.md rather than the brief, the
 * section is named next to it.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

/* A small two-generation session (so there are base and delta index objects). */
async function makeSession(seal, tag = seal) {
  const dir = s.freshPath(`err-${tag}`);
  const db = s.newDb({ dimension: 8, chunkSize: 40, hnsw: { efConstruction: 32 }, ...s.SEALS[seal].db });
  const ids = s.fill(db, 120, { seed: 12 });
  await db.save(dir);
  db.add('second-gen', [1, 2, 3, 4, 5, 6, 7, 8], { g: 2 });
  db.delete(ids[5]);
  await db.save(dir);
  const all = [...ids, 'second-gen'];
  const ctx = { dir, seal, load: s.SEALS[seal].load, state: s.capture(db, all), size: db.size, orig: s.hashDir(dir) };
  db.close();
  return ctx;
}

/* load() must reject with `code` and leave every byte as it was. */
async function expectLoadFails(dir, options, code, mentions) {
  const before = s.hashDir(dir, { withTmp: true });
  const err = await h.rejectsCode(() => VectorDB.load(dir, options), code, `load ${path.basename(path.dirname(dir))}`);
  for (const m of [].concat(mentions || [])) assert.ok(err.message.includes(m), `message ${JSON.stringify(err.message)} should mention ${m}`);
  assert.deepEqual(s.hashDir(dir, { withTmp: true }), before, 'a failed load changed the files');
  return err;
}

/* Both kinds of open reject with `code`, and leave every byte as it was. */
async function expectOpenFails(dir, options, code, mentions) {
  await expectLoadFails(dir, { ...options, lazy: false }, code, mentions);
  return expectLoadFails(dir, { ...options, lazy: true }, code, mentions);
}

/*
 * Damage in a chunk, seen by a lazy load: the open succeeds and reads no
 * chunk; preload() rejects with `code`; get() fails with `code` for the ids
 * in the damaged chunk (at least one) and returns every other record
 * exactly; a search whose candidates lie elsewhere works; no file changes.
 * Returns the open database, for the caller to check once the damage is undone.
 */
async function expectReadFails(ctx, options, code) {
  const before = s.hashDir(ctx.dir, { withTmp: true });
  const db = await s.loadDb(ctx.dir, { ...options, lazy: true });
  assert.deepEqual([db.loadStats.lazy, db.loadStats.chunksLoaded, db.cacheStats().misses], [true, 0, 0], 'a lazy open reads no chunk');
  assert.equal(db.size, ctx.size);
  await h.rejectsCode(() => db.preload(), code, 'preload() of the damaged session');
  let bad = 0;
  let searched = 0;
  for (const [id, want] of ctx.state) {
    if (want === null) {
      assert.equal(db.has(id), false, `${JSON.stringify(id)} should be absent`);
      continue;
    }
    let got;
    try {
      got = db.get(id);
    } catch (e) {
      h.assertVecvaultError(e, code, `get(${JSON.stringify(id)})`);
      bad++;
      continue;
    }
    assert.deepEqual([Array.from(got.vector), got.metadata], [want.vector, want.metadata], `get(${JSON.stringify(id)}) beside the damage`);
    /* With a re-rank of 1 a search reads the chunk of its best candidate only. */
    try {
      const [hit] = db.search(got.vector, 1, { rerank: 1, includeVector: true });
      const rec = ctx.state.get(hit.id);
      assert.deepEqual([Array.from(hit.vector), hit.metadata], [rec.vector, rec.metadata], `search near ${JSON.stringify(id)}`);
      searched++;
    } catch (e) {
      h.assertVecvaultError(e, code, `search near ${JSON.stringify(id)}`);
    }
  }
  const live = [...ctx.state.values()].filter((v) => v !== null).length;
  assert.ok(bad >= 1, 'no get() read the damaged chunk');
  assert.ok(bad < live, 'every get() failed: the damage reached more than one chunk');
  assert.ok(searched >= 1, 'no search succeeded beside the damage');
  assert.deepEqual(s.hashDir(ctx.dir, { withTmp: true }), before, 'a failed read changed the files');
  return db;
}

/* The session loads with exactly its original contents, eagerly and lazily. */
async function expectIntact(ctx) {
  assert.deepEqual(s.hashDir(ctx.dir), ctx.orig, 'files differ from the original session');
  for (const lazy of [false, true]) {
    const db = await s.loadDb(ctx.dir, { ...ctx.load, lazy });
    s.assertState(db, ctx.state, ctx.size, `reloaded after the fault (lazy: ${lazy})`);
    db.close();
  }
}

/*
 * Damages one file of the session, expects `code` (and the message to
 * mention `mentions`), then restores the file and expects a good load.
 * `foundAt` 'open': both kinds of load fail; 'read' (a damaged chunk): the
 * eager load fails, the lazy one opens and fails on reading the chunk.
 */
async function withDamage(ctx, rel, damage, code, mentions, options = ctx.load, foundAt = 'open') {
  const file = path.join(ctx.dir, rel);
  const saved = fs.readFileSync(file);
  let lazyDb = null;
  try {
    damage(file, saved);
    if (foundAt === 'open') {
      await expectOpenFails(ctx.dir, options, code, mentions);
    } else {
      await expectLoadFails(ctx.dir, { ...options, lazy: false }, code, mentions);
      lazyDb = await expectReadFails(ctx, options, code);
    }
  } finally {
    fs.writeFileSync(file, saved);
  }
  /* Nothing damaged was cached: once the object is repaired, the same database
   * reads every record. (A damaged manifest stays what that database opened.) */
  if (lazyDb && rel !== 'manifest.json') s.assertState(lazyDb, ctx.state, ctx.size, 'the lazy database once the damage is undone');
  await expectIntact(ctx);
}

/* An offset inside the manifest body where a JSON member's value starts. */
function valueOffset(raw, member) {
  const at = raw.indexOf(Buffer.from(`"${member}":`), s.BODY_AT);
  assert.ok(at > 0, `no ${member} in the manifest`);
  return at + member.length + 3;
}

/* Flip the case bit of the first hex letter (a-f) in raw[from..to). */
function caseFlipOffset(raw, from, to) {
  for (let i = from; i < to; i++) if (raw[i] >= 0x61 && raw[i] <= 0x66) return i;
  return -1;
}

describe('12 session errors', function () {
  this.timeout(30000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  const sessions = {};
  before(async function () {
    sessions.key = await makeSession('key');
    sessions.none = await makeSession('none');
  });

  /* ------------------------------------------------------------ manifest */

  describe('damaged manifest.json', function () {
    for (const seal of ['key', 'none']) {
      describe(seal === 'key' ? 'encrypted' : 'unencrypted', function () {
        const cases = [
          ['flip a bit of the first byte (frame)', (raw) => 0],
          ['flip a bit of the sum', (raw) => 8 + 20],
          ['flip a bit of the body (start)', (raw) => s.BODY_AT + 1],
          ['flip a bit of the body (middle)', (raw) => Math.floor(raw.length / 2)],
          ['flip a bit of the body (last byte before the frame)', (raw) => raw.length - 3],
          ['flip a bit of the closing brace', (raw) => raw.length - 2],
          ['flip a bit of the final newline', (raw) => raw.length - 1],
          ['flip a bit of the generation', (raw) => valueOffset(raw, 'generation')],
        ];
        if (seal === 'key') cases.push(['flip a bit inside keyCheck (the sum catches it first)', (raw) => valueOffset(raw, 'keyCheck') + 10]);
        for (const [what, where] of cases) {
          it(`${what} -> ERR_MANIFEST_CORRUPT`, async function () {
            const ctx = sessions[seal];
            await withDamage(ctx, 'manifest.json', (file, raw) => s.flipBit(file, where(raw), 0), 'ERR_MANIFEST_CORRUPT');
          });
        }

        for (const [what, len] of [['to 0 bytes', () => 0], ['to half', (n) => Math.floor(n / 2)], ['by 1 byte', (n) => n - 1]]) {
          it(`truncated ${what} -> ERR_MANIFEST_CORRUPT`, async function () {
            const ctx = sessions[seal];
            await withDamage(ctx, 'manifest.json', (file, raw) => s.truncateTo(file, len(raw.length)), 'ERR_MANIFEST_CORRUPT');
          });
        }

        it('one byte appended -> ERR_MANIFEST_CORRUPT', async function () {
          await withDamage(sessions[seal], 'manifest.json', (file) => fs.appendFileSync(file, '\n'), 'ERR_MANIFEST_CORRUPT');
        });

        it('grown beyond 64 MiB (FORMAT.md §3) -> ERR_MANIFEST_CORRUPT', async function () {
          await withDamage(sessions[seal], 'manifest.json', (file) => fs.truncateSync(file, 64 * 1024 * 1024 + 1), 'ERR_MANIFEST_CORRUPT');
        });

        it('the case bit of a hex letter of the sum flipped -> ERR_MANIFEST_CORRUPT', async function () {
          const ctx = sessions[seal];
          const raw = fs.readFileSync(path.join(ctx.dir, 'manifest.json'));
          const at = caseFlipOffset(raw, 8, 72);
          if (at < 0) this.skip(); /* a sum of digits only: (10/16)^64, never in practice */
          await withDamage(ctx, 'manifest.json', (file) => s.flipBit(file, at, 5), 'ERR_MANIFEST_CORRUPT');
        });

        it('manifest.json deleted -> ERR_NOT_FOUND', async function () {
          const ctx = sessions[seal];
          await withDamage(ctx, 'manifest.json', (file) => fs.unlinkSync(file), 'ERR_NOT_FOUND');
        });
      });
    }

    /* Replaces the hex digit at `at` by another lower-case hex digit, so the
     * frame stays well-formed and only the value changes. */
    function otherHexDigit(file, at) {
      const raw = fs.readFileSync(file);
      const digits = '0123456789abcdef';
      raw[at] = digits.charCodeAt((digits.indexOf(String.fromCharCode(raw[at])) + 7) % 16);
      fs.writeFileSync(file, raw);
    }

    it('encrypted: a digit of the MAC changed -> ERR_MANIFEST_AUTH', async function () {
      const ctx = sessions.key;
      await withDamage(ctx, 'manifest.json', (file) => otherHexDigit(file, 81 + 30), 'ERR_MANIFEST_AUTH');
      await withDamage(ctx, 'manifest.json', (file) => otherHexDigit(file, 144), 'ERR_MANIFEST_AUTH');
    });

    it('encrypted: a MAC character that is not lower-case hex -> ERR_MANIFEST_CORRUPT (FORMAT.md §3)', async function () {
      const ctx = sessions.key;
      const upper = (file) => {
        const raw = fs.readFileSync(file);
        raw[81 + 30] = 'G'.charCodeAt(0);
        fs.writeFileSync(file, raw);
      };
      await withDamage(ctx, 'manifest.json', upper, 'ERR_MANIFEST_CORRUPT');
    });

    it('unencrypted: a bit of the all-zero MAC flipped -> ERR_MANIFEST_CORRUPT (FORMAT.md §3: 64 zeros)', async function () {
      await withDamage(sessions.none, 'manifest.json', (file) => s.flipBit(file, 81 + 30, 0), 'ERR_MANIFEST_CORRUPT');
    });

    it('encrypted: keyCheck edited and the sum recomputed -> ERR_WRONG_KEY', async function () {
      const ctx = sessions.key;
      await withDamage(ctx, 'manifest.json', () => {
        s.editManifest(ctx.dir, (b) => b.replace(/("keyCheck":")(.)/, (_, p, c) => p + (c === '0' ? '1' : '0')));
      }, 'ERR_WRONG_KEY');
    });
  });

  /* ------------------------------------------------------------- objects */

  describe('damaged objects', function () {
    for (const seal of ['key', 'none']) {
      for (const kind of ['chunk', 'index base', 'index delta']) {
        describe(`${seal === 'key' ? 'encrypted' : 'unencrypted'} ${kind} object`, function () {
          let ctx;
          let obj;
          before(function () {
            ctx = sessions[seal];
            const { json } = s.readManifest(ctx.dir);
            obj = kind === 'chunk' ? json.chunks[1] : kind === 'index base' ? json.index.base[0] : json.index.deltas[0];
            assert.ok(obj, `the session has a ${kind} object`);
          });
          const rel = () => `objects/${obj.name}`;
          /* An index object is read at open, a chunk only when it is needed. */
          const foundAt = kind === 'chunk' ? 'read' : 'open';

          for (const [what, where] of [['first byte (magic)', () => 0], ['kind byte', () => 5], ['sequence number', () => 8],
            ['length field', () => 16], ['middle', (n) => Math.floor(n / 2)], ['last byte', (n) => n - 1]]) {
            it(`a bit of the ${what} flipped -> ERR_CHUNK_CORRUPT naming it`, async function () {
              await withDamage(ctx, rel(), (file, raw) => s.flipBit(file, where(raw.length), 3), 'ERR_CHUNK_CORRUPT', obj.name, ctx.load, foundAt);
            });
          }
          for (const [what, len] of [['to 0 bytes', () => 0], ['to half', (n) => Math.floor(n / 2)], ['by 1 byte', (n) => n - 1]]) {
            it(`truncated ${what} -> ERR_CHUNK_CORRUPT naming it`, async function () {
              await withDamage(ctx, rel(), (file, raw) => s.truncateTo(file, len(raw.length)), 'ERR_CHUNK_CORRUPT', obj.name, ctx.load, foundAt);
            });
          }
          it('one byte appended -> ERR_CHUNK_CORRUPT naming it', async function () {
            await withDamage(ctx, rel(), (file) => fs.appendFileSync(file, Buffer.from([0])), 'ERR_CHUNK_CORRUPT', obj.name, ctx.load, foundAt);
          });
          it('deleted -> ERR_CHUNK_MISSING naming it', async function () {
            await withDamage(ctx, rel(), (file) => fs.unlinkSync(file), 'ERR_CHUNK_MISSING', obj.name, ctx.load, foundAt);
          });
        });
      }
    }

    for (const seal of ['key', 'none']) {
      for (const kind of ['chunk', 'index']) {
        it(`${seal === 'key' ? 'encrypted' : 'unencrypted'}: another ${kind} object's bytes copied over one -> ERR_CHUNK_CORRUPT naming the victim`, async function () {
          const ctx = sessions[seal];
          const objs = s.manifestObjects(ctx.dir)[kind === 'chunk' ? 'chunks' : 'index'];
          const [a, b] = [objs[0], objs[1]];
          await withDamage(ctx, `objects/${b.name}`, (file) => fs.copyFileSync(a.path, file), 'ERR_CHUNK_CORRUPT', b.name, ctx.load, kind === 'chunk' ? 'read' : 'open');
        });
      }
    }
  });

  /* ----------------------------------------------------- foreign manifests */

  describe('manifests from elsewhere', function () {
    it("another session's manifest (same key) -> ERR_CHUNK_MISSING", async function () {
      const ctx = sessions.key;
      const other = await makeSession('key', 'other-same-key');
      const foreign = fs.readFileSync(path.join(other.dir, 'manifest.json'));
      await withDamage(ctx, 'manifest.json', (file) => fs.writeFileSync(file, foreign), 'ERR_CHUNK_MISSING');
    });

    it("another session's manifest (another key) -> ERR_WRONG_KEY", async function () {
      const ctx = sessions.key;
      const dir = s.freshPath('err-other-key');
      const db = s.newDb({ dimension: 8, key: s.keyFor('someone else') });
      s.fill(db, 20);
      await db.save(dir);
      const foreign = fs.readFileSync(path.join(dir, 'manifest.json'));
      await withDamage(ctx, 'manifest.json', (file) => fs.writeFileSync(file, foreign), 'ERR_WRONG_KEY');
    });

    it('an older generation copied over manifest.json loads that generation (rollback is only detectable through parent/generation)', async function () {
      const ctx = sessions.key;
      const gen1 = fs.readFileSync(path.join(ctx.dir, 'manifests', `${'1'.padStart(20, '0')}.json`));
      const file = path.join(ctx.dir, 'manifest.json');
      const saved = fs.readFileSync(file);
      try {
        fs.writeFileSync(file, gen1);
        for (const lazy of [false, true]) {
          const db = await s.loadDb(ctx.dir, { ...ctx.load, lazy });
          assert.equal(db.loadStats.generation, 1);
          assert.equal(db.has('second-gen'), false);
          const deletedInGen2 = [...ctx.state].find(([, rec]) => rec === null)[0];
          assert.equal(db.has(deletedInGen2), true, 'generation 1 still has the id generation 2 deleted');
          db.close();
        }
      } finally {
        fs.writeFileSync(file, saved);
      }
      await expectIntact(ctx);
    });
  });

  /* ------------------------------------------------------- edited bodies */

  describe('edited manifest bodies with the sum recomputed', function () {
    /* One above the newest version this vecvault reads (4: docs/FORMAT.md);
     * these sessions have no filterable fields, so they are written as 3. */
    const NEWEST = 4;
    const bump = (b) => {
      const m = /"version":(\d+),/.exec(b);
      assert.ok(m, 'no version in the manifest');
      return b.replace(m[0], `"version":${NEWEST + 1},`);
    };

    it('the version written is 3 (docs/FORMAT.md section 3)', function () {
      for (const ctx of [sessions.none, sessions.key]) assert.equal(s.readManifest(ctx.dir).json.version, 3);
    });

    it('unencrypted: a future version -> ERR_UNSUPPORTED_VERSION', async function () {
      const ctx = sessions.none;
      await withDamage(ctx, 'manifest.json', () => s.editManifest(ctx.dir, bump), 'ERR_UNSUPPORTED_VERSION');
    });

    it('encrypted: a future version (MAC now stale) -> ERR_UNSUPPORTED_VERSION: the version is read before the key and MAC', async function () {
      const ctx = sessions.key;
      await withDamage(ctx, 'manifest.json', () => s.editManifest(ctx.dir, bump), 'ERR_UNSUPPORTED_VERSION');
      /* also without any key, and with the MAC recomputed by the key holder */
      await withDamage(ctx, 'manifest.json', () => s.editManifest(ctx.dir, bump), 'ERR_UNSUPPORTED_VERSION', [], {});
      await withDamage(ctx, 'manifest.json', () => s.editManifest(ctx.dir, bump, { key: s.keyFor('main') }), 'ERR_UNSUPPORTED_VERSION');
    });

    it('inspect() refuses a future version too', async function () {
      const ctx = sessions.none;
      const file = path.join(ctx.dir, 'manifest.json');
      const saved = fs.readFileSync(file);
      try {
        s.editManifest(ctx.dir, bump);
        await h.rejectsCode(() => VectorDB.inspect(ctx.dir), 'ERR_UNSUPPORTED_VERSION');
      } finally {
        fs.writeFileSync(file, saved);
      }
    });

    const fewer = (b) => b.replace(/"totalVectors":(\d+)/, (_, n) => `"totalVectors":${Number(n) - 1}`);

    it('encrypted: totalVectors edited -> ERR_MANIFEST_AUTH', async function () {
      const ctx = sessions.key;
      await withDamage(ctx, 'manifest.json', () => s.editManifest(ctx.dir, fewer), 'ERR_MANIFEST_AUTH');
    });

    it('encrypted: the same edit with the MAC recomputed is caught by the index check (ERR_CHUNK_CORRUPT), so the MAC is what caught it above', async function () {
      const ctx = sessions.key;
      await withDamage(ctx, 'manifest.json', () => s.editManifest(ctx.dir, fewer, { key: s.keyFor('main') }), 'ERR_CHUNK_CORRUPT');
    });

    it('unencrypted: totalVectors edited -> ERR_CHUNK_CORRUPT, never a silent load', async function () {
      const ctx = sessions.none;
      await withDamage(ctx, 'manifest.json', () => s.editManifest(ctx.dir, fewer), 'ERR_CHUNK_CORRUPT');
    });

    it('unencrypted: dimension edited -> ERR_CHUNK_CORRUPT', async function () {
      const ctx = sessions.none;
      await withDamage(ctx, 'manifest.json', () => s.editManifest(ctx.dir, (b) => b.replace('"dimension":8,', '"dimension":4,')), 'ERR_CHUNK_CORRUPT');
    });

    it('unencrypted: a chunk dropped from the list -> ERR_CHUNK_CORRUPT', async function () {
      const ctx = sessions.none;
      await withDamage(ctx, 'manifest.json', () => s.editManifest(ctx.dir, (b) => {
        const m = JSON.parse(b);
        m.chunks.pop();
        return JSON.stringify(m);
      }), 'ERR_CHUNK_CORRUPT');
    });

    it('unencrypted: two chunk entries swapped (names exchanged) -> ERR_CHUNK_CORRUPT', async function () {
      const ctx = sessions.none;
      await withDamage(ctx, 'manifest.json', () => s.editManifest(ctx.dir, (b) => {
        const m = JSON.parse(b);
        const [a, c] = [m.chunks[0], m.chunks[1]];
        [a.name, c.name, a.bytes, c.bytes] = [c.name, a.name, c.bytes, a.bytes];
        return JSON.stringify(m);
      }), 'ERR_CHUNK_CORRUPT', [], ctx.load, 'read'); /* the objects' sequence numbers give it away, once read */
    });

    /* FORMAT.md §3: exactly these members, no duplicates, integers only, names as 64 lowercase hex. */
    const schemaEdits = [
      ['an unknown member', (b) => b.replace('"format":', '"extra":1,"format":')],
      ['a missing member', (b) => b.replace(/"createdAt":"[^"]*",/, '')],
      ['a duplicated member', (b) => b.replace('"format":"vecvault-session",', '"format":"vecvault-session","format":"vecvault-session",')],
      ['a fraction in an integer', (b) => b.replace(/"generation":(\d+)/, '"generation":$1.0')],
      ['an exponent in an integer', (b) => b.replace(/"chunkSize":(\d+)/, '"chunkSize":$1e0')],
      ['an upper-case object name', (b) => b.replace(/("name":")([0-9a-f]{64})/, (_, p, n) => p + n.toUpperCase())],
      ['an object name that is a path', (b) => b.replace(/("name":")([0-9a-f]{64})/, (_, p, n) => `${p}../${n.slice(3)}`)],
      ['a wrong format name', (b) => b.replace('"vecvault-session"', '"vecvault-sessiom"')],
      ['a duplicated chunk seq', (b) => {
        const m = JSON.parse(b);
        m.chunks[1].seq = m.chunks[0].seq;
        return JSON.stringify(m);
      }],
    ];
    for (const [what, edit] of schemaEdits) {
      it(`unencrypted: ${what} -> ERR_MANIFEST_CORRUPT`, async function () {
        const ctx = sessions.none;
        await withDamage(ctx, 'manifest.json', () => s.editManifest(ctx.dir, edit), 'ERR_MANIFEST_CORRUPT');
      });
    }
  });

  /* ------------------------------------------------------------- secrets */

  describe('secrets', function () {
    let pw;
    before(async function () {
      pw = await makeSession('passphrase');
    });

    it('wrong key -> ERR_WRONG_KEY', async function () {
      await expectOpenFails(sessions.key.dir, { key: s.keyFor('wrong') }, 'ERR_WRONG_KEY');
      await expectIntact(sessions.key);
    });

    it('wrong passphrase -> ERR_WRONG_KEY', async function () {
      await expectOpenFails(pw.dir, { passphrase: 'correct horse battery stapler' }, 'ERR_WRONG_KEY');
      await expectIntact(pw);
    });

    it('a key for a passphrase session, and a passphrase for a key session -> ERR_WRONG_KEY', async function () {
      await expectOpenFails(pw.dir, { key: s.keyFor('main') }, 'ERR_WRONG_KEY');
      await expectOpenFails(sessions.key.dir, { passphrase: 'correct horse battery staple' }, 'ERR_WRONG_KEY');
      await expectIntact(pw);
      await expectIntact(sessions.key);
    });

    it('no key for an encrypted session -> ERR_KEY_REQUIRED', async function () {
      await expectOpenFails(sessions.key.dir, {}, 'ERR_KEY_REQUIRED');
      await expectLoadFails(pw.dir, undefined, 'ERR_KEY_REQUIRED'); /* no options at all */
    });

    it('a key or passphrase for an unencrypted session -> ERR_MANIFEST_AUTH (refused as a possible downgrade)', async function () {
      await expectOpenFails(sessions.none.dir, { key: s.keyFor('main') }, 'ERR_MANIFEST_AUTH');
      await expectOpenFails(sessions.none.dir, { passphrase: 'x' }, 'ERR_MANIFEST_AUTH');
      await expectIntact(sessions.none);
    });

    it('a wrong key is detected at open, before any object is read', async function () {
      const ctx = await makeSession('key', 'no-objects');
      for (const f of fs.readdirSync(path.join(ctx.dir, 'objects'))) fs.unlinkSync(path.join(ctx.dir, 'objects', f));
      await expectOpenFails(ctx.dir, { key: s.keyFor('wrong') }, 'ERR_WRONG_KEY');
      await expectOpenFails(ctx.dir, ctx.load, 'ERR_CHUNK_MISSING'); /* the index is read at open either way */
    });

    it('saving with encryptAtRest on by default and no secret -> ERR_KEY_REQUIRED naming the ways out, and nothing is written', async function () {
      const db = s.newDb({ dimension: 4 });
      s.fill(db, 5);
      const missing = s.freshPath('nokey');
      const err = await h.rejectsCode(() => db.save(missing), 'ERR_KEY_REQUIRED');
      for (const word of ['key', 'passphrase', 'encryptAtRest']) assert.ok(err.message.includes(word), `message should mention ${word}: ${err.message}`);
      assert.equal(fs.existsSync(missing), false, `the directory was created: ${fs.existsSync(missing) ? s.listFiles(missing) : ''}`);
      const empty = s.tmpDir('nokey-empty');
      await h.rejectsCode(() => db.save(empty), 'ERR_KEY_REQUIRED');
      assert.deepEqual(fs.readdirSync(empty), [], 'something was written into the empty directory');
    });

    it('saving without a secret into an existing session changes nothing', async function () {
      const ctx = sessions.key;
      const db = s.newDb({ dimension: 8 });
      s.fill(db, 5);
      await h.rejectsCode(() => db.save(ctx.dir), 'ERR_KEY_REQUIRED');
      await expectIntact(ctx);
    });
  });

  /* ---------------------------------------------------------------- lock */

  describe('writer lock', function () {
    /* Holds an exclusive flock on <dir>/lock from another process until release(). */
    function holdLock(dir) {
      return new Promise((resolve, reject) => {
        const child = spawn('flock', ['-n', path.join(dir, 'lock'), '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.on('error', reject);
        child.stderr.on('data', (d) => { err += d; });
        child.stdout.on('data', (d) => {
          out += d;
          if (out.includes('locked')) {
            resolve({
              release: () => new Promise((done) => {
                child.on('close', done);
                child.stdin.end();
              }),
            });
          }
        });
        child.on('close', (code) => {
          if (!out.includes('locked')) reject(new Error(`flock exited ${code} without taking the lock: ${err}`));
        });
      });
    }

    it('a save while another process holds the lock -> ERR_LOCKED; loads still work; after release the save succeeds', async function () {
      const dir = s.freshPath('lock');
      const key = s.keyFor('lock');
      const db = s.newDb({ dimension: 4, key });
      const ids = s.fill(db, 30);
      await db.save(dir);
      const before = s.hashDir(dir);
      db.add('while-locked', [1, 1, 1, 1]);

      const lock = await holdLock(dir);
      try {
        await h.rejectsCode(() => db.save(dir), 'ERR_LOCKED');
        assert.deepEqual(s.hashDir(dir), before, 'a refused save changed the files');
        const reader = await s.loadDb(dir, { key }); /* readers never lock */
        assert.equal(reader.loadStats.generation, 1);
        assert.equal(reader.has('while-locked'), false);
      } finally {
        await lock.release();
      }
      const st = await db.save(dir);
      assert.equal(st.generation, 2);
      const state = s.capture(db, [...ids, 'while-locked']);
      s.assertState(await s.loadDb(dir, { key }), state, 31);
    });
  });

  /* ------------------------------------------------------ missing / invalid */

  describe('missing sessions and invalid arguments', function () {
    it('an empty or missing directory -> ERR_NOT_FOUND (load and inspect)', async function () {
      const empty = s.tmpDir('nf');
      await h.rejectsCode(() => VectorDB.load(empty), 'ERR_NOT_FOUND');
      await h.rejectsCode(() => VectorDB.load(path.join(empty, 'nope')), 'ERR_NOT_FOUND');
      await h.rejectsCode(() => VectorDB.inspect(empty), 'ERR_NOT_FOUND');
      assert.deepEqual(fs.readdirSync(empty), []);
    });

    it('paths that cannot be a session -> ERR_IO', async function () {
      const d = s.tmpDir('io');
      const file = path.join(d, 'a-file');
      fs.writeFileSync(file, 'not a directory');
      const db = s.newDb({ dimension: 2, encryptAtRest: false });
      db.add('a', [1, 2]);
      await h.rejectsCode(() => db.save(file), 'ERR_IO');
      await h.rejectsCode(() => db.save(path.join(file, 'below')), 'ERR_IO');
      assert.equal(fs.readFileSync(file, 'utf8'), 'not a directory');
      fs.mkdirSync(path.join(d, 'odd', 'manifest.json'), { recursive: true });
      await h.rejectsCode(() => VectorDB.load(path.join(d, 'odd')), 'ERR_IO');
    });

    it('invalid arguments -> ERR_INVALID_ARGUMENT, and nothing is written', async function () {
      const dir = sessions.none.dir;
      const fresh = s.freshPath('inv');
      const db = s.newDb({ dimension: 4, encryptAtRest: false });
      s.fill(db, 3);
      const bad = [
        () => VectorDB.load(42),
        () => VectorDB.load(''),
        () => VectorDB.load(null),
        () => VectorDB.load(dir, { bogus: 1 }),
        () => VectorDB.load(dir, 'key'),
        () => VectorDB.load(dir, { key: 'not bytes' }),
        () => VectorDB.load(dir, { key: new Uint8Array(31) }),
        () => VectorDB.load(dir, { key: s.keyFor('a'), passphrase: 'b' }),
        () => VectorDB.load(dir, { passphrase: '' }),
        () => VectorDB.load(dir, { onProgress: 'no' }),
        () => VectorDB.load(dir, { signal: {} }),
        () => VectorDB.load(dir, { lazy: 'yes' }),
        () => VectorDB.inspect(undefined),
        () => VectorDB.inspect({}),
        () => db.save(42),
        () => db.save(''),
        () => db.save(fresh, { bogus: true }),
        () => db.save(fresh, { onProgress: 1 }),
        () => db.save(fresh, { signal: 'stop' }),
        () => db.save(fresh, null),
      ];
      for (const fn of bad) await h.rejectsCode(fn, 'ERR_INVALID_ARGUMENT');
      assert.equal(fs.existsSync(fresh), false, 'an invalid save created the directory');
      await expectIntact(sessions.none);
    });
  });
});
