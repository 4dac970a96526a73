'use strict';
/*
 * 30.storage.conformance.js: the JavaScript storages against the one
 * Storage conformance suite (test/helpers/storage-conformance.js):
 * MemoryStorage, S3Storage on a real S3 API server (s3rver, started here),
 * and FaultStorage around a MemoryStorage with no faults planned. Then what
 * is particular to each: S3Storage's options and error mapping, and
 * MemoryStorage's copies and turn-taking.
 */
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const execFile = require('node:util').promisify(require('node:child_process').execFile);
const { MemoryStorage, S3Storage, FaultStorage } = require('../lib/storage');
const { conformance, rejectsWith, assertCode, enc, dec } = require('./helpers/storage-conformance');
const { startS3, recordRequests } = require('./helpers/s3');

const ROOT = path.resolve(__dirname, '..');

conformance('MemoryStorage', () => new MemoryStorage());

conformance('FaultStorage(MemoryStorage) without faults', () => new FaultStorage(new MemoryStorage()));

describe('S3Storage on s3rver', function () {
  const BUCKET = 'vecvault-conformance';
  let s3;
  let recorder;
  let n = 0;
  before(async function () {
    s3 = await startS3();
    await s3.makeBucket(BUCKET);
    recorder = recordRequests(s3.client, BUCKET);
  });
  after(async function () {
    if (recorder) recorder.stop();
    if (s3) await s3.close();
  });

  // A fresh prefix per test: an empty store without a new bucket.
  const makeStorage = () => new S3Storage({ client: s3.client, bucket: BUCKET, prefix: `t${++n}/sub/` });
  const sentPreconditions = (storage) =>
    recorder.requests
      .filter((r) => r.method === 'PUT' && r.key === `${storage.prefix}manifest.json`)
      .map((r) => ({ ifMatch: r.headers['if-match'], ifNoneMatch: r.headers['if-none-match'] }));

  conformance('S3Storage on s3rver', makeStorage, { manyObjects: 1100, preconditions: 'sent', sentPreconditions });

  describe('S3Storage specifics', function () {
    it('description is s3://bucket/prefix and names are relative to the prefix', async function () {
      const a = new S3Storage({ client: s3.client, bucket: BUCKET, prefix: 'rel/a/' });
      const b = new S3Storage({ client: s3.client, bucket: BUCKET, prefix: 'rel/' });
      assert.equal(a.description, `s3://${BUCKET}/rel/a/`);
      assert.equal(a.conditionalWrites, true);
      await a.write('objects/x', enc('in a'));
      assert.deepEqual((await b.list('')).map((o) => o.name), ['a/objects/x']);
      assert.equal(dec(await b.read('a/objects/x')), 'in a');
      assert.deepEqual((await a.list('')).map((o) => o.name), ['objects/x']);
    });

    it('a zero-length range asks only whether the object exists (HEAD), never for its bytes', async function () {
      const s = new S3Storage({ client: s3.client, bucket: BUCKET, prefix: 'head/' });
      await s.write('objects/a', new Uint8Array(1 << 16));
      const before = recorder.requests.length;
      assert.deepEqual(await s.read('objects/a', { offset: 10, length: 0 }), new Uint8Array(0));
      assert.equal(await s.read('objects/missing', { offset: 0, length: 0 }), null);
      assert.deepEqual(recorder.requests.slice(before).map((r) => r.method), ['HEAD', 'HEAD']);
    });

    it('a child process reaches the same server through s3Client(endpoint)', async function () {
      // Asynchronously: the server answers from this process's event loop.
      const script = `
        const { s3Client } = require('./test/helpers/s3');
        const { S3Storage } = require('vecvault/s3');
        const s = new S3Storage({ client: s3Client(process.argv[1]), bucket: '${BUCKET}', prefix: 'child/' });
        s.write('objects/x', new Uint8Array([1, 2, 3])).then(() => console.log('written'));
      `;
      const { stdout } = await execFile(process.execPath, ['-e', script, s3.endpoint], { cwd: ROOT });
      assert.equal(stdout.trim(), 'written');
      const s = new S3Storage({ client: s3.client, bucket: BUCKET, prefix: 'child/' });
      assert.deepEqual(await s.read('objects/x'), new Uint8Array([1, 2, 3]));
    });

    it('an empty prefix keeps names as keys', async function () {
      const root = new S3Storage({ client: s3.client, bucket: BUCKET });
      assert.equal(root.description, `s3://${BUCKET}/`);
      await root.write('top-level-object', enc('x'));
      assert.equal(dec(await new S3Storage({ client: s3.client, bucket: BUCKET, prefix: '' }).read('top-level-object')), 'x');
      await root.delete('top-level-object');
    });

    it('bad options are refused with ERR_INVALID_ARGUMENT', function () {
      const bad = (opts) => assert.throws(() => new S3Storage(opts), (e) => e.code === 'ERR_INVALID_ARGUMENT');
      bad(undefined);
      bad({ bucket: BUCKET });
      bad({ client: {}, bucket: BUCKET });
      bad({ client: s3.client });
      bad({ client: s3.client, bucket: '' });
      bad({ client: s3.client, bucket: 'a/b' });
      bad({ client: s3.client, bucket: BUCKET, prefix: 'no-slash' });
      bad({ client: s3.client, bucket: BUCKET, prefix: '/abs/' });
      bad({ client: s3.client, bucket: BUCKET, prefix: 'a//b/' });
      bad({ client: s3.client, bucket: BUCKET, prefix: 7 });
      bad({ client: s3.client, bucket: BUCKET, conditionalWrites: 'yes' });
    });

    it('a missing bucket is a permanent error, not null', async function () {
      const s = new S3Storage({ client: s3.client, bucket: 'no-such-bucket-here' });
      await assert.rejects(s.read('x'), (e) => e.name === 'NoSuchBucket');
      await assert.rejects(s.readManifest(), (e) => e.name === 'NoSuchBucket');
      await assert.rejects(s.list(''), (e) => e.name === 'NoSuchBucket');
    });

    it('wrong credentials surface as ERR_ACCESS', async function () {
      // s3rver checks the access key id (it does not check signatures).
      const client = s3.makeClient({ credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'not-the-secret' } });
      const s = new S3Storage({ client, bucket: BUCKET, prefix: 'access/' });
      const err = await rejectsWith(s.write('x', enc('x')), assertCode('ERR_ACCESS'));
      assert.ok(!err.message.includes('not-the-secret'), 'the message carries no secret');
      await rejectsWith(s.read('x'), assertCode('ERR_ACCESS'));
    });

    it('conditionalWrites: false sends no conditions but compares the ETag before the PUT', async function () {
      const s = new S3Storage({ client: s3.client, bucket: BUCKET, prefix: 'nocond/', conditionalWrites: false });
      assert.equal(s.conditionalWrites, false);
      const before = recorder.requests.length;
      const v1 = (await s.writeManifest(enc('gen 1'), null)).version;
      await rejectsWith(s.writeManifest(enc('x'), null), assertCode('ERR_CONFLICT'));
      const v2 = (await s.writeManifest(enc('gen 2'), v1)).version;
      await rejectsWith(s.writeManifest(enc('stale'), v1), assertCode('ERR_CONFLICT'));
      assert.equal(dec((await s.readManifest()).data), 'gen 2');
      assert.equal((await s.readManifest()).version, v2);
      for (const r of recorder.requests.slice(before)) {
        assert.equal(r.headers['if-match'], undefined);
        assert.equal(r.headers['if-none-match'], undefined);
      }
    });

    it('an abort while a request is in flight rejects with AbortError', async function () {
      const s = new S3Storage({ client: s3.client, bucket: BUCKET, prefix: 'abort/' });
      const ac = new AbortController();
      // Abort from inside the request pipeline: the request has started.
      const stop = (() => {
        const name = 'vecvault-abort-in-flight';
        s3.client.middlewareStack.add(
          (next) => async (args) => {
            ac.abort();
            return next(args);
          },
          { step: 'finalizeRequest', name },
        );
        return () => s3.client.middlewareStack.remove(name);
      })();
      try {
        await assert.rejects(s.write('x', enc('x'), { signal: ac.signal }), (e) => e.name === 'AbortError' && e.code === 'ERR_ABORTED');
      } finally {
        stop();
      }
    });
  });
});

