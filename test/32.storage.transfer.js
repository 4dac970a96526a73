'use strict';
/*
 * 32.storage.transfer.js: DirStorage, and moving sessions between storages
 * (copySession) and through one export stream (exportSession /
 * importSession, docs/EXPORT.md).
 *
 * Owns: DirStorage's own rules (format names only, non-regular files
 * refused, temporary files of the format's pattern, the manifest's
 * compare-and-swap) and its run of the storage conformance suite; round
 * trips dir -> memory -> export -> import -> dir, byte for byte, and a copy
 * that loads with the same search results; skipping what a target already
 * has; the target rules; abort; every kind of damaged or hostile export
 * file; and bounded memory on both ends of an export, measured by counting
 * buffered bytes (no timing).
 *
 * Export files here are also built by a small writer of this file's own
 * (`container`), from docs/EXPORT.md alone, so the document is checked too.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');
const { Writable, Readable } = require('node:stream');
const h = require('./helpers');
const s = require('./helpers/session');
const { DirStorage } = require('../lib/storage/dir');
const { MemoryStorage } = require('../lib/storage/memory');
const { FaultStorage } = require('../lib/storage/fault');
const { copySession, exportSession, importSession } = require('../lib/storage/transfer');

const { VectorDB } = h.vecvault();

const DIM = 16;
const KEY = s.keyFor('transfer');
const OBJ = (c) => `objects/${c.repeat(64)}`;

/* A saved session of `n` vectors (generation 1), plus `more` added in a second save (generation 2) when given. */
async function session(dir, { n = 120, more = 0, seed = 1, chunkSize = 16, dim = DIM } = {}) {
  const db = h.openDb({ dimension: dim, key: KEY, chunkSize });
  const vs = h.randomVectors(n + more, dim, seed);
  db.addBatch(h.makeItems(vs.slice(0, n)));
  await db.save(dir);
  if (more) {
    db.addBatch(h.makeItems(vs.slice(n), 'w'));
    await db.save(dir);
  }
  return db;
}

const digest = (data) => crypto.createHash('sha256').update(data).digest('hex');

/* Every file under `dir` (lock excepted: an empty file only the native writer uses) -> SHA-256 of its bytes. */
function tree(dir) {
  const out = {};
  const walk = (d, rel) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else if (r !== 'lock') out[r] = digest(fs.readFileSync(path.join(d, e.name)));
    }
  };
  walk(dir, '');
  return out;
}

/* A MemoryStorage's contents in the same shape as tree(). */
function memTree(mem) {
  const out = {};
  for (const [name, data] of mem.snapshot()) out[name] = digest(data);
  return out;
}

function exportBytes(file) {
  return fs.readFileSync(file);
}

/* ------------------------------------------- an independent container writer */

/*
 * docs/EXPORT.md, written from the document: a header, records, a trailer
 * with the record count and the SHA-256 of everything before the hash.
 * `tweak` may damage any part: { magic, version, flags, generation, sessionId,
 * payload, count, hash (a function of the right hash) }.
 */
function container(records, { sessionId, generation }, tweak = {}) {
  const header = Buffer.alloc(48);
  (tweak.magic || Buffer.from('VVEXPORT')).copy(header, 0);
  header.writeUInt16LE(tweak.version ?? 1, 8);
  header.writeUInt16LE(tweak.flags ?? 0, 10);
  Buffer.from(tweak.sessionId ?? sessionId, 'hex').copy(header, 16);
  header.writeBigUInt64LE(BigInt(tweak.generation ?? generation), 32);
  const payload = records.reduce((n, r) => n + r.data.length, 0);
  header.writeBigUInt64LE(BigInt(tweak.payload ?? payload), 40);
  const parts = [header];
  for (const r of records) {
    const rh = Buffer.alloc(12);
    rh.writeUInt8(r.kind, 0);
    rh.writeUInt8(Buffer.byteLength(r.name), 1);
    rh.writeBigUInt64LE(BigInt(r.length ?? r.data.length), 4);
    parts.push(rh, Buffer.from(r.name), Buffer.from(r.data));
  }
  const trailer = Buffer.alloc(12);
  trailer.writeBigUInt64LE(BigInt(tweak.count ?? records.length), 4);
  parts.push(trailer);
  const body = Buffer.concat(parts);
  const hash = crypto.createHash('sha256').update(body).digest();
  return Buffer.concat([body, tweak.hash ? tweak.hash(hash) : hash]);
}

/* The records of a session directory, in the container's order. */
function recordsOf(dir) {
  const recs = [];
  for (const f of fs.readdirSync(path.join(dir, 'objects')).sort()) {
    recs.push({ kind: 1, name: `objects/${f}`, data: fs.readFileSync(path.join(dir, 'objects', f)) });
  }
  for (const f of fs.readdirSync(path.join(dir, 'manifests')).sort()) {
    recs.push({ kind: 2, name: `manifests/${f}`, data: fs.readFileSync(path.join(dir, 'manifests', f)) });
  }
  recs.push({ kind: 3, name: 'manifest.json', data: fs.readFileSync(path.join(dir, 'manifest.json')) });
  return recs;
}

