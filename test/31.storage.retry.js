'use strict';
/*
 * 31.storage.retry.js: what happens when a store fails.
 *
 * classify() sorts errors as the Storage interface says; withRetry()
 * retries exactly the transient ones, times out attempts that never settle
 * and stops at once on an abort; FaultStorage injects each kind of fault it
 * promises and counts what went through; withLease() gives writers on a
 * store without conditional writes mutual exclusion; S3Storage turns a body
 * that breaks off into a transient error. No test measures wall-clock time:
 * they count calls and wait on handshakes.
 */
const assert = require('node:assert/strict');
const h = require('./helpers');
const { MemoryStorage, FaultStorage, classify, withRetry, withLease, S3Storage } = require('../lib/storage');
const { rejectsWith, assertCode, assertAbort, enc, dec } = require('./helpers/storage-conformance');

/* withRetry options for tests: no real waiting unless a test wants it. */
const fast = (extra = {}) => ({ baseMs: 1, capMs: 1, timeoutMs: 60000, ...extra });

function errorWith(props) {
  return Object.assign(new Error('test error'), props);
}

describe('classify()', function () {
  const table = [
    [{ code: 'ERR_CONFLICT' }, 'conflict'],
    [{ code: 'ERR_ACCESS' }, 'access'],
    [{ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }, 'access'],
    [{ $metadata: { httpStatusCode: 403 } }, 'access'],
    [{ name: 'InvalidAccessKeyId' }, 'access'],
    [{ name: 'SignatureDoesNotMatch' }, 'access'],
    [{ name: 'ExpiredToken' }, 'access'],
    [{ name: 'AbortError' }, 'aborted'],
    [{ code: 'ERR_ABORTED' }, 'aborted'],
    [{ name: 'AbortError', $metadata: { httpStatusCode: 503 } }, 'aborted'],
    [{ retryable: true }, 'transient'],
    [{ code: 'ETIMEDOUT' }, 'transient'],
    [{ code: 'ECONNRESET' }, 'transient'],
    [{ code: 'ECONNREFUSED' }, 'transient'],
    [{ code: 'EPIPE' }, 'transient'],
    [{ code: 'EAI_AGAIN' }, 'transient'],
    [{ code: 'ERR_STORAGE_TRANSIENT' }, 'transient'],
    [{ $metadata: { httpStatusCode: 500 } }, 'transient'],
    [{ $metadata: { httpStatusCode: 503 } }, 'transient'],
    [{ statusCode: 502 }, 'transient'],
    [{ statusCode: 429 }, 'transient'],
    [{ name: 'SlowDown' }, 'transient'],
    [{ Code: 'SlowDown' }, 'transient'],
    [{ name: 'Throttling' }, 'transient'],
    [{ name: 'ThrottlingException' }, 'transient'],
    [{ name: 'RequestTimeout' }, 'transient'],
    [{ name: 'InternalError' }, 'transient'],
    [{ name: 'ServiceUnavailable' }, 'transient'],
    [{ name: 'TimeoutError' }, 'transient'],
    [{ name: 'RequestTimeTooSkewed', $metadata: { httpStatusCode: 400 } }, 'permanent'],
    [{ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }, 'permanent'],
    [{ name: 'NoSuchBucket' }, 'permanent'],
    [{ $metadata: { httpStatusCode: 400 } }, 'permanent'],
    [{ code: 'ENOENT' }, 'permanent'],
    [{ code: 'ERR_CHUNK_CORRUPT' }, 'permanent'],
    [{ retryable: false }, 'permanent'],
    [{}, 'permanent'],
  ];
  for (const [props, kind] of table) {
    it(`${JSON.stringify(props)} is ${kind}`, function () {
      assert.equal(classify(errorWith(props)), kind);
    });
  }

  it('non-objects are permanent', function () {
    for (const v of [undefined, null, 'ECONNRESET', 42]) assert.equal(classify(v), 'permanent');
  });

  it('a permanent wrapper takes its cause\'s class (fetch reports a reset as TypeError with cause ECONNRESET)', function () {
    const fetchFailed = new TypeError('fetch failed', { cause: errorWith({ code: 'ECONNRESET' }) });
    assert.equal(classify(fetchFailed), 'transient');
    assert.equal(classify(new Error('wrap', { cause: errorWith({ code: 'ERR_ACCESS' }) })), 'access');
    assert.equal(classify(new Error('wrap', { cause: new Error('plain') })), 'permanent');
    // A class of its own is not overridden by the cause.
    assert.equal(classify(errorWith({ code: 'ERR_CONFLICT', cause: errorWith({ code: 'ECONNRESET' }) })), 'conflict');
    // A cycle of causes ends.
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    a.cause = b;
    assert.equal(classify(a), 'permanent');
  });
});

