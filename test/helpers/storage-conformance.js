'use strict';
/*
 * test/helpers/storage-conformance.js: the Storage interface's contract as
 * one mocha suite, written once and run against every backend.
 *
 *   conformance('MemoryStorage', () => new MemoryStorage());
 *   conformance('S3Storage on s3rver', makeS3Storage, { manyObjects: 1100, preconditions: 'sent', sentPreconditions });
 *
 * makeStorage() returns (or resolves) a fresh, empty storage for each test.
 * Options, for what a backend can and cannot show:
 * - manyObjects: list() must return this many objects (S3: > 1000 crosses a
 *   continuation token). 0 skips that test.
 * - preconditions: 'enforced' (writeManifest really refuses a stale
 *   version) or 'sent' (the store ignores the condition, e.g. s3rver: then
 *   sentPreconditions(storage) must return, in order, the
 *   { ifMatch, ifNoneMatch } headers of the manifest writes it sent, and
 *   the refusal tests are skipped, saying why in their titles).
 * - validates: the storage checks its arguments with ERR_INVALID_ARGUMENT
 *   (default true).
 */
const assert = require('node:assert/strict');

const enc = (s) => new Uint8Array(Buffer.from(s));
const dec = (u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString();
const hex64 = (i) => i.toString(16).padStart(64, '0');

function bytes(n, seed = 1) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
}

async function rejectsWith(promise, check) {
  let err = null;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'expected a rejection');
  check(err);
  return err;
}

const assertCode = (code) => (err) => assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
const assertAbort = (err) => {
  assert.equal(err.name, 'AbortError', `expected an AbortError, got ${err.name}: ${err.message}`);
  assert.equal(err.code, 'ERR_ABORTED');
};

/* `fn(i)` for i in [0, n), at most `width` at a time. */
async function pool(n, width, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
}