function identity(dir) {
  const m = fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8');
  const body = JSON.parse(m.slice(154, -2));
  return { sessionId: body.sessionId, generation: body.generation };
}

describe('32 storage transfer', function () {
  after(s.cleanupTmp);

  describe('DirStorage', function () {
    it('accepts only the format\'s names: anything else is ERR_INVALID_ARGUMENT, nothing escapes the directory', async function () {
      const root = s.tmpDir('dirst');
      const st = new DirStorage(path.join(root, 'sess'));
      const bad = ['../x', 'objects/../../x', `objects/${'A'.repeat(64)}`, `objects/${'a'.repeat(63)}`, 'manifest.json', 'lock',
        'manifests/1.json', `manifests/${'0'.repeat(20)}.json/x`, 'tmp-0123456789abcdef', '/etc/passwd', '', 'objects/', 7];
      for (const name of bad) {
        await h.rejectsCode(() => st.read(name), 'ERR_INVALID_ARGUMENT', `read ${name}`);
        await h.rejectsCode(() => st.write(name, new Uint8Array(1)), 'ERR_INVALID_ARGUMENT', `write ${name}`);
        await h.rejectsCode(() => st.delete(name), 'ERR_INVALID_ARGUMENT', `delete ${name}`);
      }
      assert.deepEqual(fs.readdirSync(root), [], 'nothing was created');
      assert.equal(st.description, path.join(root, 'sess'));
    });

    it('writes objects 0600 through tmp- files that never remain, and reads ranges like pread', async function () {
      const st = new DirStorage(s.freshPath('dirst'));
      const data = crypto.randomBytes(5000);
      await st.write(OBJ('a'), data);
      await st.write('manifests/00000000000000000001.json', Buffer.from('{}'));
      const file = path.join(st.description, 'objects', 'a'.repeat(64));
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(fs.readdirSync(path.join(st.description, 'objects')), ['a'.repeat(64)]);
      assert.deepEqual(Buffer.from(await st.read(OBJ('a'))), data);
      assert.deepEqual(Buffer.from(await st.read(OBJ('a'), { offset: 4990, length: 100 })), data.subarray(4990));
      assert.equal((await st.read(OBJ('a'), { offset: 5000, length: 1 })).length, 0);
      assert.equal(await st.read(OBJ('b')), null);
      await st.delete(OBJ('b')); /* missing: not an error */
      const names = (await st.list('')).map((o) => o.name).sort();
      assert.deepEqual(names, ['manifests/00000000000000000001.json', OBJ('a')]);
      assert.deepEqual((await st.list('objects/')).map((o) => [o.name, o.size]), [[OBJ('a'), 5000]]);
    });

    it('refuses a symbolic link, FIFO or directory where an object or the manifest belongs (ERR_IO, never waits)', async function () {
      const st = new DirStorage(s.freshPath('dirst'));
      await st.write(OBJ('a'), Buffer.from('x'));
      const objects = path.join(st.description, 'objects');
      fs.symlinkSync(path.join(objects, 'a'.repeat(64)), path.join(objects, 'b'.repeat(64)));
      fs.mkdirSync(path.join(objects, 'c'.repeat(64)));
      execFileSync('mkfifo', [path.join(objects, 'd'.repeat(64))]);
      execFileSync('mkfifo', [path.join(st.description, 'manifest.json')]);
      for (const c of 'bcd') await h.rejectsCode(() => st.read(OBJ(c)), 'ERR_IO', `object ${c}`);
      await h.rejectsCode(() => st.readManifest(), 'ERR_IO', 'manifest FIFO');
    });

    it('lists every one of 500 objects, with their sizes', async function () {
      const st = new DirStorage(s.freshPath('dirst'));
      const names = Array.from({ length: 500 }, (_, i) => `objects/${i.toString(16).padStart(64, '0')}`);
      for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((n, j) => st.write(n, new Uint8Array((i + j) % 7))));
      const listed = await st.list('objects/');
      assert.deepEqual(listed.map((o) => [o.name, o.size]).sort(), names.map((n, i) => [n, i % 7]).sort());
      assert.equal((await st.list('')).length, 500);
      assert.equal((await st.list('manifests/')).length, 0);
    });

    it('lists foreign files and directories, so a directory that is not empty never passes for an empty one', async function () {
      const dir = s.tmpDir('dirst');
      const st = new DirStorage(dir);
      fs.mkdirSync(path.join(dir, '.git'));
      fs.writeFileSync(path.join(dir, '.git', 'HEAD'), 'x');
      assert.deepEqual((await st.list('')).map((o) => o.name), ['.git/']);
      const src = s.freshPath('dirst');
      await session(src, { n: 20 });
      await h.rejectsCode(() => copySession(src, dir), 'ERR_NOT_A_SESSION', 'a directory holding only a directory');
      await h.rejectsCode(() => importSession(Readable.from([container(recordsOf(src), identity(src))]), dir), 'ERR_NOT_A_SESSION', 'import');
      assert.deepEqual(fs.readdirSync(dir), ['.git']);

      const linked = s.tmpDir('dirst');
      const elsewhere = s.tmpDir('dirst');
      fs.symlinkSync(elsewhere, path.join(linked, 'objects'));
      await h.rejectsCode(() => new DirStorage(linked).write(OBJ('a'), Buffer.from('x')), 'ERR_IO', 'objects/ as a symbolic link');
      assert.deepEqual(fs.readdirSync(elsewhere), [], 'nothing written through the link');
      await h.rejectsCode(() => copySession(src, linked), 'ERR_NOT_A_SESSION', 'copy into it');
    });

    it('readManifest\'s version is the SHA-256 of the bytes; writeManifest is a compare-and-swap', async function () {
      const st = new DirStorage(s.freshPath('dirst'));
      assert.equal(await st.readManifest(), null);
      const v1 = await st.writeManifest(Buffer.from('one'), null);
      assert.equal(v1.version, crypto.createHash('sha256').update('one').digest('hex'));
      await h.rejectsCode(() => st.writeManifest(Buffer.from('two'), null), 'ERR_CONFLICT', 'create over an existing manifest');
      await h.rejectsCode(() => st.writeManifest(Buffer.from('two'), 'f'.repeat(64)), 'ERR_CONFLICT', 'stale version');
      const v2 = await st.writeManifest(Buffer.from('two'), v1.version);
      const got = await st.readManifest();
      assert.equal(Buffer.from(got.data).toString(), 'two');
      assert.equal(got.version, v2.version);
      assert.deepEqual(fs.readdirSync(st.description).sort(), ['manifest.json'], 'no temporary file remains after a conflict');
    });

    it('is a Storage the engine\'s directory path agrees with: a session it writes loads natively', async function () {
      const src = s.freshPath('dirst');
      const db = await session(src, { n: 60 });
      const dst = s.freshPath('dirst');
      await copySession(new DirStorage(src), new DirStorage(dst));
      assert.deepEqual(tree(dst), tree(src));
      const loaded = await VectorDB.load(dst, { key: KEY, lazy: false });
      try {
        const q = h.randomVectors(1, DIM, 9)[0];
        assert.deepEqual(h.plainResults(loaded.search(q, 5)), h.plainResults(db.search(q, 5)));
      } finally {
        loaded.close();
      }
    });

    /* manyObjects: 0, because that test also writes a name outside the format, which a session directory refuses (first test above) */
    require('./helpers/storage-conformance').conformance('DirStorage', () => new DirStorage(s.freshPath('conf')), { manyObjects: 0 });
  });

  describe('copySession', function () {
    it('dir -> memory -> export file -> import -> dir: every object and manifest byte for byte, and it loads with the same results', async function () {
      const src = s.freshPath('copy');
      const db = await session(src, { n: 150, more: 40 });
      const mem = new MemoryStorage();
      const seen = [];
      const r = await copySession(src, mem, { onProgress: (d, t) => seen.push([d, t]) });
      assert.equal(r.generation, 2);
      const want = tree(src);
      assert.deepEqual(memTree(mem), want, 'the memory copy holds exactly the directory\'s files');
      assert.ok(seen.length > 2 && seen.every(([d, t], i) => d <= t && (i === 0 || d >= seen[i - 1][0])), 'progress is monotonic');
      assert.deepEqual(seen[seen.length - 1], [seen[0][1], seen[0][1]], 'progress ends at its total');

      const file = path.join(s.tmpDir('copy'), 'session.vvx');
      const exported = [];
      await exportSession(mem, file, { onProgress: (d, t) => exported.push([d, t]) });
      const back = s.freshPath('copy');
      const imported = [];
      await importSession(file, back, { onProgress: (d, t) => imported.push([d, t]) });
      assert.deepEqual(tree(back), want, 'the imported directory is byte-identical');
      const payload = Object.keys(want).reduce((n, f) => n + fs.statSync(path.join(src, f)).size, 0);
      for (const [what, p] of [['export', exported], ['import', imported]]) {
        assert.ok(p.length > 3 && p.every(([d, t], i) => t === payload && d <= t && (i === 0 || d >= p[i - 1][0])), `${what} progress`);
        assert.deepEqual(p[p.length - 1], [payload, payload], `${what} progress ends at the payload`);
      }

      const loaded = await VectorDB.load(back, { key: KEY, lazy: false });
      try {
        assert.equal(loaded.size, db.size);
        for (const q of h.randomVectors(5, DIM, 77)) {
          assert.deepEqual(h.plainResults(loaded.search(q, 7)), h.plainResults(db.search(q, 7)));
        }
      } finally {
        loaded.close();
      }
      /* and the native writer takes the copy as its own session */
      const again = await VectorDB.load(back, { key: KEY });
      try {
        again.add('late', h.randomVectors(1, DIM, 5)[0]);
        const saved = await again.save(back);
        assert.equal(saved.generation, 3);
      } finally {
        again.close();
      }
    });

    it('skips what the target already has: a second copy writes nothing, an incremental one only the new objects', async function () {
      const src = s.freshPath('skip');
      const db = await session(src, { n: 100 });
      const target = new FaultStorage(new MemoryStorage());
      const first = await copySession(src, target);
      assert.ok(first.objectsCopied > 2);
      assert.equal(target.counts.write, first.objectsCopied + 1, 'objects plus one history manifest');
      assert.equal(target.counts.writeManifest, 1);

      target.resetCounts();
      const second = await copySession(src, target);
      assert.equal(second.objectsCopied, 0);
      assert.equal(target.counts.write, 0, 'no object or history manifest written again');
      assert.equal(target.counts.writeManifest, 0, 'the same manifest is not rewritten');

      db.addBatch(h.makeItems(h.randomVectors(10, DIM, 3), 'n'));
      await db.save(src);
      const before = new Set((await target.list('objects/')).map((o) => o.name));
      const fresh = Object.keys(tree(src)).filter((n) => n.startsWith('objects/') && !before.has(n));
      target.resetCounts();
      const third = await copySession(src, target);
      assert.equal(third.objectsCopied, fresh.length);
      assert.deepEqual(target.log.filter((c) => c.op === 'write' && c.name.startsWith('objects/')).map((c) => c.name).sort(), fresh.sort());
      assert.equal(target.counts.writeManifest, 1);
      assert.deepEqual(memTree(target.inner), tree(src));
    });

    it('writes the target\'s manifest last, by compare-and-swap on the version it saw', async function () {
      const src = s.freshPath('order');
      await session(src, { n: 50, more: 10 });
      const target = new FaultStorage(new MemoryStorage());
      await copySession(src, target);
      const writes = target.log.filter((c) => c.op === 'write' || c.op === 'writeManifest');
      assert.equal(writes[writes.length - 1].op, 'writeManifest');
      const firstHistory = writes.findIndex((c) => c.name.startsWith('manifests/'));
      assert.ok(writes.slice(firstHistory).every((c) => !c.name.startsWith('objects/')), 'objects before history manifests');
    });

    it('refuses a foreign target (ERR_NOT_A_SESSION), another session or a newer generation (ERR_CONFLICT), and updates an older one', async function () {
      const a = s.freshPath('rules');
      const dbA = await session(a, { n: 40 });
      const foreign = s.tmpDir('rules');
      fs.writeFileSync(path.join(foreign, 'README.md'), 'mine');
      await h.rejectsCode(() => copySession(a, foreign), 'ERR_NOT_A_SESSION', 'foreign directory');
      assert.deepEqual(fs.readdirSync(foreign), ['README.md']);

      const notSession = new MemoryStorage();
      await notSession.writeManifest(Buffer.from('hello'), null);
      await h.rejectsCode(() => copySession(a, notSession), 'ERR_NOT_A_SESSION', 'a manifest that is not one');

      const b = s.freshPath('rules');
      await session(b, { n: 30, seed: 2 });
      const bTree = tree(b);
      await h.rejectsCode(() => copySession(a, b), 'ERR_CONFLICT', 'another session');
      assert.deepEqual(tree(b), bTree, 'the other session is untouched');

      const older = s.freshPath('rules');
      await copySession(a, older);
      dbA.add('x1', h.randomVectors(1, DIM, 11)[0]);
      await dbA.save(a); /* a is now at generation 2, older at 1 */
      const newer = s.freshPath('rules');
      await copySession(a, newer);
      const atOne = s.freshPath('rules');
      await copySession(older, atOne);
      await h.rejectsCode(() => copySession(older, newer), 'ERR_CONFLICT', 'target newer than the source');
      await copySession(a, older);
      assert.deepEqual(tree(older), tree(a), 'an older copy is brought up to date');
      await h.rejectsCode(() => copySession(a, '/nonexistent-parent/x'), 'ERR_IO', 'a target whose parent is missing');
      await h.rejectsCode(() => copySession(s.freshPath('rules'), atOne), 'ERR_NOT_A_SESSION', 'a source without a session');
    });

    it('an abort midway leaves the target\'s previous manifest in force', async function () {
      const src = s.freshPath('abort');
      const db = await session(src, { n: 40 });
      const target = s.freshPath('abort');
      await copySession(src, target);
      const before = fs.readFileSync(path.join(target, 'manifest.json'));
      db.addBatch(h.makeItems(h.randomVectors(60, DIM, 8), 'z'));
      await db.save(src);

      const ac = new AbortController();
      let writes = 0;
      const inner = new DirStorage(target);
      const aborting = new FaultStorage(inner, {
        faults: (call) => {
          if (call.op === 'write' && ++writes === 2) ac.abort();
          return undefined;
        },
      });
      const err = await h.rejectsCode(() => copySession(src, aborting, { signal: ac.signal }), 'ERR_ABORTED', 'aborted copy');
      assert.equal(err.name, 'AbortError');
      assert.equal(aborting.counts.writeManifest, 0);
      assert.deepEqual(fs.readFileSync(path.join(target, 'manifest.json')), before, 'the manifest is the previous one');
      const loaded = await VectorDB.load(target, { key: KEY });
      assert.equal(loaded.size, 40);
      loaded.close();
      await copySession(src, target); /* and a retry completes it */
      assert.deepEqual(tree(target), tree(src));
    });
  });

  describe('S3 (s3rver)', function () {
    const { startS3, recordRequests } = require('./helpers/s3');
    const { S3Storage } = require('../lib/storage/s3');
    let s3;
    let recorder;
    before(async function () {
      s3 = await startS3();
      await s3.makeBucket('transfer');
      recorder = recordRequests(s3.client, 'transfer');
    });
    after(async function () {
      if (recorder) recorder.stop();
      if (s3) await s3.close();
    });

    it('dir -> S3 -> export -> import into S3 -> dir: byte for byte, with the manifest conditions sent, and it loads', async function () {
      const src = s.freshPath('s3');
      const db = await session(src, { n: 90 });
      const a = new S3Storage({ client: s3.client, bucket: 'transfer', prefix: 'a/' });
      await copySession(src, a);
      db.addBatch(h.makeItems(h.randomVectors(20, DIM, 6), 's'));
      await db.save(src);
      await copySession(src, a);
      const puts = recorder.requests.filter((r) => r.method === 'PUT' && r.key === 'a/manifest.json');
      assert.equal(puts.length, 2);
      assert.equal(puts[0].headers['if-none-match'], '*', 'the first manifest only if there is none');
      assert.ok(puts[1].headers['if-match'], 'the second only over the version the copy saw');

      const file = path.join(s.tmpDir('s3'), 'a.vvx');
      await exportSession(a, file);
      const b = new S3Storage({ client: s3.client, bucket: 'transfer', prefix: 'b/' });
      await importSession(file, b);
      const back = s.freshPath('s3');
      await copySession(b, back);
      assert.deepEqual(tree(back), tree(src));
      const loaded = await VectorDB.load(back, { key: KEY, lazy: false });
      try {
        const q = h.randomVectors(1, DIM, 12)[0];
        assert.deepEqual(h.plainResults(loaded.search(q, 6)), h.plainResults(db.search(q, 6)));
      } finally {
        loaded.close();
      }
    });
  });

  describe('failures of the storages', function () {
    it('transient failures are retried: a copy through a store that resets every third call completes', async function () {
      const src = s.freshPath('retry');
      await session(src, { n: 80, more: 20 });
      const plan = (call) => (call.n % 3 === 1 ? { kind: 'transient' } : undefined);
      const target = new FaultStorage(new MemoryStorage(), { faults: plan });
      await copySession(new FaultStorage(new DirStorage(src), { faults: plan }), target);
      assert.deepEqual(memTree(target.inner), tree(src));
      assert.ok(target.counts.write > target.inner.names().length, 'some writes were attempts that failed');
    });

    it('a manifest write that took effect but whose answer was lost is not reported as a conflict', async function () {
      const src = s.freshPath('lost');
      await session(src, { n: 30 });
      const mem = new MemoryStorage();
      let calls = 0;
      const target = Object.create(mem, {
        writeManifest: {
          value: async (data, expected, o) => {
            calls++;
            const r = await mem.writeManifest(data, expected, o);
            if (calls === 1) throw Object.assign(new Error('socket hang up after the write'), { code: 'ECONNRESET' });
            return r;
          },
        },
      });
      for (const m of ['read', 'write', 'delete', 'list', 'readManifest']) target[m] = mem[m].bind(mem);
      await copySession(src, target);
      assert.equal(calls, 2, 'the retry ran and met its own write');
      assert.deepEqual(memTree(mem), tree(src));
    });

    it('a permanent failure midway is ERR_IO naming the store, and the target keeps its manifest', async function () {
      const src = s.freshPath('perm');
      await session(src, { n: 60 });
      const target = new FaultStorage(new MemoryStorage(), { faults: FaultStorage.failNth('write', 2, 'permanent') });
      const err = await h.rejectsCode(() => copySession(src, target), 'ERR_IO', 'permanent write failure');
      assert.match(err.message, /memory:/);
      assert.equal(await target.inner.readManifest(), null);
      assert.equal(target.counts.writeManifest, 0);
      const denied = new FaultStorage(new MemoryStorage(), { faults: FaultStorage.failAll('write', 'access') });
      await h.rejectsCode(() => copySession(src, denied), 'ERR_ACCESS', 'access denied');
    });

    it('an abort ends a call that never settles: storage, Readable and Writable alike', async function () {
      const src = s.freshPath('hang');
      await session(src, { n: 30 });
      const ac1 = new AbortController();
      const hanging = new FaultStorage(new DirStorage(src), {
        faults: (call) => {
          if (call.op === 'read' && call.name.startsWith('objects/')) {
            setImmediate(() => ac1.abort());
            return { kind: 'hang' };
          }
          return undefined;
        },
      });
      await h.rejectsCode(() => copySession(hanging, new MemoryStorage(), { signal: ac1.signal }), 'ERR_ABORTED', 'copy');

      const ac2 = new AbortController();
      const stalled = new Readable({ read() {} });
      stalled.push(Buffer.from('VVEXPORT'));
      const mem = new MemoryStorage();
      const p = importSession(stalled, mem, { signal: ac2.signal });
      setImmediate(() => ac2.abort());
      await h.rejectsCode(() => p, 'ERR_ABORTED', 'import from a stalled stream');
      assert.deepEqual(mem.names(), []);

      const ac3 = new AbortController();
      const full = new Writable({ highWaterMark: 1024, write() { ac3.abort(); /* never calls back */ } });
      await h.rejectsCode(() => exportSession(src, full, { signal: ac3.signal }), 'ERR_ABORTED', 'export to a stream that never drains');
      assert.ok(full.destroyed, 'the destination was destroyed');
    });

    it('a target without conditional writes is written under its lease, and a live lease of another writer refuses', async function () {
      const src = s.freshPath('lease');
      await session(src, { n: 30 });
      class NoCas extends MemoryStorage {
        get conditionalWrites() {
          return false;
        }
      }
      const warnings = [];
      const onWarning = (w) => warnings.push(w.code);
      process.on('warning', onWarning);
      try {
        const target = new FaultStorage(new NoCas());
        await copySession(src, target);
        const ops = target.log.map((c) => `${c.op} ${c.name}`);
        const taken = ops.indexOf('write lease');
        assert.ok(taken >= 0 && taken < ops.findIndex((o) => o.startsWith('write objects/')), 'the lease is taken before any object');
        assert.equal(ops[ops.length - 1], 'delete lease', 'and given back at the end');
        assert.deepEqual(memTree(target.inner), tree(src));

        const other = new NoCas();
        await other.write('lease', Buffer.from(JSON.stringify({ owner: 'someone-else', expires: Date.now() + 3600e3 })));
        await h.rejectsCode(() => copySession(src, other), 'ERR_LOCKED', 'copy into a leased store');
        await h.rejectsCode(() => importSession(Readable.from([container(recordsOf(src), identity(src))]), other), 'ERR_LOCKED', 'import');
        assert.deepEqual(other.names(), ['lease']);
        await new Promise((resolve) => setImmediate(resolve));
        assert.ok(warnings.includes('VECVAULT_NO_CONDITIONAL_WRITES'), 'the writer was warned');
      } finally {
        process.removeListener('warning', onWarning);
      }
    });

    it('bad arguments: typed errors', async function () {
      await h.rejectsCode(() => copySession(42, new MemoryStorage()), 'ERR_INVALID_ARGUMENT', 'source');
      await h.rejectsCode(() => copySession(new MemoryStorage(), {}), 'ERR_INVALID_ARGUMENT', 'target');
      await h.rejectsCode(() => copySession(new MemoryStorage(), new MemoryStorage(), { onProgress: 1 }), 'ERR_INVALID_ARGUMENT', 'onProgress');
      await h.rejectsCode(() => exportSession(new MemoryStorage(), 42), 'ERR_INVALID_ARGUMENT', 'export destination');
      await h.rejectsCode(() => importSession(42, new MemoryStorage()), 'ERR_INVALID_ARGUMENT', 'import source');
      await h.rejectsCode(() => importSession(path.join(s.tmpDir('args'), 'missing.vvx'), new MemoryStorage()), 'ERR_NOT_FOUND', 'missing file');
      await h.rejectsCode(() => importSession(Readable.from(['VVEXPORT text']), new MemoryStorage()), 'ERR_INVALID_ARGUMENT', 'a text stream');
    });
  });

  describe('export and import', function () {
    it('through a Writable and a Readable, with bounded buffering on both ends', async function () {
      const src = s.freshPath('bounded');
      /* chunk objects larger than the writer's 64 KiB slices, many of them */
      await session(src, { n: 1200, dim: 64, chunkSize: 300 });
      const objectSizes = fs.readdirSync(path.join(src, 'objects')).map((f) => fs.statSync(path.join(src, 'objects', f)).size);
      const largest = Math.max(...objectSizes);
      assert.ok(largest > 64 * 1024, `an object larger than a slice (${largest})`);

      const HWM = 16 * 1024;
      const chunks = [];
      let maxBuffered = 0;
      let pending = 0;
      const sink = new Writable({
        highWaterMark: HWM,
        write(chunk, _enc, cb) {
          maxBuffered = Math.max(maxBuffered, sink.writableLength);
          chunks.push(Buffer.from(chunk));
          pending++;
          setImmediate(() => { pending--; cb(); });
        },
      });
      const r = await exportSession(src, sink);
      assert.ok(sink.writableFinished, 'the export ends the stream');
      const whole = Buffer.concat(chunks);
      assert.equal(whole.length, r.bytes);
      assert.ok(whole.length > 4 * (HWM + 64 * 1024), `the export (${whole.length} bytes) dwarfs the bound`);
      assert.ok(maxBuffered <= HWM + 64 * 1024, `the writer kept at most one slice beyond the high-water mark (max ${maxBuffered})`);
      assert.equal(pending, 0);

      /* Import from a Readable that produces 8 KiB on demand, counting what it handed out beyond what reached the target. */
      let produced = 0;
      const input = new Readable({
        highWaterMark: 8 * 1024,
        read() {
          if (produced >= whole.length) return this.push(null);
          const piece = whole.subarray(produced, produced + 8 * 1024);
          produced += piece.length;
          this.push(piece);
        },
      });
      let stored = 0;
      let maxAhead = 0;
      const mem = new MemoryStorage();
      const counting = new FaultStorage(mem, {
        faults: (call) => {
          if (call.op === 'write') maxAhead = Math.max(maxAhead, produced - stored);
          return undefined;
        },
      });
      const origWrite = counting.write.bind(counting);
      counting.write = async (name, data, o) => {
        const p = origWrite(name, data, o);
        stored += 12 + name.length + data.length;
        return p;
      };
      await importSession(input, counting);
      assert.deepEqual(memTree(mem), tree(src));
      assert.ok(maxAhead <= largest + 64 * 1024, `the reader held about one object at a time (max ${maxAhead}, largest object ${largest})`);
      assert.ok(maxAhead < whole.length / 3, 'never the whole file');
    });

    it('export to a file is atomic: a failed export leaves no file', async function () {
      const src = s.freshPath('atomic');
      await session(src, { n: 40 });
      const dir = s.tmpDir('atomic');
      const file = path.join(dir, 'out.vvx');
      const broken = new FaultStorage(new DirStorage(src), { faults: FaultStorage.failNth('read', 2, 'permanent') });
      await h.rejectsCode(() => exportSession(broken, file), 'ERR_IO', 'a source read that fails for good');
      assert.deepEqual(fs.readdirSync(dir), [], 'neither the file nor a temporary one');
      await exportSession(src, file);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    });

    it('matches docs/EXPORT.md: a container written from the document imports, and the exporter writes the same bytes', async function () {
      const src = s.freshPath('doc');
      await session(src, { n: 50, more: 5 });
      const built = container(recordsOf(src), identity(src));
      const file = path.join(s.tmpDir('doc'), 'x.vvx');
      await exportSession(src, file);
      assert.deepEqual(exportBytes(file), built);
      const dst = s.freshPath('doc');
      await importSession(Readable.from([built]), dst);
      assert.deepEqual(tree(dst), tree(src));
    });

    describe('a damaged or hostile export: ERR_EXPORT_CORRUPT, and the target untouched', function () {
      let src;
      let g1;
      let recs;
      let id;
      let good;
      before(async function () {
        src = s.freshPath('hostile');
        const db = await session(src, { n: 60 });
        /* targets hold generation 1 of the same session; the export is generation 2 */
        g1 = s.freshPath('hostile');
        await copySession(src, g1);
        db.addBatch(h.makeItems(h.randomVectors(30, DIM, 4), 'g'));
        await db.save(src);
        recs = recordsOf(src);
        id = identity(src);
        good = container(recs, id);
      });

      /* `intoSession`: the code when the target holds generation 1 (a header naming another session is refused before any record is read). */
      async function expectCorrupt(bytes, what, code = 'ERR_EXPORT_CORRUPT', intoSession = code) {
        const target = s.freshPath('hostile');
        const mem = new MemoryStorage();
        await copySession(g1, mem);
        const before = memTree(mem);
        await h.rejectsCode(() => importSession(Readable.from([bytes]), mem), intoSession, `${what} (into a session)`);
        assert.deepEqual(memTree(mem), before, `${what}: the session target is as it was`);

        await h.rejectsCode(() => importSession(Readable.from([bytes]), target), code, `${what} (into a new directory)`);
        assert.ok(!fs.existsSync(target), `${what}: the new target directory is gone again`);
        const empty = new MemoryStorage();
        await h.rejectsCode(() => importSession(Readable.from([bytes]), empty), code, `${what} (into memory)`);
        assert.deepEqual(empty.names(), [], `${what}: nothing left in memory`);
      }

      it('the undamaged file imports (control)', async function () {
        const mem = new MemoryStorage();
        await importSession(Readable.from([good]), mem);
        assert.deepEqual(memTree(mem), tree(src));
      });

      it('bad magic, unknown version or flags', async function () {
        await expectCorrupt(container(recs, id, { magic: Buffer.from('VVEXPORX') }), 'bad magic');
        await expectCorrupt(Buffer.from('hello'), 'five bytes');
        await expectCorrupt(Buffer.alloc(0), 'empty');
        await expectCorrupt(container(recs, id, { flags: 1 }), 'flags');
        await expectCorrupt(container(recs, id, { version: 2 }), 'version 2', 'ERR_UNSUPPORTED_VERSION');
      });

      it('a truncated file, cut anywhere', async function () {
        const cuts = [47, 48, 55, 60 + 72, Math.floor(good.length / 2), good.length - 40, good.length - 1];
        for (const cut of cuts) await expectCorrupt(good.subarray(0, cut), `cut at ${cut} of ${good.length}`);
      });

      it('a huge declared length is refused before anything is kept', async function () {
        const huge = recs.map((r, i) => (i === 0 ? { ...r, length: 2 ** 62 } : r));
        await expectCorrupt(container(huge, id), 'length 2^62');
        const big = recs.map((r) => (r.kind === 3 ? { ...r, length: 65 * 1024 * 1024 } : r));
        await expectCorrupt(container(big, id), 'a 65 MiB manifest');
        /* declared larger than what follows: the stream ends inside the record */
        const longer = recs.map((r, i) => (i === 0 ? { ...r, length: r.data.length + 1000 } : r));
        await expectCorrupt(container(longer, id), 'a record longer than the file');
      });

      it('names outside the format: ../x, a path, a wrong kind for the name', async function () {
        for (const name of ['../x', `objects/../${'a'.repeat(61)}`, `objects/${'A'.repeat(64)}`, '/etc/passwd', 'lock', 'manifest.json']) {
          const bad = recs.map((r, i) => (i === 0 ? { ...r, name } : r));
          await expectCorrupt(container(bad, id), `name ${name}`);
        }
        const wrongKind = recs.map((r) => (r.kind === 2 ? { ...r, kind: 1 } : r));
        await expectCorrupt(container(wrongKind, id), 'a history manifest as an object');
      });

      it('a bad trailer: hash, record count, bytes after it', async function () {
        await expectCorrupt(container(recs, id, { hash: (x) => Buffer.from(x.map((b, i) => (i === 5 ? b ^ 1 : b))) }), 'hash');
        const flipped = Buffer.from(good);
        flipped[48 + 12 + 72 + 10] ^= 0x40; /* a byte inside the first object */
        await expectCorrupt(flipped, 'an object byte flipped');
        await expectCorrupt(container(recs, id, { count: recs.length + 1 }), 'count');
        await expectCorrupt(Buffer.concat([good, Buffer.from([0])]), 'a byte after the trailer');
      });

      it('no manifest, a manifest not last, or one the header or objects do not match', async function () {
        await expectCorrupt(container(recs.filter((r) => r.kind !== 3), id), 'no manifest');
        const m = recs.find((r) => r.kind === 3);
        await expectCorrupt(container([m, ...recs.filter((r) => r.kind !== 3)], id), 'manifest first');
        await expectCorrupt(container(recs, id, { generation: id.generation + 1 }), 'header generation');
        await expectCorrupt(container(recs, id, { sessionId: 'ab'.repeat(16) }), 'header session', 'ERR_EXPORT_CORRUPT', 'ERR_CONFLICT');
        await expectCorrupt(container(recs, id, { payload: 5 }), 'header byte count');
        const g1Objects = new Set(fs.readdirSync(path.join(g1, 'objects')).map((f) => `objects/${f}`));
        const onlyNew = recs.findIndex((r) => r.kind === 1 && !g1Objects.has(r.name));
        const dropped = recs.filter((r, i) => i !== onlyNew);
        await expectCorrupt(container(dropped, id), 'an object the manifest lists is missing');
        const stray = { kind: 1, name: OBJ('e'), data: Buffer.from('not listed anywhere') };
        await expectCorrupt(container([stray, ...recs], id), 'an object no manifest lists');
        const dup = [recs[0], ...recs];
        await expectCorrupt(container(dup, id), 'an object twice');
        const garbage = recs.map((r) => (r.kind === 3 ? { ...r, data: Buffer.from('{"sum":"nonsense"}\n') } : r));
        await expectCorrupt(container(garbage, id), 'a manifest that does not parse');
      });

      it('300 seeded random damages (a flipped byte, a cut, a spliced run): always a typed error, never a trace in the target', async function () {
        const r = h.rng(32);
        for (let i = 0; i < 300; i++) {
          const bad = Buffer.from(good);
          let how;
          switch (i % 3) {
            case 0: {
              const at = r.int(bad.length);
              bad[at] ^= 1 + r.int(255);
              how = `byte ${at} flipped`;
              break;
            }
            case 1: {
              const at = r.int(bad.length);
              how = `cut at ${at}`;
              break;
            }
            default: {
              const from = r.int(bad.length - 64);
              const to = r.int(bad.length - 64);
              bad.copy(bad, to, from, from + 1 + r.int(63));
              how = `run from ${from} copied to ${to}`;
            }
          }
          const input = i % 3 === 1 ? bad.subarray(0, Number(how.slice(7))) : bad;
          if (input.equals(good)) continue;
          const mem = new MemoryStorage();
          /* small pieces, so records straddle the stream's chunks */
          const pieces = [];
          for (let off = 0; off < input.length; off += 1000) pieces.push(input.subarray(off, off + 1000));
          let err = null;
          try {
            await importSession(Readable.from(pieces), mem);
          } catch (e) {
            err = e;
          }
          assert.ok(err && ['ERR_EXPORT_CORRUPT', 'ERR_UNSUPPORTED_VERSION'].includes(err.code), `${how}: ${h.describeError(err)}`);
          assert.deepEqual(mem.names(), [], `${how}: the target is empty again`);
        }
      });

      it('an import aborted midway removes what it wrote', async function () {
        const mem = new MemoryStorage();
        const ac = new AbortController();
        const watched = new FaultStorage(mem, {
          faults: (call) => {
            if (call.op === 'write' && call.nOp === 3) ac.abort();
            return undefined;
          },
        });
        await h.rejectsCode(() => importSession(Readable.from([good]), watched, { signal: ac.signal }), 'ERR_ABORTED', 'aborted import');
        assert.deepEqual(mem.names(), []);
      });
    });
  });
});