describe('S3Storage on s3rver: an abort while the body streams', function () {
  const BUCKET = 'vecvault-abort-body';
  let s3;
  before(async function () {
    s3 = await startS3();
    await s3.makeBucket(BUCKET);
  });
  after(async function () {
    if (s3) await s3.close();
  });

  it('stops reading the body and rejects with AbortError', async function () {
    const s = new S3Storage({ client: s3.client, bucket: BUCKET });
    const big = new Uint8Array(4 << 20).fill(7);
    await s.write('big', big);
    const ac = new AbortController();
    let bodyLeft = null;
    const name = 'vecvault-abort-after-headers';
    // Abort once the response headers are in and before the body is read.
    s3.client.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        if (args.request.method === 'GET') {
          bodyLeft = out.response.body;
          ac.abort();
        }
        return out;
      },
      { step: 'finalizeRequest', name },
    );
    try {
      await assert.rejects(s.read('big', null, { signal: ac.signal }), (e) => e.name === 'AbortError' && e.code === 'ERR_ABORTED');
    } finally {
      s3.client.middlewareStack.remove(name);
    }
    assert.ok(bodyLeft, 'the abort came after the headers');
    assert.equal(bodyLeft.destroyed, true, 'the body stream was destroyed, not read to the end');
    assert.equal((await s.read('big')).length, big.length, 'the client still works');
  });
});