describe('withRetry() on a FaultStorage', function () {
  for (const kind of ['transient', 'throttle']) {
    for (const failures of [1, 3, 5]) {
      it(`${failures} ${kind} failure(s) with retries = 5 succeed after exactly ${failures + 1} calls`, async function () {
        const mem = new MemoryStorage();
        await mem.write('a', enc('payload'));
        const fs = new FaultStorage(mem, { faults: FaultStorage.failFirst('read', failures, kind) });
        const retried = [];
        const got = await withRetry(({ signal }) => fs.read('a', null, { signal }), fast({ retries: 5, onRetry: (i) => retried.push(i.attempt) }));
        assert.equal(dec(got), 'payload');
        assert.equal(fs.counts.read, failures + 1);
        assert.deepEqual(retried, Array.from({ length: failures }, (_, i) => i + 1));
      });
    }
  }

  it('the S3 flavour of a transient fault (503 SlowDown) is retried too', async function () {
    const fs = new FaultStorage(new MemoryStorage(), { faults: FaultStorage.failFirst('list', 2, 'transient', { s3: true }) });
    assert.deepEqual(await withRetry((o) => fs.list('', o), fast()), []);
    assert.equal(fs.counts.list, 3);
  });

  it('retries + 1 transient failures exhaust the retries: the last error, with attempts', async function () {
    const fs = new FaultStorage(new MemoryStorage(), { faults: FaultStorage.failAll('read', 'transient') });
    const err = await rejectsWith(withRetry((o) => fs.read('a', null, o), fast({ retries: 3 })), (e) => assert.equal(e.code, 'ECONNRESET'));
    assert.equal(err.attempts, 4);
    assert.equal(fs.counts.read, 4);
  });

  it('retries: 0 makes one attempt', async function () {
    const fs = new FaultStorage(new MemoryStorage(), { faults: FaultStorage.failAll('read', 'transient') });
    const err = await rejectsWith(withRetry((o) => fs.read('a', null, o), fast({ retries: 0 })), () => {});
    assert.equal(err.attempts, 1);
    assert.equal(fs.counts.read, 1);
  });

  for (const [kind, check] of [
    ['permanent', (e) => assert.match(e.message, /permanent/)],
    ['access', assertCode('ERR_ACCESS')],
    ['conflict', assertCode('ERR_CONFLICT')],
    ['crash', (e) => assert.match(e.message, /crashed/)],
  ]) {
    it(`a ${kind} failure is not retried: exactly one call`, async function () {
      const fs = new FaultStorage(new MemoryStorage(), { faults: FaultStorage.failAll('*', kind) });
      const err = await rejectsWith(withRetry((o) => fs.write('a', enc('x'), o), fast()), check);
      assert.equal(err.attempts, 1);
      assert.equal(fs.counts.write, 1);
    });
  }

  it('a real compare-and-swap conflict is not retried', async function () {
    const mem = new MemoryStorage();
    await mem.writeManifest(enc('m1'), null);
    const fs = new FaultStorage(mem);
    await rejectsWith(withRetry((o) => fs.writeManifest(enc('m2'), null, o), fast()), assertCode('ERR_CONFLICT'));
    assert.equal(fs.counts.writeManifest, 1);
  });

  it('a call that hangs times out, counts as transient, is retried, and its abort reaches the store', async function () {
    const mem = new MemoryStorage();
    await mem.write('a', enc('late'));
    const fs = new FaultStorage(mem, { faults: FaultStorage.failNth('read', 0, 'hang') });
    const retried = [];
    const got = await withRetry((o) => fs.read('a', null, o), fast({ timeoutMs: 20, onRetry: (i) => retried.push(i.error) }));
    assert.equal(dec(got), 'late');
    assert.equal(fs.counts.read, 2);
    assert.equal(retried.length, 1);
    assert.equal(retried[0].name, 'TimeoutError');
    assert.equal(classify(retried[0]), 'transient');
  });

  it('an attempt that ignores its signal and never settles does not hang the caller; its late result is ignored', async function () {
    let calls = 0;
    let settleFirst;
    const fn = () => {
      calls++;
      if (calls === 1) return new Promise((resolve) => (settleFirst = resolve));
      return Promise.resolve('second');
    };
    assert.equal(await withRetry(fn, fast({ timeoutMs: 20 })), 'second');
    settleFirst('first, too late');
    await new Promise(setImmediate);
    assert.equal(calls, 2);
  });

  it('every attempt times out: the timeout error, with attempts', async function () {
    const fs = new FaultStorage(new MemoryStorage(), { faults: FaultStorage.failAll('read', 'hang') });
    const err = await rejectsWith(withRetry((o) => fs.read('a', null, o), fast({ retries: 2, timeoutMs: 5 })), (e) => assert.equal(e.name, 'TimeoutError'));
    assert.equal(err.attempts, 3);
    assert.equal(fs.counts.read, 3);
  });

  it('an abort during the backoff sleep rejects with AbortError at once, and no further attempt is made', async function () {
    const fs = new FaultStorage(new MemoryStorage(), { faults: FaultStorage.failAll('read', 'transient') });
    const ac = new AbortController();
    // A backoff of ~10^6 ms: if the abort did not cut the sleep short, mocha's timeout would fail this test.
    const p = withRetry((o) => fs.read('a', null, o), { baseMs: 1e6, capMs: 1e6, random: () => 0.999, signal: ac.signal, onRetry: () => setImmediate(() => ac.abort()) });
    await rejectsWith(p, assertAbort);
    assert.equal(fs.counts.read, 1);
  });

  it('an abort during an attempt that ignores its signal rejects with AbortError at once', async function () {
    const ac = new AbortController();
    let started;
    const running = new Promise((r) => (started = r));
    const p = withRetry(() => {
      started();
      return new Promise(() => {}); // never settles, ignores the signal
    }, fast({ signal: ac.signal }));
    await running;
    ac.abort();
    await rejectsWith(p, assertAbort);
  });

  it('the attempt\'s signal fires when the caller aborts, so the store can cancel its request', async function () {
    const fs = new FaultStorage(new MemoryStorage(), { faults: FaultStorage.failAll('read', 'hang') });
    const ac = new AbortController();
    let innerSignal;
    const p = withRetry(({ signal }) => {
      innerSignal = signal;
      return fs.read('a', null, { signal });
    }, fast({ signal: ac.signal }));
    await new Promise(setImmediate);
    assert.equal(innerSignal.aborted, false);
    ac.abort();
    await rejectsWith(p, assertAbort);
    assert.equal(innerSignal.aborted, true);
  });

  it('an already-aborted signal makes no call', async function () {
    let calls = 0;
    await rejectsWith(withRetry(() => calls++, { signal: AbortSignal.abort() }), assertAbort);
    assert.equal(calls, 0);
  });

  it('backoff is capped exponential with full jitter: random() * min(capMs, baseMs * 2^k)', async function () {
    const fs = new FaultStorage(new MemoryStorage(), { faults: FaultStorage.failFirst('read', 6, 'transient') });
    const slept = [];
    await withRetry((o) => fs.read('a', null, o), {
      retries: 6,
      baseMs: 100,
      capMs: 1000,
      random: () => 0.5,
      sleep: async (ms) => void slept.push(ms),
    });
    assert.deepEqual(slept, [50, 100, 200, 400, 500, 500]);
  });

  it('bad options are refused with ERR_INVALID_ARGUMENT', async function () {
    const bad = assertCode('ERR_INVALID_ARGUMENT');
    const fn = async () => 1;
    await rejectsWith(withRetry(null), bad);
    await rejectsWith(withRetry(fn, { retries: -1 }), bad);
    await rejectsWith(withRetry(fn, { retries: 1.5 }), bad);
    await rejectsWith(withRetry(fn, { baseMs: -1 }), bad);
    await rejectsWith(withRetry(fn, { capMs: NaN }), bad);
    await rejectsWith(withRetry(fn, { timeoutMs: 0 }), bad);
    await rejectsWith(withRetry(fn, { signal: {} }), bad);
    await rejectsWith(withRetry(fn, { onRetry: 1 }), bad);
    assert.equal(await withRetry(fn, { timeoutMs: Infinity }), 1);
  });
});

