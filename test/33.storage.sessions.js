'use strict';
// Sessions on every storage: one suite, written once, run against a
// directory path (the engine's own POSIX calls), MemoryStorage, DirStorage
// (the same directory layout through the JavaScript bridge), FaultStorage
// over MemoryStorage (no faults: counts only) and S3Storage on s3rver.
// Then what only a store with an enforced compare-and-swap can show
// (overlapping writers), fault injection at every request of a save, a
// load and a lazy search, hostile answers, and the rules that keep a
// synchronous call from waiting for the JS thread it runs on.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { VectorDB, MemoryStorage, DirStorage, FaultStorage } = require('..');
const { S3Storage } = require('../s3');
const { startS3 } = require('./helpers/s3');
const { rng } = require('./helpers');

const DIM = 16;
const KEY = Buffer.alloc(32, 9);
const FAST_RETRY = { retries: 4, baseMs: 1, capMs: 2, timeoutMs: 10000 };

function vectors(n, seed) {
  const r = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: DIM }, () => r() * 2 - 1));
}

function build(n, seed, extra = {}) {
  const db = new VectorDB({ dimension: DIM, metric: 'l2', chunkSize: 32, key: KEY, ...extra });
  vectors(n, seed).forEach((v, i) => db.add(`id${i}`, v, { i, tag: `t${i % 3}` }));
  return db;
}

async function ids(db, q, k = 10) {
  return (await db.searchAsync(q, k)).map((h) => h.id);
}

function tmpdir(t) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `vv-st-${t}-`));
}

/** Objects no retained manifest (current or history copy) references. */
async function orphans(storage) {
  const all = await storage.list('');
  const refs = new Set();
  const addRefs = (bytes) => {
    const text = Buffer.from(bytes).toString('utf8');
    for (const m of text.matchAll(/"name":"([0-9a-f]{64})"/g)) refs.add(m[1]);
  };
  const cur = await storage.readManifest();
  if (cur) addRefs(cur.data);
  for (const o of all) if (o.name.startsWith('manifests/')) addRefs(await storage.read(o.name));
  return all.filter((o) => o.name.startsWith('objects/') && !refs.has(o.name.slice(8))).map((o) => o.name);
}

/** A plain Storage that forwards to `inner`, with some methods replaced. */
function delegate(inner, overrides) {
  const out = { description: 'wrapped:' };
  for (const m of ['read', 'write', 'delete', 'list', 'readManifest', 'writeManifest']) out[m] = inner[m].bind(inner);
  return Object.assign(out, overrides);
}

const backends = [
  { name: 'a directory path', make: () => tmpdir('dir') },
  { name: 'MemoryStorage', make: () => new MemoryStorage() },
  { name: 'DirStorage (JavaScript)', make: () => new DirStorage(tmpdir('js')) },
  { name: 'FaultStorage over MemoryStorage', make: () => new FaultStorage(new MemoryStorage()) },
  { name: 'S3Storage on s3rver', s3: true },
];