describe('S3Storage without @aws-sdk/client-s3', function () {
  it('the constructor says to install it, with ERR_INVALID_ARGUMENT', function () {
    // A child process whose require() cannot find the SDK, as for a user who did not install it.
    const script = `
      const Module = require('node:module');
      const load = Module._load;
      Module._load = function (req, ...rest) {
        if (req === '@aws-sdk/client-s3') { const e = new Error("Cannot find module '@aws-sdk/client-s3'"); e.code = 'MODULE_NOT_FOUND'; throw e; }
        return load.call(this, req, ...rest);
      };
      const { S3Storage } = require('vecvault/s3');
      try { new S3Storage({ client: { send() {} }, bucket: 'b-1' }); console.log('no error'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
    `;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim());
    assert.equal(out.code, 'ERR_INVALID_ARGUMENT');
    assert.match(out.message, /npm install @aws-sdk\/client-s3/);
  });
});

describe('MemoryStorage specifics', function () {
  it('completes every call on a later turn, never synchronously', async function () {
    const s = new MemoryStorage();
    let done = false;
    const p = s.write('a', enc('x')).then(() => {
      done = true;
    });
    await Promise.resolve();
    await Promise.resolve();
    assert.equal(done, false, 'not settled within microtasks of the call');
    await p;
    assert.equal(done, true);
  });

  it('an abort after the call but before its turn means the write did not happen', async function () {
    const s = new MemoryStorage();
    const ac = new AbortController();
    const p = s.write('a', enc('x'), { signal: ac.signal });
    ac.abort();
    await assert.rejects(p, (e) => e.name === 'AbortError');
    assert.equal(await s.read('a'), null);
  });

  it('versions never repeat, even for the same bytes, and the helpers show the contents', async function () {
    const s = new MemoryStorage();
    const v1 = (await s.writeManifest(enc('same'), null)).version;
    const v2 = (await s.writeManifest(enc('same'), v1)).version;
    assert.notEqual(v1, v2);
    await rejectsWith(s.writeManifest(enc('same'), v1), assertCode('ERR_CONFLICT'));
    await s.write('objects/a', enc('A'));
    assert.equal(s.objectCount, 2);
    assert.deepEqual(s.names(), ['manifest.json', 'objects/a']);
    const snap = s.snapshot();
    snap.get('objects/a')[0] = 0;
    assert.equal(dec(await s.read('objects/a')), 'A', 'a snapshot is a copy');
  });
});