describe('FaultStorage', function () {
  async function seeded() {
    const mem = new MemoryStorage();
    await mem.write('objects/a', enc('0123456789'));
    await mem.writeManifest(enc('{"manifest":true}'), null);
    return mem;
  }

  it('counts every call and byte and logs op, name and range', async function () {
    const fs = new FaultStorage(await seeded());
    await fs.read('objects/a');
    await fs.read('objects/a', { offset: 2, length: 3 });
    await fs.read('missing');
    await fs.write('objects/b', enc('abcd'));
    await fs.delete('objects/b');
    await fs.list('objects/');
    await fs.readManifest();
    await fs.writeManifest(enc('m'), (await fs.readManifest()).version);
    assert.deepEqual(fs.counts, { read: 3, readBytes: 13, write: 1, writeBytes: 4, delete: 1, list: 1, readManifest: 2, writeManifest: 1 });
    assert.deepEqual(fs.log.slice(0, 3), [
      { op: 'read', name: 'objects/a', range: null },
      { op: 'read', name: 'objects/a', range: { offset: 2, length: 3 } },
      { op: 'read', name: 'missing', range: null },
    ]);
    assert.equal(fs.log.length, 9);
    fs.resetCounts();
    assert.equal(fs.counts.read, 0);
    assert.equal(fs.log.length, 0);
    assert.equal(fs.description, 'fault:memory:');
    assert.equal(fs.conditionalWrites, true);
  });

  it('the plan sees n (overall) and nOp (per op) from 0', async function () {
    const seen = [];
    const fs = new FaultStorage(await seeded(), { faults: (call) => void seen.push([call.op, call.n, call.nOp]) });
    await fs.read('objects/a');
    await fs.list('');
    await fs.read('objects/a');
    assert.deepEqual(seen, [['read', 0, 0], ['list', 1, 0], ['read', 2, 1]]);
    assert.equal(fs.calls, 3);
    fs.resetCounts();
    assert.equal(fs.calls, 3, 'resetCounts does not restart the call indexes');
  });

  it('notfound: a read and readManifest answer null, list answers [], without touching the store', async function () {
    const fs = new FaultStorage(await seeded(), { faults: FaultStorage.failAll('*', 'notfound') });
    assert.equal(await fs.read('objects/a'), null);
    assert.equal(await fs.readManifest(), null);
    assert.deepEqual(await fs.list(''), []);
    await fs.delete('objects/a');
    assert.ok(await fs.inner.read('objects/a'), 'the delete did not reach the store');
    await rejectsWith(fs.write('x', enc('x')), assertCode('ERR_INVALID_ARGUMENT'));
  });

  it('truncate: a read returns only the leading bytes, a write stores only them and still succeeds', async function () {
    const mem = await seeded();
    const fs = new FaultStorage(mem, { faults: FaultStorage.failAll('*', 'truncate', { bytes: 4 }) });
    assert.equal(dec(await fs.read('objects/a')), '0123');
    assert.equal(fs.counts.readBytes, 4);
    await fs.write('objects/torn', enc('a whole object'));
    assert.equal(dec(await mem.read('objects/torn')), 'a wh', 'a torn write that reported success');
    assert.equal(fs.counts.writeBytes, 4);
    assert.equal(dec((await fs.readManifest()).data), '{"ma');
    const torn = await withRetry((o) => fs.read('objects/a', null, o), fast());
    assert.equal(dec(torn), '0123', 'withRetry cannot see a torn read: the caller must check');
  });

  it('corrupt: one byte inverted on the way out or in; the store and the caller keep their own bytes', async function () {
    const mem = await seeded();
    const fs = new FaultStorage(mem, { faults: FaultStorage.failAll('*', 'corrupt') });
    const expected = enc('0123456789');
    expected[5] ^= 0xff; // the middle byte
    assert.deepEqual(await fs.read('objects/a'), expected);
    assert.equal(dec(await mem.read('objects/a')), '0123456789', 'the store still has the right bytes');
    const data = enc('abc');
    fs.faults = FaultStorage.failAll('write', 'corrupt', { at: 0 });
    await fs.write('objects/b', data);
    assert.deepEqual(await mem.read('objects/b'), new Uint8Array(['a'.charCodeAt(0) ^ 0xff, 98, 99]), 'bit rot on the way in');
    assert.equal(dec(data), 'abc', "the caller's buffer is untouched");
    fs.faults = FaultStorage.failAll('readManifest', 'corrupt', { at: 1e9 });
    const m = await fs.readManifest();
    assert.equal(m.data[m.data.length - 1], '}'.charCodeAt(0) ^ 0xff, 'an index past the end hits the last byte');
    await rejectsWith((async () => {
      fs.faults = () => ({ kind: 'corrupt', at: -1 });
      await fs.read('objects/a');
    })(), assertCode('ERR_INVALID_ARGUMENT'));
  });

  it("crash 'before' does nothing; crash 'after' does the call and then fails", async function () {
    const mem = new MemoryStorage();
    const before = new FaultStorage(mem, { faults: FaultStorage.failAll('write', 'crash', { after: 'before' }) });
    await rejectsWith(before.write('a', enc('x')), (e) => assert.match(e.message, /before/));
    assert.equal(await mem.read('a'), null);
    const after = new FaultStorage(mem, { faults: FaultStorage.failAll('*', 'crash', { after: 'after' }) });
    await rejectsWith(after.write('a', enc('x')), (e) => assert.match(e.message, /after/));
    assert.equal(dec(await mem.read('a')), 'x');
    await rejectsWith(after.writeManifest(enc('m'), null), (e) => assert.equal(classify(e), 'permanent'));
    assert.equal(dec((await mem.readManifest()).data), 'm', 'the manifest was replaced before the crash');
  });

  it('delay: the call happens after the delay, and an abort cuts the delay short without doing it', async function () {
    const mem = new MemoryStorage();
    const fs = new FaultStorage(mem, { faults: FaultStorage.failFirst('write', 1, 'delay', { ms: 1 }) });
    await fs.write('a', enc('x'));
    assert.equal(dec(await mem.read('a')), 'x');
    fs.faults = FaultStorage.failAll('write', 'delay', { ms: 1e6 });
    const ac = new AbortController();
    const p = fs.write('b', enc('y'), { signal: ac.signal });
    setImmediate(() => ac.abort());
    await rejectsWith(p, assertAbort);
    assert.equal(await mem.read('b'), null);
  });

  it('hang: never settles until the call\'s signal aborts', async function () {
    const fs = new FaultStorage(await seeded(), { faults: FaultStorage.failAll('readManifest', 'hang') });
    const ac = new AbortController();
    let settled = false;
    const p = fs.readManifest({ signal: ac.signal }).finally(() => (settled = true));
    for (let i = 0; i < 5; i++) await new Promise(setImmediate);
    assert.equal(settled, false);
    ac.abort();
    await rejectsWith(p, assertAbort);
  });

  it('failNth, failNamed, combine and randomly pick the calls they say', async function () {
    const calls = (plan, list) => list.map((call) => (plan(call) || { kind: '-' }).kind).join('');
    const seq = [
      { op: 'read', name: 'objects/a', n: 0, nOp: 0 },
      { op: 'write', name: 'objects/b', n: 1, nOp: 0 },
      { op: 'read', name: 'manifests/1', n: 2, nOp: 1 },
      { op: 'read', name: 'objects/c', n: 3, nOp: 2 },
    ];
    const t = (plan) => calls(plan, seq).replace(/transient/g, 'T').replace(/permanent/g, 'P');
    assert.equal(t(FaultStorage.failNth('read', 1, 'transient')), '--T-');
    assert.equal(t(FaultStorage.failNth('*', 1, 'transient')), '-T--');
    assert.equal(t(FaultStorage.failFirst('read', 2, 'transient')), 'T-T-');
    assert.equal(t(FaultStorage.failNamed(/^objects\//, 'transient')), 'TT-T');
    assert.equal(t(FaultStorage.combine(FaultStorage.failNth('*', 0, 'permanent'), FaultStorage.failAll('read', 'transient'))), 'P-TT');
    const a = t(FaultStorage.randomly({ random: h.rng(7), rate: 0.5, kinds: ['transient', 'permanent'] }));
    const b = t(FaultStorage.randomly({ random: h.rng(7), rate: 0.5, kinds: ['transient', 'permanent'] }));
    assert.equal(a, b, 'the same seed gives the same faults');
  });

  it('an unknown fault kind or a bad plan is a typed error, not a crash', async function () {
    const fs = new FaultStorage(new MemoryStorage(), { faults: () => ({ kind: 'gremlins' }) });
    await rejectsWith(fs.read('a'), assertCode('ERR_INVALID_ARGUMENT'));
    fs.faults = () => ({ kind: 'truncate' });
    await rejectsWith(fs.read('a'), assertCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => new FaultStorage(null), (e) => e.code === 'ERR_INVALID_ARGUMENT');
    assert.throws(() => new FaultStorage({ read() {} }), (e) => e.code === 'ERR_INVALID_ARGUMENT');
    assert.throws(() => new FaultStorage(new MemoryStorage(), { faults: 'all' }), (e) => e.code === 'ERR_INVALID_ARGUMENT');
  });
});

describe('withLease() on a store without conditional writes', function () {
  /* A MemoryStorage that says it cannot enforce conditional writes. */
  class NoCasStorage extends MemoryStorage {
    get conditionalWrites() {
      return false;
    }
  }

  /* The lease warnings, kept off the test output (every test makes a new
   * storage, and each warns once); any other warning passes through. */
  const warnings = [];
  let emitWarning;
  before(function () {
    emitWarning = process.emitWarning;
    process.emitWarning = function (msg, opts, ...rest) {
      if (opts && opts.code === 'VECVAULT_NO_CONDITIONAL_WRITES') return void warnings.push({ msg, opts });
      return emitWarning.call(this, msg, opts, ...rest);
    };
  });
  after(function () {
    process.emitWarning = emitWarning;
  });

  it('holds the lease while fn runs and deletes it after; warns once per storage', async function () {
    const s = new NoCasStorage();
    warnings.length = 0;
    const result = await withLease(s, async ({ signal }) => {
      assert.equal(signal.aborted, false);
      const lease = JSON.parse(dec(await s.read('lease')));
      assert.match(lease.owner, /^[0-9a-f]{32}$/);
      assert.ok(lease.expires > Date.now());
      return 'done';
    });
    assert.equal(result, 'done');
    assert.equal(await s.read('lease'), null, 'released');
    await withLease(s, async () => {});
    assert.equal(warnings.length, 1, 'one warning for two leases on the same storage');
    assert.match(warnings[0].msg, /memory:/);
    await withLease(new MemoryStorage(), async () => {});
    assert.equal(warnings.length, 1, 'no warning for a store with conditional writes');
  });

  it('a second writer is refused with ERR_LOCKED while the first holds a live lease', async function () {
    const s = new NoCasStorage();
    let release;
    const held = new Promise((r) => (release = r));
    let entered;
    const inside = new Promise((r) => (entered = r));
    const first = withLease(s, async () => {
      entered();
      await held;
    });
    await inside;
    let ran = false;
    await rejectsWith(withLease(s, async () => (ran = true)), assertCode('ERR_LOCKED'));
    assert.equal(ran, false);
    release();
    await first;
    assert.equal(await withLease(s, async () => 'after'), 'after', 'free again after release');
  });

  it('an expired lease of another owner is taken over; a torn lease counts as none', async function () {
    const s = new NoCasStorage();
    await s.write('lease', enc(JSON.stringify({ owner: 'someone-else', expires: Date.now() - 1 })));
    assert.equal(await withLease(s, async () => 1), 1);
    await s.write('lease', enc('{"owner":"torn'));
    assert.equal(await withLease(s, async () => 2), 2);
  });

  it('fn failing still releases the lease and rejects with fn\'s error', async function () {
    const s = new NoCasStorage();
    await rejectsWith(withLease(s, async () => { throw new Error('boom'); }), (e) => assert.equal(e.message, 'boom'));
    assert.equal(await s.read('lease'), null);
  });

  it('renews the lease every ttl/3 while fn runs', async function () {
    const s = new NoCasStorage();
    const fs = new FaultStorage(s);
    let t = 1_000_000;
    await withLease(
      fs,
      async () => {
        // Wait for two renewals: each is a read of the lease then a write.
        while (fs.counts.write < 3) await new Promise((r) => setTimeout(r, 1));
        const lease = JSON.parse(dec(await s.read('lease')));
        assert.equal(lease.expires, t + 30, 'the renewal wrote a later expiry');
      },
      { ttlMs: 30, now: () => ++t && t },
    );
    assert.ok(fs.counts.write >= 3);
    assert.equal(await s.read('lease'), null);
  });

  it('losing the lease to another writer aborts fn\'s signal and rejects with ERR_LOCKED, leaving their lease', async function () {
    const s = new NoCasStorage();
    const thief = enc(JSON.stringify({ owner: 'thief', expires: Date.now() + 3600e3 }));
    await rejectsWith(
      withLease(
        s,
        async ({ signal }) => {
          await s.write('lease', thief); // another writer took over (e.g. we stalled past the TTL)
          await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
          assert.equal(signal.reason.code, 'ERR_LOCKED');
        },
        { ttlMs: 30 },
      ),
      assertCode('ERR_LOCKED'),
    );
    assert.equal(JSON.parse(dec(await s.read('lease'))).owner, 'thief', 'their lease is left alone');
  });

  it('a transient failure or a hang of a lease call is retried, not fatal', async function () {
    const s = new NoCasStorage();
    const fs = new FaultStorage(s, {
      faults: FaultStorage.combine(
        FaultStorage.failNth('read', 0, 'hang'),
        FaultStorage.failNth('write', 0, 'transient'),
        FaultStorage.failNth('delete', 0, 'throttle'),
      ),
    });
    assert.equal(await withLease(fs, async () => 'ok', { retry: { baseMs: 1, capMs: 1, timeoutMs: 20 } }), 'ok');
    assert.equal(fs.counts.delete, 2, 'the release was retried');
    assert.equal(await s.read('lease'), null);
  });

  it('a permanent failure taking the lease rejects without running fn', async function () {
    const fs = new FaultStorage(new NoCasStorage(), { faults: FaultStorage.failAll('write', 'access') });
    let ran = false;
    await rejectsWith(withLease(fs, async () => (ran = true)), assertCode('ERR_ACCESS'));
    assert.equal(ran, false);
    assert.equal(fs.counts.write, 1);
  });

  it('an abort after the lease was written removes it again', async function () {
    const s = new NoCasStorage();
    const ac = new AbortController();
    // The read back (the second read of the lease) hangs until the abort.
    const fs = new FaultStorage(s, { faults: FaultStorage.failNth('read', 1, 'hang') });
    const p = withLease(fs, async () => assert.fail('fn must not run'), { signal: ac.signal });
    while (fs.counts.read < 2) await new Promise(setImmediate);
    assert.ok(await s.read('lease'), 'the lease was written');
    ac.abort();
    await rejectsWith(p, assertAbort);
    assert.equal(await s.read('lease'), null, 'and removed after the abort');
  });

  it('no lease is written on an already-aborted signal; bad arguments are typed errors', async function () {
    const s = new NoCasStorage();
    await rejectsWith(withLease(s, async () => {}, { signal: AbortSignal.abort() }), assertAbort);
    assert.equal(await s.read('lease'), null);
    await rejectsWith(withLease(null, async () => {}), assertCode('ERR_INVALID_ARGUMENT'));
    await rejectsWith(withLease(s, null), assertCode('ERR_INVALID_ARGUMENT'));
    await rejectsWith(withLease(s, async () => {}, { ttlMs: 0 }), assertCode('ERR_INVALID_ARGUMENT'));
    await rejectsWith(withLease(s, async () => {}, { retry: 5 }), assertCode('ERR_INVALID_ARGUMENT'));
  });
});

describe('S3Storage body transfer (a stub client)', function () {
  /* An async-iterable body of the given chunks, destroyable like a socket stream. */
  function body(chunks) {
    return {
      destroyed: false,
      destroy() {
        this.destroyed = true;
      },
      async *[Symbol.asyncIterator]() {
        for (const c of chunks) yield c;
      },
    };
  }
  const stub = (respond) => ({ sent: [], async send(cmd) { this.sent.push(cmd); return respond(cmd); } });

  it('a body shorter than its Content-Length throws a transient error, never a partial object', async function () {
    const client = stub(() => ({ ContentLength: 10, ETag: '"e"', Body: body([Buffer.from('abcd')]) }));
    const s = new S3Storage({ client, bucket: 'stub-bucket' });
    const err = await rejectsWith(s.read('objects/x'), (e) => assert.equal(classify(e), 'transient'));
    assert.match(err.message, /4 of 10 bytes/);
    await rejectsWith(s.readManifest(), (e) => assert.equal(classify(e), 'transient'));
  });

  it('a body that errors mid-transfer throws a transient error and destroys the stream', async function () {
    const b = {
      destroyed: false,
      destroy() {
        this.destroyed = true;
      },
      async *[Symbol.asyncIterator]() {
        yield Buffer.from('ab');
        throw new Error('socket closed');
      },
    };
    const s = new S3Storage({ client: stub(() => ({ ContentLength: 10, Body: b })), bucket: 'stub-bucket' });
    await rejectsWith(s.read('x'), (e) => assert.equal(classify(e), 'transient'));
    assert.equal(b.destroyed, true);
  });

  it('a signal that fired before the body is read: the body is destroyed unread', async function () {
    const ac = new AbortController();
    let pulled = 0;
    const b = {
      destroyed: false,
      destroy() {
        this.destroyed = true;
      },
      async *[Symbol.asyncIterator]() {
        for (let i = 0; i < 100 && !this.destroyed; i++, pulled++) yield Buffer.alloc(1);
      },
    };
    const client = stub(() => {
      ac.abort(); // the headers are in; the caller gives up
      return { ContentLength: 100, Body: b };
    });
    const s = new S3Storage({ client, bucket: 'stub-bucket' });
    await rejectsWith(s.read('x', null, { signal: ac.signal }), assertAbort);
    assert.equal(b.destroyed, true);
    assert.equal(pulled, 0, 'nothing was read after the abort');
  });

  it('a body longer than its Content-Length is refused too', async function () {
    const s = new S3Storage({ client: stub(() => ({ ContentLength: 2, Body: body([Buffer.from('abcd')]) })), bucket: 'stub-bucket' });
    await rejectsWith(s.read('x'), (e) => assert.equal(classify(e), 'transient'));
  });

  it('a whole body arriving in chunks is joined', async function () {
    const s = new S3Storage({ client: stub(() => ({ ContentLength: 6, Body: body([Buffer.from('ab'), Buffer.from('cd'), Buffer.from('ef')]) })), bucket: 'stub-bucket' });
    assert.equal(dec(await s.read('x')), 'abcdef');
  });

  it('the request for a range is bytes=offset-(offset+length-1); a 200 answer with the whole object is cut to the range', async function () {
    const client = stub(() => ({ ContentLength: 10, Body: body([Buffer.from('0123456789')]) }));
    const s = new S3Storage({ client, bucket: 'stub-bucket', prefix: 'p/' });
    assert.equal(dec(await s.read('x', { offset: 3, length: 4 })), '3456');
    assert.equal(client.sent[0].input.Range, 'bytes=3-6');
    assert.equal(client.sent[0].input.Key, 'p/x');
  });

  it('a Content-Range that does not start at the offset is an error', async function () {
    const s = new S3Storage({ client: stub(() => ({ ContentLength: 2, ContentRange: 'bytes 0-1/10', Body: body([Buffer.from('01')]) })), bucket: 'stub-bucket' });
    await rejectsWith(s.read('x', { offset: 5, length: 2 }), (e) => assert.match(e.message, /Content-Range/));
  });

  it('412 PreconditionFailed and 409 ConditionalRequestConflict on the manifest are ERR_CONFLICT; 403 is ERR_ACCESS', async function () {
    const fail = (props) => stub(() => {
      throw Object.assign(new Error('refused'), props);
    });
    const mk = (props) => new S3Storage({ client: fail(props), bucket: 'stub-bucket' });
    await rejectsWith(mk({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } }).writeManifest(enc('m'), '"v"'), assertCode('ERR_CONFLICT'));
    await rejectsWith(mk({ name: 'ConditionalRequestConflict', $metadata: { httpStatusCode: 409 } }).writeManifest(enc('m'), null), assertCode('ERR_CONFLICT'));
    await rejectsWith(mk({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }).read('x'), assertCode('ERR_ACCESS'));
    await rejectsWith(mk({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } }).list(''), assertCode('ERR_ACCESS'));
    const slow = await rejectsWith(mk({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } }).write('x', enc('x')), () => {});
    assert.equal(classify(slow), 'transient', 'a 503 stays as the SDK threw it, and is retried');
  });

  it('a store that breaks the protocol gets an error, not a wrong answer', async function () {
    const answer = (res) => new S3Storage({ client: stub(() => res), bucket: 'stub-bucket', prefix: 'p/' });
    await rejectsWith(answer({ ContentLength: 1, Body: body([Buffer.from('m')]) }).readManifest(), (e) => assert.match(e.message, /no ETag/));
    await rejectsWith(answer({}).writeManifest(enc('m'), null), (e) => assert.match(e.message, /no ETag/));
    await rejectsWith(answer({ Contents: [{ Key: 'elsewhere/x', Size: 1 }] }).list(''), (e) => assert.match(e.message, /outside the prefix/));
    await rejectsWith(answer({ Contents: [{ Key: 42 }] }).list(''), (e) => assert.match(e.message, /outside the prefix/));
    await rejectsWith(answer({ IsTruncated: true }).list(''), (e) => assert.match(e.message, /continuation token/));
    await rejectsWith(answer({ ContentLength: 3, Body: 'not a stream' }).read('x'), (e) => assert.match(e.message, /unknown kind/));
  });

  it('a listing that claims more pages but repeats its token is an error, not an endless loop', async function () {
    const client = stub(() => ({ Contents: [{ Key: 'k', Size: 1 }], IsTruncated: true, NextContinuationToken: 'same' }));
    const s = new S3Storage({ client, bucket: 'stub-bucket' });
    await rejectsWith(s.list(''), (e) => assert.match(e.message, /continuation token/));
    assert.equal(client.sent.length, 2);
  });
});