describe('33 sessions on every storage', function () {
  let s3;
  let bucketN = 0;
  before(async () => {
    s3 = await startS3();
  });
  after(async () => {
    if (s3) await s3.close();
  });
  async function make(b) {
    if (!b.s3) return b.make();
    const bucket = `vv-sessions-${++bucketN}`;
    await s3.makeBucket(bucket);
    return new S3Storage({ client: s3.client, bucket, prefix: 'tenants/42/' });
  }

  for (const b of backends) {
    describe(b.name, () => {
      it('saves, loads eagerly and lazily, saves incrementally, and refreshes a reader', async () => {
        const target = await make(b);
        const db = build(300, 1);
        const q = vectors(5, 99);
        const want = await Promise.all(q.map((v) => ids(db, v)));
        const s1 = await db.save(target, { gcGraceMs: 0 });
        assert.equal(s1.generation, 1);
        assert.equal((await VectorDB.inspect(target)).totalVectors, 300);

        const eager = await VectorDB.load(target, { key: KEY, lazy: false });
        const lazy = await VectorDB.load(target, { key: KEY, cacheSizeMb: 1 });
        assert.equal(lazy.loadStats.lazy, true);
        for (let i = 0; i < q.length; i++) {
          assert.deepEqual(await ids(eager, q[i]), want[i]);
          assert.deepEqual(await ids(lazy, q[i]), want[i]);
        }
        assert.deepEqual((await lazy.getAsync('id7')).metadata, { i: 7, tag: 't1' });

        // The writer publishes generation 2: only what changed is written.
        vectors(20, 2).forEach((v, i) => db.add(`new${i}`, v, { i }));
        db.delete('id0');
        const s2 = await db.save(target, { gcGraceMs: 0 });
        assert.equal(s2.generation, 2);
        assert.equal(s2.full, false);
        assert.ok(s2.chunksReused > 0, 'unchanged chunks are not rewritten');

        // The reader keeps serving generation 1 until it refreshes.
        assert.equal(lazy.size, 300);
        assert.ok(await lazy.getAsync('id0'));
        const cachedBefore = lazy.cacheStats().entries;
        assert.ok(cachedBefore > 0);
        const r = await lazy.refresh();
        assert.deepEqual(r, { generation: 2, changed: true });
        assert.equal(lazy.size, 319);
        assert.equal(await lazy.getAsync('id0'), null);
        // Cached pages of the chunks both generations share came along.
        assert.ok(lazy.cacheStats().entries > 0, 'refresh keeps the still-valid cached pages');
        assert.deepEqual(await lazy.refresh(), { generation: 2, changed: false });
        assert.deepEqual(await ids(lazy, q[0]), await ids(db, q[0]));
        eager.close();
        lazy.close();
        db.close();
      });

      it('keeps every object a retained generation references, and collects the rest', async () => {
        const target = await make(b);
        const db = build(100, 3);
        for (let g = 1; g <= 5; g++) {
          db.add(`g${g}`, vectors(1, 100 + g)[0]);
          await db.save(target, { gcGraceMs: 0 });
        }
        if (typeof target === 'string') return; // the directory's GC has its own tests (test/c/test_gc.c)
        assert.deepEqual(await orphans(target), []);
        const hist = (await target.list('manifests/')).map((o) => o.name).sort();
        assert.deepEqual(hist, [3, 4, 5].map((g) => `manifests/${String(g).padStart(20, '0')}.json`));
        db.close();
      });
    });
  }

  describe('readers and retention', () => {
    it('a reader may lag 2 generations; 3 behind, its objects may go (ERR_CHUNK_MISSING) and refresh() recovers', async () => {
      const mem = new MemoryStorage();
      const w = build(96, 51);
      await w.save(mem, { gcGraceMs: 0 });
      // A cache far smaller than the session: searches keep reading.
      const reader = await VectorDB.load(mem, { key: KEY, cacheSizeMb: 0.004 });
      const q = vectors(1, 52)[0];
      // Each generation replaces every vector, so no chunk outlives it.
      let gen = 1;
      const next = async () => {
        for (let i = 0; i < 96; i++) w.delete(gen === 1 ? `id${i}` : `g${gen - 1}-${i}`);
        vectors(96, 60 + gen).forEach((v, i) => w.add(`g${gen}-${i}`, v));
        gen++;
        await w.save(mem, { gcGraceMs: 0 });
      };
      await next();
      await next(); // the reader is 2 behind: everything it reads is kept
      const hits = await reader.searchAsync(q, 5);
      assert.equal(hits.length, 5);
      assert.ok(hits.every((h) => h.id.startsWith('id')));
      await next(); // 3 behind: generation 1's objects are collected
      const small = await VectorDB.load(mem, { key: KEY }); // (a fresh reader is fine)
      assert.equal(small.size, 96);
      small.close();
      await assert.rejects(reader.searchAsync(vectors(1, 70)[0], 10), { code: 'ERR_CHUNK_MISSING' });
      assert.deepEqual(await reader.refresh(), { generation: 4, changed: true });
      assert.ok((await reader.searchAsync(q, 5)).every((h) => h.id.startsWith('g3-')));
      reader.close();
      w.close();
    });
  });

  describe('refresh()', () => {
    it('refuses to drop changes the database has not saved, and reads nothing', async () => {
      const mem = new MemoryStorage();
      const w = build(50, 81);
      await w.save(mem);
      const r = await VectorDB.load(mem, { key: KEY, lazy: false });
      w.add('w-new', vectors(1, 82)[0]);
      await w.save(mem);
      r.add('r-local', vectors(1, 83)[0]);
      await assert.rejects(r.refresh(), (e) => e.code === 'ERR_INVALID_ARGUMENT' && /not saved/.test(e.message));
      assert.ok(r.has('r-local'));
      assert.ok(!r.has('w-new'));
      assert.equal(r.loadStats.generation, 1);
      // Once nothing is unsaved, a refresh follows the store (here: r's own save made generation 3).
      await r.save(mem);
      assert.deepEqual(await r.refresh(), { generation: 3, changed: false });
      [w, r].forEach((d) => d.close());
    });

    it('a lazy reader refreshed generation after generation answers exactly as a fresh load of each, reading only the new index', async () => {
      const r0 = rng(91);
      for (const storage of [new MemoryStorage(), tmpdir('refresh')]) {
        const w = build(300, 92);
        await w.save(storage, { gcGraceMs: 0 });
        const reader = await VectorDB.load(storage, { key: KEY, cacheSizeMb: 0.05 });
        const q = vectors(6, 93);
        let next = 1000;
        let inPlace = 0;
        for (let g = 2; g <= 9; g++) {
          // Adds, deletes, re-adds (upserts) and metadata changes: deltas, and now and then a new base.
          const ops = g % 4 === 0 ? 60 : 6;
          for (let i = 0; i < ops; i++) {
            const op = r0();
            const id = `id${Math.floor(r0() * 300)}`;
            if (op < 0.4) w.add(`n${next++}`, vectors(1, next)[0], { g });
            else if (op < 0.7) w.delete(id);
            else w.add(id, vectors(1, 5000 + next++)[0], { g, upsert: true });
          }
          await w.save(storage, { gcGraceMs: 0 });
          const fresh = await VectorDB.load(storage, { key: KEY, cacheSizeMb: 0.05 });
          assert.deepEqual(await reader.refresh(), { generation: g, changed: true });
          assert.equal(reader.size, fresh.size);
          assert.equal(reader.loadStats.generation, g);
          assert.ok(reader.loadStats.bytesRead <= fresh.loadStats.bytesRead);
          inPlace += reader.loadStats.bytesRead < fresh.loadStats.bytesRead; // only the manifest and the new deltas
          for (const v of q) {
            const a = await reader.searchAsync(v, 10, { includeVector: true });
            const b = await fresh.searchAsync(v, 10, { includeVector: true });
            assert.deepEqual(a, b);
          }
          for (const id of ['id1', 'id150', 'id299', `n${next - 1}`]) assert.deepEqual(await reader.getAsync(id), await fresh.getAsync(id));
          fresh.close();
        }
        assert.ok(inPlace >= 3, `${inPlace} refreshes read only the new delta segments`);
        reader.close();
        w.close();
      }
    });

    it('refuses writes while it runs (they would be lost with the generation it replaces)', async () => {
      const mem = new MemoryStorage();
      const w = build(60, 85);
      await w.save(mem);
      let armed = false;
      let held = 0;
      let release;
      const gate = new Promise((r) => (release = r));
      const st = delegate(mem, {
        read: async (n, range, o) => {
          if (armed && n.startsWith('objects/')) {
            held++;
            await gate;
          }
          return mem.read(n, range, o);
        },
      });
      const r = await VectorDB.load(st, { key: KEY, lazy: false });
      w.add('w-new', vectors(1, 86)[0]);
      await w.save(mem);
      armed = true;
      const pending = r.refresh();
      while (held === 0) await new Promise((res) => setImmediate(res));
      assert.throws(() => r.add('late', vectors(1, 87)[0]), { code: 'ERR_LOCKED' });
      await assert.rejects(r.addBatchAsync([{ id: 'late', vector: vectors(1, 87)[0] }]), { code: 'ERR_LOCKED' });
      await assert.rejects(r.refresh(), { code: 'ERR_LOCKED' });
      release();
      assert.deepEqual(await pending, { generation: 2, changed: true });
      r.add('late', vectors(1, 87)[0]);
      assert.ok(r.has('late') && r.has('w-new'));
      [w, r].forEach((d) => d.close());
    });

    it('needs a database that was loaded or saved', async () => {
      await assert.rejects(build(5, 84).refresh(), { code: 'ERR_INVALID_ARGUMENT' });
    });
  });

  describe('what a store with an enforced compare-and-swap shows', () => {
    /** A store whose manifest writes wait until `n` of them have arrived. */
    function gated(inner, n) {
      const waiting = [];
      return delegate(inner, {
        writeManifest: (data, expected, o) =>
          new Promise((resolve, reject) => {
            waiting.push(() => inner.writeManifest(data, expected, o).then(resolve, reject));
            if (waiting.length === n) for (const go of waiting.splice(0)) go();
          }),
      });
    }

    for (const first of [false, true]) {
      it(`two overlapping writers ${first ? 'over a generation' : 'into an empty store'}: exactly one commits, the other gets ERR_CONFLICT`, async () => {
        const mem = new MemoryStorage();
        if (first) await build(50, 5).save(mem);
        const st = gated(mem, 2);
        const a = build(80, 6);
        const b = build(90, 7);
        const out = await Promise.allSettled([a.save(st), b.save(st)]);
        const won = out.filter((o) => o.status === 'fulfilled');
        const lost = out.filter((o) => o.status === 'rejected');
        assert.equal(won.length, 1);
        assert.equal(lost.length, 1);
        assert.equal(lost[0].reason.code, 'ERR_CONFLICT');
        const winner = out[0].status === 'fulfilled' ? a : b;
        const back = await VectorDB.load(mem, { key: KEY });
        assert.equal(back.size, winner.size);
        assert.deepEqual(await ids(back, vectors(1, 8)[0]), await ids(winner, vectors(1, 8)[0]));
        // The loser's uploads are garbage: kept within the grace period
        // (they could be a live writer's), collected by a later save after it.
        const loser = winner === a ? b : a;
        assert.ok((await orphans(mem)).length > 0);
        await loser.save(mem);
        assert.ok((await orphans(mem)).length > 0, 'young orphans survive the default grace period');
        await loser.save(mem, { gcGraceMs: 0 });
        assert.deepEqual(await orphans(mem), []);
        const again = await VectorDB.load(mem, { key: KEY });
        assert.equal(again.size, loser.size);
        for (const d of [a, b, back, again]) d.close();
      });
    }

    it('a lost compare-and-swap after a timed-out attempt that did land is not a conflict', async () => {
      const mem = new MemoryStorage();
      let first = true;
      const st = delegate(mem, {
        async writeManifest(data, expected, o) {
          const r = await mem.writeManifest(data, expected, o);
          if (first) {
            first = false; // it landed, but the answer was lost
            const err = new Error('socket hang up');
            err.code = 'ECONNRESET';
            throw err;
          }
          return r;
        },
      });
      const db = build(40, 9);
      const s = await db.save(st, { retry: FAST_RETRY });
      assert.equal(s.generation, 1);
      assert.equal((await VectorDB.load(mem, { key: KEY })).size, 40);
      db.close();
    });
  });

  describe('a manifest write that times out and lands late', () => {
    it('is this writer\'s commit, not a conflict with itself', async () => {
      const mem = new MemoryStorage();
      let calls = 0;
      let landLate;
      const st = delegate(mem, {
        writeManifest(data, expected, o) {
          if (++calls === 1) {
            // The first attempt outlives its timeout, then lands once the retry is under way.
            return new Promise((resolve, reject) => {
              landLate = () => mem.writeManifest(data, expected).then(resolve, reject);
            });
          }
          if (landLate) {
            const go = landLate;
            landLate = null;
            return go().then(() => mem.writeManifest(data, expected, o));
          }
          return mem.writeManifest(data, expected, o);
        },
      });
      const db = build(40, 99);
      const s = await db.save(st, { retry: { retries: 3, baseMs: 1, capMs: 2, timeoutMs: 50 } });
      assert.equal(s.generation, 1);
      assert.ok(calls >= 2);
      const back = await VectorDB.load(mem, { key: KEY });
      assert.equal(back.size, 40);
      [db, back].forEach((d) => d.close());
    });
  });

  describe('faults at every request', () => {
    const kinds = [
      { kind: 'transient', ok: true },
      { kind: 'throttle', ok: true },
      { kind: 'permanent', code: 'ERR_IO' },
      { kind: 'access', code: 'ERR_ACCESS' },
    ];

    /** How many calls `fn(storage)` makes on a fresh copy of `base`. */
    async function countCalls(base, fn) {
      const f = new FaultStorage(base());
      await fn(f);
      return f.counts.read + f.counts.write + f.counts.delete + f.counts.list + f.counts.readManifest + f.counts.writeManifest;
    }

    it('a save: each failure is retried to success, or fails with its code leaving the previous generation whole', async function () {
      this.timeout(300000);
      const g1 = build(120, 11);
      const mem0 = new MemoryStorage();
      await g1.save(mem0);
      const snapshot = async () => {
        const m = new MemoryStorage();
        await VectorDB.copy(mem0, m);
        return m;
      };
      const change = (db) => {
        vectors(10, 12).forEach((v, i) => db.add(`c${i}`, v));
        db.delete('id3');
      };
      const probe = await snapshot();
      const db0 = await VectorDB.load(probe, { key: KEY, lazy: false });
      change(db0);
      const total = await countCalls(() => probe, async (f) => db0.save(f, { gcGraceMs: 0 }));
      db0.close();
      assert.ok(total > 6, `a save makes ${total} requests`);
      for (let n = 0; n < total; n++) {
        const k = kinds[n % kinds.length];
        const mem = await snapshot();
        const db = await VectorDB.load(mem, { key: KEY, lazy: false });
        change(db);
        const f = new FaultStorage(mem, { faults: (c) => (c.n === n ? { kind: k.kind } : undefined) });
        let err = null;
        try {
          await db.save(f, { gcGraceMs: 0, retry: FAST_RETRY });
        } catch (e) {
          err = e;
        }
        const back = await VectorDB.load(mem, { key: KEY, lazy: false });
        if (k.ok) {
          assert.equal(err, null, `call ${n} (${k.kind}): ${err && err.message}`);
          assert.equal(back.size, 129);
        } else if (err) {
          assert.equal(err.code, k.code, `call ${n}: ${err.message}`);
          assert.equal(back.loadStats.generation, 1, `call ${n}: the previous generation stays`);
          assert.equal(back.size, 120);
          assert.ok(back.has('id3'));
        } else {
          // The failure came after the commit (the history copy, the GC).
          assert.equal(back.loadStats.generation, 2);
          assert.equal(back.size, 129);
        }
        back.close();
        db.close();
      }
    });

    it('a load and a lazy search: each failure is retried to success, or fails with its code', async function () {
      this.timeout(120000);
      const mem = new MemoryStorage();
      const src = build(200, 13);
      await src.save(mem);
      const q = vectors(1, 14)[0];
      const want = await ids(src, q);
      const run = async (f) => {
        const db = await VectorDB.load(f, { key: KEY, retry: FAST_RETRY, cacheSizeMb: 1 });
        try {
          return await ids(db, q);
        } finally {
          db.close();
        }
      };
      const total = await countCalls(() => mem, run);
      for (let n = 0; n < total; n++) {
        const k = kinds[n % kinds.length];
        const f = new FaultStorage(mem, { faults: (c) => (c.n === n ? { kind: k.kind } : undefined) });
        let got = null;
        let err = null;
        try {
          got = await run(f);
        } catch (e) {
          err = e;
        }
        if (k.ok || !err) {
          assert.equal(err, null, `call ${n} (${k.kind}): ${err && err.message}`);
          assert.deepEqual(got, want);
        } else {
          assert.equal(err.code, k.code, `call ${n}: ${err.message}`);
        }
      }
      src.close();
    });

    it('a request that never settles is timed out and retried, never a hang', async () => {
      const mem = new MemoryStorage();
      const src = build(60, 15);
      await src.save(mem);
      let hung = 0;
      const f = new FaultStorage(mem, {
        faults: (c) => (c.op === 'read' && c.nOp === 0 ? (hung++, { kind: 'hang' }) : undefined),
      });
      const db = await VectorDB.load(f, { key: KEY, retry: { ...FAST_RETRY, timeoutMs: 50 } });
      assert.equal(hung, 1);
      assert.deepEqual(await ids(db, vectors(1, 16)[0]), await ids(src, vectors(1, 16)[0]));
      db.close();
      src.close();
    });

    it('an aborted save cancels its requests and leaves the previous generation', async () => {
      const mem = new MemoryStorage();
      const db = build(150, 17);
      await db.save(mem);
      vectors(40, 18).forEach((v, i) => db.add(`x${i}`, v));
      const ac = new AbortController();
      const f = new FaultStorage(mem, {
        faults: (c) => {
          if (c.op === 'write' && c.nOp === 1) {
            ac.abort();
            return { kind: 'hang' }; // settles only through the signal
          }
          return undefined;
        },
      });
      await assert.rejects(db.save(f, { signal: ac.signal }), (e) => e.name === 'AbortError');
      const back = await VectorDB.load(mem, { key: KEY, lazy: false });
      assert.equal(back.loadStats.generation, 1);
      assert.equal(back.size, 150);
      back.close();
      db.close();
    });
  });

  describe('nothing is trusted from the store', () => {
    async function session() {
      const mem = new MemoryStorage();
      const db = build(100, 21);
      await db.save(mem);
      db.close();
      return mem;
    }
    const lying = delegate;

    it('flipped, extended, shortened or foreign bytes fail the read with a typed error, never wrong vectors', async () => {
      const mem = await session();
      const cases = {
        flipped: (b) => {
          const c = Uint8Array.from(b);
          c[c.length >> 1] ^= 1;
          return c;
        },
        extended: (b) => Uint8Array.from([...b, 0, 0, 0, 0]),
        shortened: (b) => b.subarray(0, b.length - 1),
        foreign: (b) => new Uint8Array(b.length).fill(7),
      };
      for (const [name, edit] of Object.entries(cases)) {
        const st = lying(mem, {
          async read(n, range, o) {
            const b = await mem.read(n, range, o);
            return b && range ? edit(b) : b;
          },
        });
        const db = await VectorDB.load(st, { key: KEY, cacheSizeMb: 1 }).catch((e) => e);
        if (db instanceof Error) {
          assert.ok(['ERR_CHUNK_CORRUPT', 'ERR_IO'].includes(db.code), `${name}: ${db.code} ${db.message}`);
          continue;
        }
        await assert.rejects(db.searchAsync(vectors(1, 22)[0], 5), (e) => ['ERR_CHUNK_CORRUPT', 'ERR_IO'].includes(e.code), name);
        db.close();
      }
    });

    it('answers of the wrong shape are ERR_IO, not a crash', async () => {
      const mem = await session();
      const bad = [
        { readManifest: async () => ({ data: 'not bytes', version: 'x' }) },
        { readManifest: async () => ({ data: new Uint8Array(3) }) },
        { read: async () => 'a string' },
        { list: async () => [{ name: 42 }] },
        { list: async () => 'nope' },
      ];
      for (const o of bad) {
        const st = lying(mem, o);
        const err = await VectorDB.load(st, { key: KEY, lazy: false })
          .then((db) => db.save(st))
          .then(
            () => null,
            (e) => e
          );
        assert.ok(err, `${Object.keys(o)[0]} accepted`);
        assert.ok(['ERR_IO', 'ERR_MANIFEST_CORRUPT'].includes(err.code), `${Object.keys(o)[0]}: ${err.code} ${err.message}`);
      }
    });

    it('refuses to save into a prefix that holds someone else’s objects, and touches none of them', async () => {
      const mem = new MemoryStorage();
      await mem.write('photos/cat.jpg', new Uint8Array([1, 2, 3]));
      const f = new FaultStorage(mem);
      await assert.rejects(build(10, 23).save(f), { code: 'ERR_NOT_A_SESSION' });
      assert.equal(f.counts.write + f.counts.delete + f.counts.writeManifest, 0);
    });
  });

  describe('a synchronous call never waits for the JS thread it runs on', () => {
    it('search(), searchBatch() and get() of a lazy session on JS storage throw ERR_ASYNC_REQUIRED; the async variants work', async () => {
      const mem = new MemoryStorage();
      const src = build(100, 31);
      await src.save(mem);
      const db = await VectorDB.load(mem, { key: KEY });
      const q = vectors(1, 32)[0];
      assert.throws(() => db.search(q, 3), { code: 'ERR_ASYNC_REQUIRED' });
      assert.throws(() => db.searchBatch([q], 3), { code: 'ERR_ASYNC_REQUIRED' });
      assert.throws(() => db.get('id1'), { code: 'ERR_ASYNC_REQUIRED' });
      assert.equal((await db.searchAsync(q, 3)).length, 3);
      assert.equal((await db.searchBatchAsync([q], 3))[0].length, 3);
      assert.equal((await db.getAsync('id1')).id, 'id1');
      // Eagerly loaded, nothing is read on demand: sync calls work.
      const eager = await VectorDB.load(mem, { key: KEY, lazy: false });
      assert.equal(eager.search(q, 3).length, 3);
      for (const d of [src, db, eager]) d.close();
    });

    it('a sync write while an async read waits for the storage is refused, and works once it settles', async () => {
      const mem = new MemoryStorage();
      const src = build(100, 33);
      await src.save(mem);
      let release;
      const gate = new Promise((r) => (release = r));
      let held = 0;
      const st = delegate(mem, {
        read: async (n, range, o) => {
          if (range) {
            held++;
            await gate;
          }
          return mem.read(n, range, o);
        },
      });
      const db = await VectorDB.load(st, { key: KEY });
      const pending = db.searchAsync(vectors(1, 34)[0], 5);
      while (held === 0) await new Promise((r) => setImmediate(r)); // the search is waiting on the store
      assert.throws(() => db.add('late', vectors(1, 35)[0]), { code: 'ERR_ASYNC_REQUIRED' });
      assert.throws(() => db.delete('id1'), { code: 'ERR_ASYNC_REQUIRED' });
      release();
      assert.equal((await pending).length, 5);
      db.add('late', vectors(1, 35)[0]);
      assert.ok(db.has('late'));
      src.close();
      db.close();
    });
  });

  describe('jobs that wait for JavaScript storage', () => {
    it('more of them than libuv has threads still finish when the storage itself needs libuv threads (fs)', async () => {
      // DirStorage reads through fs.promises, which runs on libuv's pool
      // (4 threads). Jobs blocked on it must not sit on that pool, or they
      // fill it and nothing finishes: before they had threads of their own,
      // this timed out attempt after attempt and failed with ERR_IO.
      const dir = tmpdir('pool');
      const src = build(400, 71);
      await src.save(dir);
      const db = await VectorDB.load(new DirStorage(dir), { key: KEY, cacheSizeMb: 0.01, retry: { retries: 1, baseMs: 1, timeoutMs: 3000 } });
      const q = vectors(16, 72);
      const got = await Promise.all(q.map((v) => db.searchAsync(v, 5)));
      assert.equal(got.length, 16);
      for (let i = 0; i < q.length; i++) assert.deepEqual(got[i].map((h) => h.id), await ids(src, q[i], 5));
      const loads = await Promise.all(Array.from({ length: 8 }, () => VectorDB.load(new DirStorage(dir), { key: KEY, lazy: false })));
      for (const l of loads) {
        assert.equal(l.size, 400);
        l.close();
      }
      db.close();
      src.close();
    });
  });

  describe('page reads from a store', () => {
    it('a cold lazy search keeps many reads in flight (they wait on the network), not 4', async () => {
      const mem = new MemoryStorage();
      const src = build(2000, 95, { chunkSize: 256 });
      await src.save(mem, { pageKb: 1 });
      // The first ranged reads wait until 8 are waiting at once (or 5 s
      // pass: then the peak falls short and the test fails, never hangs).
      let waiting = [];
      let peak = 0;
      let armed = false;
      const st = delegate(mem, {
        read: async (n, range, o) => {
          if (armed && range) {
            await new Promise((resolve) => {
              waiting.push(resolve);
              peak = Math.max(peak, waiting.length);
              if (waiting.length >= 8) {
                armed = false;
                waiting.forEach((w) => w());
              } else {
                setTimeout(resolve, 5000);
              }
            });
          }
          return mem.read(n, range, o);
        },
      });
      const db = await VectorDB.load(st, { key: KEY, cacheSizeMb: 0.5 });
      await db.searchAsync(vectors(1, 96)[0], 10); // the page tables
      armed = true;
      const hits = await db.searchAsync(vectors(1, 97)[0], 10, { rerank: 64 });
      assert.equal(hits.length, 10);
      assert.ok(peak >= 8, `at most ${peak} page reads were in flight`);
      db.close();
      src.close();
    });
  });

  describe('stores without conditional writes', () => {
    it('save under a lease object, with a warning, and remove it afterwards', async () => {
      const mem = new MemoryStorage();
      const st = delegate(mem, { conditionalWrites: false });
      const warnings = [];
      const onWarning = (w) => warnings.push(w);
      process.on('warning', onWarning);
      try {
        const db = build(30, 41);
        await db.save(st);
        await new Promise((r) => setImmediate(r));
        assert.ok(warnings.some((w) => w.code === 'VECVAULT_NO_CONDITIONAL_WRITES'));
        assert.equal(await mem.read('lease'), null);
        assert.equal((await VectorDB.load(mem, { key: KEY })).size, 30);
        db.close();
      } finally {
        process.off('warning', onWarning);
      }
    });
  });
});