function conformance(name, makeStorage, options = {}) {
  const { manyObjects = 0, preconditions = 'enforced', sentPreconditions, validates = true } = options;
  const enforced = preconditions === 'enforced';
  if (!enforced && typeof sentPreconditions !== 'function') throw new Error('conformance: preconditions "sent" needs sentPreconditions(storage)');
  const SKIP = ' (skipped: this store ignores If-Match/If-None-Match; the conditions SENT are checked instead)';
  const itEnforced = (title, fn) => (enforced ? it(title, fn) : it.skip(title + SKIP, fn));

  describe(`Storage conformance: ${name}`, function () {
    let s;
    beforeEach(async function () {
      s = await makeStorage();
    });

    it('describes itself', function () {
      assert.equal(typeof s.description, 'string');
      assert.ok(s.description.length > 0);
    });

    it('a missing object reads as null, whole or ranged; an empty store has no manifest and lists nothing', async function () {
      assert.equal(await s.read('objects/' + hex64(1)), null);
      assert.equal(await s.read('objects/' + hex64(1), { offset: 0, length: 10 }), null);
      assert.equal(await s.read('objects/' + hex64(1), { offset: 0, length: 0 }), null);
      assert.equal(await s.readManifest(), null);
      assert.deepEqual(await s.list(''), []);
    });

    it('reads back what was written, whole, as a Uint8Array that is the caller\'s own', async function () {
      const data = bytes(1000);
      const name = 'objects/' + hex64(2);
      await s.write(name, data);
      data[0] ^= 0xff; // changing the caller's buffer after the write changes nothing stored
      const got = await s.read(name);
      assert.ok(got instanceof Uint8Array);
      assert.deepEqual(got, bytes(1000));
      got[1] ^= 0xff;
      assert.deepEqual(await s.read(name), bytes(1000));
    });

    it('a Buffer is stored by value too, and so is a manifest', async function () {
      // Buffer#slice() is a view, not a copy: a store must not keep the caller's memory.
      const buf = Buffer.from('buffer contents');
      await s.write('objects/' + hex64(6), buf);
      buf.fill(0);
      assert.equal(dec(await s.read('objects/' + hex64(6))), 'buffer contents');
      const m = Buffer.from('manifest contents');
      await s.writeManifest(m, null);
      m.fill(0);
      assert.equal(dec((await s.readManifest()).data), 'manifest contents');
    });

    it('ranged reads return [offset, min(offset + length, size)) and an empty array at or past the end', async function () {
      const data = bytes(100, 3);
      const name = 'objects/' + hex64(3);
      await s.write(name, data);
      const r = (offset, length) => s.read(name, { offset, length });
      assert.deepEqual(await r(0, 100), data);
      assert.deepEqual(await r(10, 5), data.slice(10, 15));
      assert.deepEqual(await r(0, 1), data.slice(0, 1));
      assert.deepEqual(await r(99, 1), data.slice(99));
      assert.deepEqual(await r(90, 50), data.slice(90), 'a range past the end is cut at the end');
      assert.deepEqual(await r(0, 1e6), data);
      assert.deepEqual(await r(100, 10), new Uint8Array(0), 'offset == size');
      assert.deepEqual(await r(5000, 10), new Uint8Array(0), 'offset > size');
      assert.deepEqual(await r(10, 0), new Uint8Array(0), 'length 0');
      assert.deepEqual(await s.read(name, null), data, 'a null range is the whole object');
    });

    it('an empty object exists: it reads as an empty array, whole and ranged', async function () {
      const name = 'objects/' + hex64(4);
      await s.write(name, new Uint8Array(0));
      assert.deepEqual(await s.read(name), new Uint8Array(0));
      assert.deepEqual(await s.read(name, { offset: 0, length: 10 }), new Uint8Array(0));
      const listed = await s.list('objects/');
      assert.deepEqual(listed.map((o) => [o.name, o.size]), [[name, 0]]);
    });

    it('write replaces an object; delete removes it; deleting a missing object is not an error', async function () {
      const name = 'manifests/' + '1'.padStart(20, '0') + '.json';
      await s.write(name, enc('first version, longer'));
      await s.write(name, enc('second'));
      assert.equal(dec(await s.read(name)), 'second');
      await s.delete(name);
      assert.equal(await s.read(name), null);
      await s.delete(name);
      await s.delete('objects/' + hex64(99));
      assert.deepEqual(await s.list(''), []);
    });

    it('list(prefix) returns every object under the prefix with its size, names relative to the root', async function () {
      const objs = { ['objects/' + hex64(10)]: 10, ['objects/' + hex64(11)]: 11, ['manifests/' + '7'.padStart(20, '0') + '.json']: 7 };
      for (const [n, size] of Object.entries(objs)) await s.write(n, bytes(size));
      await s.writeManifest(enc('{"m":1}'), null);
      const sorted = (list) => list.map((o) => [o.name, o.size]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
      const objects = await s.list('objects/');
      assert.deepEqual(sorted(objects), [
        ['objects/' + hex64(10), 10],
        ['objects/' + hex64(11), 11],
      ]);
      for (const o of objects) if (o.lastModified !== undefined) assert.ok(Number.isFinite(o.lastModified) && o.lastModified > 0);
      assert.deepEqual(sorted(await s.list('manifests/')), [['manifests/' + '7'.padStart(20, '0') + '.json', 7]]);
      const all = await s.list('');
      assert.deepEqual(
        all.map((o) => o.name).sort(),
        [...Object.keys(objs), 'manifest.json'].sort(),
        "list('') includes manifest.json",
      );
      assert.deepEqual(await s.list('objects/' + hex64(10)), [objects.find((o) => o.name === 'objects/' + hex64(10))]);
      assert.deepEqual(await s.list('nothing/'), []);
    });

    if (manyObjects > 0) {
      it(`list() returns all of ${manyObjects} objects (past any page limit)`, async function () {
        const names = Array.from({ length: manyObjects }, (_, i) => 'objects/' + hex64(i + 1000));
        const one = new Uint8Array([1]);
        await pool(manyObjects, 32, (i) => s.write(names[i], one));
        await s.write('manifests/' + '1'.padStart(20, '0') + '.json', one); // outside the prefix listed
        const listed = await s.list('objects/');
        assert.equal(listed.length, manyObjects);
        assert.deepEqual(listed.map((o) => o.name).sort(), names.slice().sort());
        assert.equal((await s.list('')).length, manyObjects + 1);
      });
    }

    it('writeManifest(data, null) creates the manifest; readManifest returns it with that version', async function () {
      const { version } = await s.writeManifest(enc('gen 1'), null);
      assert.equal(typeof version, 'string');
      assert.ok(version.length > 0);
      const m = await s.readManifest();
      assert.equal(dec(m.data), 'gen 1');
      assert.equal(m.version, version);
    });

    it('writeManifest(data, currentVersion) replaces it with a new version', async function () {
      const v1 = (await s.writeManifest(enc('gen 1'), null)).version;
      const v2 = (await s.writeManifest(enc('gen 2, different bytes'), v1)).version;
      assert.notEqual(v2, v1);
      const m = await s.readManifest();
      assert.equal(dec(m.data), 'gen 2, different bytes');
      assert.equal(m.version, v2);
    });

    if (!enforced) {
      it('writeManifest SENDS If-None-Match: * for the first manifest and If-Match: <version> after', async function () {
        const v1 = (await s.writeManifest(enc('gen 1'), null)).version;
        await s.writeManifest(enc('gen 2'), v1);
        const sent = sentPreconditions(s);
        assert.equal(sent.length, 2, 'two manifest writes were sent');
        assert.deepEqual(sent[0], { ifMatch: undefined, ifNoneMatch: '*' });
        assert.deepEqual(sent[1], { ifMatch: v1, ifNoneMatch: undefined });
      });
    }

    itEnforced('writeManifest(data, null) conflicts when a manifest exists, and changes nothing', async function () {
      const v1 = (await s.writeManifest(enc('gen 1'), null)).version;
      await rejectsWith(s.writeManifest(enc('intruder'), null), assertCode('ERR_CONFLICT'));
      const m = await s.readManifest();
      assert.equal(dec(m.data), 'gen 1');
      assert.equal(m.version, v1);
    });

    itEnforced('writeManifest with a stale or unknown version conflicts, and changes nothing', async function () {
      const v1 = (await s.writeManifest(enc('gen 1'), null)).version;
      const v2 = (await s.writeManifest(enc('gen 2'), v1)).version;
      await rejectsWith(s.writeManifest(enc('stale'), v1), assertCode('ERR_CONFLICT'));
      await rejectsWith(s.writeManifest(enc('bogus'), '"no-such-version"'), assertCode('ERR_CONFLICT'));
      const m = await s.readManifest();
      assert.equal(dec(m.data), 'gen 2');
      assert.equal(m.version, v2);
    });

    itEnforced('writeManifest(data, version) conflicts when there is no manifest', async function () {
      await rejectsWith(s.writeManifest(enc('x'), '"1"'), assertCode('ERR_CONFLICT'));
      assert.equal(await s.readManifest(), null);
    });

    itEnforced('of two writers racing from the same version, exactly one wins', async function () {
      const v1 = (await s.writeManifest(enc('gen 1'), null)).version;
      const results = await Promise.allSettled([s.writeManifest(enc('writer A'), v1), s.writeManifest(enc('writer B'), v1)]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      assert.equal(won.length, 1, 'one winner');
      assert.equal(lost.length, 1, 'one loser');
      assert.equal(lost[0].reason.code, 'ERR_CONFLICT');
      const m = await s.readManifest();
      assert.equal(m.version, won[0].value.version);
      assert.equal(dec(m.data), results[0].status === 'fulfilled' ? 'writer A' : 'writer B');
    });

    it('every method rejects with an AbortError on an already-aborted signal, and a write does nothing', async function () {
      const ac = new AbortController();
      ac.abort();
      const o = { signal: ac.signal };
      const name = 'objects/' + hex64(5);
      await rejectsWith(s.read(name, null, o), assertAbort);
      await rejectsWith(s.read(name, { offset: 0, length: 4 }, o), assertAbort);
      await rejectsWith(s.write(name, bytes(4), o), assertAbort);
      await rejectsWith(s.delete(name, o), assertAbort);
      await rejectsWith(s.list('', o), assertAbort);
      await rejectsWith(s.readManifest(o), assertAbort);
      await rejectsWith(s.writeManifest(enc('m'), null, o), assertAbort);
      assert.equal(await s.read(name), null, 'the aborted write stored nothing');
      assert.equal(await s.readManifest(), null, 'the aborted manifest write stored nothing');
    });

    if (validates) {
      it('bad arguments are refused with ERR_INVALID_ARGUMENT', async function () {
        const bad = assertCode('ERR_INVALID_ARGUMENT');
        const ok = 'objects/' + hex64(7); // a valid name: only the other argument is wrong
        await rejectsWith(s.read(''), bad);
        await rejectsWith(s.read(42), bad);
        await rejectsWith(s.read(ok, { offset: -1, length: 1 }), bad);
        await rejectsWith(s.read(ok, { offset: 0, length: 1.5 }), bad);
        await rejectsWith(s.read(ok, 'bytes=0-1'), bad);
        await rejectsWith(s.write(ok, 'not bytes'), bad);
        await rejectsWith(s.write(ok, [1, 2]), bad);
        await rejectsWith(s.delete(''), bad);
        await rejectsWith(s.list(null), bad);
        await rejectsWith(s.writeManifest('text', null), bad);
        await rejectsWith(s.writeManifest(enc('m'), 7), bad);
        await rejectsWith(s.writeManifest(enc('m'), ''), bad);
        await rejectsWith(s.read(ok, null, { signal: 'yes' }), bad);
        assert.deepEqual(await s.list(''), [], 'nothing was written');
      });
    }
  });
}

module.exports = { conformance, rejectsWith, assertCode, assertAbort, bytes, enc, dec, hex64 };
