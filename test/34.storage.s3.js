'use strict';
/*
 * 34.storage.s3.js: what a session on S3 (s3rver, started by the suite)
 * must survive and must not do.
 *
 * Owns: SIGKILL of a writer in the middle of an S3 save (at its first,
 * a middle and its last object upload, before the manifest is sent and
 * right after the store took it): the session opens, lazily and eagerly, at
 * the last committed generation with exactly that generation's vectors; the
 * garbage of the crashed writers outlives a save within the grace period
 * and is collected by a save without one. The ranged reads of lazy queries,
 * counted and measured against the page budget. The manifest conditions a
 * save sends. Credentials that never reach a log or an error message, and
 * refusals that surface as ERR_ACCESS.
 *
 * The writer is test/helpers/s3-save-child.js. It stops at a point this
 * file picks (by counting its storage calls, never by a timer), tells the
 * parent over IPC and waits forever; the parent then kills it.
 */
const assert = require('node:assert/strict');
const path = require('node:path');
const util = require('node:util');
const { fork } = require('node:child_process');
const { HeadObjectCommand } = require('@aws-sdk/client-s3');
const { VectorDB, MemoryStorage, FaultStorage } = require('..');
const { S3Storage } = require('../s3');
const { startS3, recordRequests } = require('./helpers/s3');
const { applyChange, stopping } = require('./helpers/s3-save-child');
const { rng } = require('./helpers');

const CHILD = path.join(__dirname, 'helpers', 's3-save-child.js');
const DIM = 16;
const KEY = Buffer.alloc(32, 34);
const GEN1 = 400;
/* What the child adds to generation 1 (and deletes from it). */
const CHANGE = { add: 600, seed: 77, tag: 'c', del: ['id3', 'id200'] };

function vectors(n, seed) {
  const r = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: DIM }, () => r() * 2 - 1));
}

function build(n, seed, extra = {}) {
  const db = new VectorDB({ dimension: DIM, metric: 'l2', chunkSize: 32, key: KEY, ...extra });
  vectors(n, seed).forEach((v, i) => db.add(`id${i}`, v, { i }));
  return db;
}

async function ids(db, q, k = 10) {
  return (await db.searchAsync(q, k)).map((h) => h.id);
}

/** The object names a manifest (its JSON bytes) references. */
function referenced(bytes) {
  return new Set([...Buffer.from(bytes).toString('utf8').matchAll(/"name":"([0-9a-f]{64})"/g)].map((m) => m[1]));
}

/** Objects under objects/ that no retained manifest (the current one or a history copy) references. */
async function orphans(storage) {
  const all = await storage.list('');
  const refs = new Set();
  const cur = await storage.readManifest();
  if (cur) for (const r of referenced(cur.data)) refs.add(r);
  for (const o of all) if (o.name.startsWith('manifests/')) for (const r of referenced(await storage.read(o.name))) refs.add(r);
  return all.filter((o) => o.name.startsWith('objects/') && !refs.has(o.name.slice(8))).map((o) => o.name);
}

/* A safety net only: a child that neither reaches its stop point nor ends
 * is killed after this long and the run fails. */
const HANG_MS = 120000;

/**
 * Forks the writer against `prefix` with stop point `stop` (and `extra`
 * settings, see the child), kills it with
 * SIGKILL as soon as it reports the stop, and resolves with the objects it
 * reported uploaded and the name it stopped at.
 */
function crashWriter(s3, bucket, prefix, stop, extra = {}) {
  const cfg = { endpoint: s3.endpoint, bucket, prefix, keyHex: KEY.toString('hex'), stop, change: CHANGE, ...extra };
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.resume();
    const uploaded = [];
    let stopped = null;
    let other = null;
    child.on('message', (m) => {
      if (m.uploaded) uploaded.push(m.uploaded);
      else if (m.stopped && !stopped) {
        stopped = m.name;
        child.kill('SIGKILL');
      } else other = m;
    });
    const safety = setTimeout(() => child.kill('SIGKILL'), HANG_MS);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(safety);
      if (stopped && signal === 'SIGKILL') resolve({ uploaded, stopped });
      else reject(new Error(`the writer (${stop}) did not stop where asked: ${JSON.stringify(other)}, exit ${code} ${signal}\n${stderr}`));
    });
  });
}

describe('34 sessions on S3 (s3rver): crashes, ranged reads, conditions, credentials', function () {
  this.timeout(300000);
  let s3;
  let buckets = 0;
  before(async () => void (s3 = await startS3()));
  after(() => s3 && s3.close());
  const bucket = (name) => s3.makeBucket(`vv-34-${name}-${++buckets}`);

  describe('kill -9 during an S3 save', () => {
    const queries = vectors(8, 99);
    let g1; // generation 1, as the parent built it
    let g2; // generation 2, as the child would commit it

    before(async () => {
      g1 = build(GEN1, 1);
      const mem = new MemoryStorage();
      await g1.save(mem);
      g2 = await VectorDB.load(mem, { key: KEY });
      applyChange(g2, CHANGE);
    });
    after(() => {
      for (const d of [g1, g2]) if (d) d.close();
    });

    /** Every id a generation holds, and the ones it must not. */
    function idsOf(gen) {
      const first = Array.from({ length: GEN1 }, (_, i) => `id${i}`);
      const added = Array.from({ length: CHANGE.add }, (_, i) => `${CHANGE.tag}${i}`);
      if (gen === 1) return { present: first, absent: added };
      return { present: first.filter((id) => !CHANGE.del.includes(id)).concat(added), absent: CHANGE.del };
    }

    /** The session opens lazily and eagerly at `gen`, holding exactly what `ref` holds. */
    async function assertOpensAt(storage, gen, ref) {
      const { present, absent } = idsOf(gen);
      for (const lazy of [true, false]) {
        const what = `${lazy ? 'lazy' : 'eager'} load at generation ${gen}`;
        const db = await VectorDB.load(storage, { key: KEY, lazy });
        try {
          assert.equal(db.loadStats.generation, gen, what);
          assert.equal(db.size, ref.size, what);
          assert.equal(db.size, present.length, what);
          for (const id of present) {
            const got = await db.getAsync(id);
            const want = await ref.getAsync(id);
            assert.ok(got, `${what}: ${id} is there`);
            assert.deepEqual(got.vector, want.vector, `${what}: ${id}'s vector`);
            assert.deepEqual(got.metadata, want.metadata, `${what}: ${id}'s metadata`);
          }
          for (const id of absent) assert.equal(await db.getAsync(id), null, `${what}: ${id} is not there`);
          for (const q of queries) assert.deepEqual(await ids(db, q), await ids(ref, q), `${what}: search results`);
        } finally {
          db.close();
        }
      }
    }

    /** An S3Storage on `prefix` of bucket `b`, holding generation 1. */
    async function sessionAtGen1(b, prefix) {
      const st = new S3Storage({ client: s3.client, bucket: b, prefix });
      await g1.save(st, { gcGraceMs: 0 });
      return st;
    }

    /** How many objects the child's save uploads: the same load, change and save, in memory. */
    let uploadsOfSave = 0;
    before(async () => {
      const mem = new MemoryStorage();
      await g1.save(mem);
      const probe = await VectorDB.load(mem, { key: KEY });
      applyChange(probe, CHANGE);
      // The child's wrapper, never stopping ('write:0'), counts for us.
      await probe.save(stopping(mem, 'write:0', (m) => (uploadsOfSave += m.uploaded ? 1 : 0)));
      probe.close();
    });

    const stops = [
      { stop: () => 'write:1', what: 'before its first object upload', gen: 1 },
      { stop: () => `write:${Math.ceil(uploadsOfSave / 2)}`, what: 'before a middle upload', gen: 1 },
      { stop: () => `write:${uploadsOfSave}`, what: 'before its last upload', gen: 1 },
      { stop: () => 'manifest:before', what: 'with every object uploaded, before the manifest is sent', gen: 1 },
      { stop: () => 'manifest:after', what: 'right after the store took the manifest', gen: 2 },
    ];
    for (const s of stops) {
      it(`killed ${s.what}: opens at generation ${s.gen} with exactly its vectors`, async () => {
        assert.ok(uploadsOfSave >= 4, `the save uploads ${uploadsOfSave} objects`);
        const b = await bucket('kill');
        const st = await sessionAtGen1(b, 'tenant/');
        // A reader of generation 1, with something cached, across the crash.
        const reader = await VectorDB.load(st, { key: KEY, cacheSizeMb: 1 });
        await ids(reader, queries[0]);
        const run = await crashWriter(s3, b, 'tenant/', s.stop());
        assert.ok(run.stopped);
        const ref = s.gen === 1 ? g1 : g2;
        await assertOpensAt(st, s.gen, ref);
        assert.deepEqual(await reader.refresh(), { generation: s.gen, changed: s.gen === 2 });
        assert.equal(reader.size, ref.size);
        for (const q of queries) assert.deepEqual(await ids(reader, q), await ids(ref, q), 'the reader after refresh()');
        reader.close();
      });
    }

    it('GC after crashes: young garbage survives the grace period, a save without one collects it all', async () => {
      const b = await bucket('gc');
      const st = await sessionAtGen1(b, 'tenant/');
      assert.deepEqual(await orphans(st), []);
      const a = await crashWriter(s3, b, 'tenant/', `write:${Math.ceil(uploadsOfSave / 2)}`);
      const c = await crashWriter(s3, b, 'tenant/', 'manifest:before');
      const garbage = [...new Set([...a.uploaded, ...c.uploaded])];
      assert.ok(a.uploaded.length > 0 && c.uploaded.length > 0, 'the crashed writers uploaded objects');
      const left = await orphans(st);
      for (const name of garbage) assert.ok(left.includes(name), `${name}, a crashed writer's upload, is garbage`);
      await assertOpensAt(st, 1, g1);

      // A writer that saves with the default grace keeps the young garbage:
      // it could be a live writer's upload.
      const w = await VectorDB.load(st, { key: KEY });
      w.add('gc1', vectors(1, 5)[0]);
      assert.equal((await w.save(st)).generation, 2);
      const kept = await orphans(st);
      for (const name of garbage) assert.ok(kept.includes(name), `${name} survives a save within the grace period`);

      // Without a grace period every unreferenced object goes, and the
      // session still opens with everything.
      w.add('gc2', vectors(1, 6)[0]);
      assert.equal((await w.save(st, { gcGraceMs: 0 })).generation, 3);
      assert.deepEqual(await orphans(st), []);
      const back = await VectorDB.load(st, { key: KEY, lazy: false });
      assert.equal(back.size, GEN1 + 2);
      for (const q of queries) assert.deepEqual(await ids(back, q), await ids(w, q));
      back.close();

      // A crash right after the commit (no history copy, no GC) leaves a
      // session whose next save still collects everything.
      await crashWriterOver(st, b);
      w.close();
    });

    it('a reader may lag 2 generations behind; at 3 a lazy read is ERR_CHUNK_MISSING, and refresh() recovers', async () => {
      const b = await bucket('lag2');
      const st = await sessionAtGen1(b, 'tenant/');
      const reader = await VectorDB.load(st, { key: KEY, cacheSizeMb: 1 });
      const w = await VectorDB.load(st, { key: KEY, lazy: false });
      // Every save rewrites every object (a save to a store other than the
      // last one, by its description, is a full save: the two alternate), so
      // generation 1's objects are referenced by generation 1 alone.
      const fullSave = async (g) => {
        w.add(`lag${g}`, vectors(1, 20 + g)[0]);
        const r = await w.save(g % 2 === 0 ? new FaultStorage(st) : st, { gcGraceMs: 0 });
        assert.equal(r.generation, g);
        assert.equal(r.full, true);
      };
      await fullSave(2);
      await fullSave(3);
      const { present } = idsOf(1);
      for (const id of present) assert.deepEqual((await reader.getAsync(id)).vector, g1.get(id).vector, `${id}, 2 generations behind`);
      reader.setCacheSize(1e-6); // forget what was read, so the next reads go to the store
      reader.setCacheSize(1);
      await fullSave(4);
      await assert.rejects(
        (async () => {
          for (const id of present) await reader.getAsync(id);
        })(),
        { code: 'ERR_CHUNK_MISSING' },
        '3 generations behind'
      );
      assert.deepEqual(await reader.refresh(), { generation: 4, changed: true });
      assert.equal(reader.size, w.size);
      for (const q of queries) assert.deepEqual(await ids(reader, q), await ids(w, q));
      reader.close();
      w.close();
    });

    it('a generation whose writer died before its history copy stays readable while it is within the documented lag', async () => {
      const b = await bucket('lag');
      const st = await sessionAtGen1(b, 'tenant/');
      await crashWriter(s3, b, 'tenant/', 'manifest:after');
      const copies = (await st.list('manifests/')).map((o) => o.name);
      assert.deepEqual(copies, [`manifests/${'1'.padStart(20, '0')}.json`], 'generation 2 committed without its history copy');
      // A reader opens generation 2 and has read nothing yet.
      const reader = await VectorDB.load(st, { key: KEY, cacheSizeMb: 1 });
      assert.equal(reader.loadStats.generation, 2);
      // The one writer (gcGraceMs: 0 is for exactly that) commits generation
      // 3, rewriting every object (a save to a store other than the last
      // one, by its description, is a full save): generation 2's objects are
      // referenced by generation 2 alone.
      const w = await VectorDB.load(st, { key: KEY, lazy: false });
      w.add('g3', vectors(1, 8)[0]);
      const s3stats = await w.save(new FaultStorage(st), { gcGraceMs: 0 });
      assert.equal(s3stats.generation, 3);
      assert.equal(s3stats.full, true);
      const { present } = idsOf(2);
      const readsAll = async (behind) => {
        for (const id of present) {
          const got = await reader.getAsync(id);
          assert.deepEqual(got && got.vector, (await g2.getAsync(id)).vector, `${id} at generation 2, ${behind} behind`);
        }
        for (const q of queries) assert.deepEqual(await ids(reader, q), await ids(g2, q));
        reader.setCacheSize(1e-6); // forget what was read, so the next reads go to the store
        reader.setCacheSize(1);
      };
      // One generation behind, and two: within what docs/STORAGE.md promises.
      await readsAll(1);
      w.add('g4', vectors(1, 9)[0]);
      const s4 = await w.save(st, { gcGraceMs: 0 });
      assert.equal(s4.generation, 4);
      assert.equal(s4.full, true);
      await readsAll(2);
      reader.close();
      w.close();
    });

    it('killed in the middle of its garbage collection: its generation opens, and the next save collects the rest', async () => {
      const b = await bucket('gc-kill');
      const st = await sessionAtGen1(b, 'tenant/');
      const a = await crashWriter(s3, b, 'tenant/', `write:${Math.ceil(uploadsOfSave / 2)}`);
      assert.ok(a.uploaded.length > 0);
      // This one commits generation 2 and dies before its first delete.
      const c = await crashWriter(s3, b, 'tenant/', 'delete:1');
      assert.ok(c.stopped.startsWith('objects/'), `stopped at ${c.stopped}`);
      await assertOpensAt(st, 2, g2);
      const left = await orphans(st);
      for (const name of a.uploaded) assert.ok(left.includes(name), `${name} is still there, unreferenced`);
      const w = await VectorDB.load(st, { key: KEY });
      w.add('after', vectors(1, 9)[0]);
      assert.equal((await w.save(st, { gcGraceMs: 0 })).generation, 3);
      assert.deepEqual(await orphans(st), []);
      w.close();
    });

    it('killed in the first save of a new session: nothing opens (ERR_NOT_FOUND), and a later first save succeeds and collects the garbage', async () => {
      const b = await bucket('first');
      const st = new S3Storage({ client: s3.client, bucket: b, prefix: 'new/' });
      const fresh = { create: { dimension: DIM, metric: 'l2', chunkSize: 32 }, change: { add: 300, seed: 10, tag: 'f', del: [] } };
      // Past the first 8 uploads in flight, so that some were acknowledged.
      const run = await crashWriter(s3, b, 'new/', 'write:12', fresh);
      assert.ok(run.uploaded.length > 0, 'the crashed writer uploaded objects');
      await assert.rejects(VectorDB.load(st, { key: KEY }), { code: 'ERR_NOT_FOUND' });
      await assert.rejects(VectorDB.inspect(st), { code: 'ERR_NOT_FOUND' });
      const db = build(50, 11);
      assert.equal((await db.save(st)).generation, 1);
      const young = await orphans(st);
      for (const name of run.uploaded) assert.ok(young.includes(name), `${name} survives the grace period`);
      db.add('more', vectors(1, 12)[0]);
      assert.equal((await db.save(st, { gcGraceMs: 0 })).generation, 2);
      assert.deepEqual(await orphans(st), []);
      const back = await VectorDB.load(st, { key: KEY, lazy: false });
      assert.equal(back.size, 51);
      back.close();
      db.close();
    });

    /* A writer that commits generation 4 over `st` and dies before its
     * history copy; a save of the session then leaves no garbage. */
    async function crashWriterOver(st, b) {
      await crashWriter(s3, b, 'tenant/', 'manifest:after');
      const after = await VectorDB.load(st, { key: KEY, lazy: false });
      assert.equal(after.loadStats.generation, 4);
      assert.equal(after.size, GEN1 + 2 + CHANGE.add - CHANGE.del.length);
      after.add('gc3', vectors(1, 7)[0]);
      assert.equal((await after.save(st, { gcGraceMs: 0 })).generation, 5);
      assert.deepEqual(await orphans(st), []);
      const again = await VectorDB.load(st, { key: KEY });
      assert.equal(again.size, after.size);
      for (const q of queries) assert.deepEqual(await ids(again, q), await ids(after, q));
      again.close();
      after.close();
    }
  });

  describe('ranged reads of lazy queries, counted', () => {
    const PAGE_KB = 1; // the save's pageKb: small pages, so a query's reads are many and the budget binds
    const N = 3000;
    /* The sizes a page may have on the wire, from FORMAT.md section 4.2 and
     * the writer's cut (section 6): a chunk page holds rows until the next
     * would take its row bytes (vector, id, metadata) past pageKb KiB, and
     * every row holds at least its vector, so a page has at most
     * pageKb * 1024 / (dimension * 4) rows. Each row adds its u32 slot and
     * the CBOR heads of its id and metadata strings (at most 2 bytes each
     * for strings under 256 bytes): 8 bytes. The chunk map's keys and the
     * heads of its values take under 96. Sealing adds a 24-byte nonce and a
     * 16-byte tag. */
    const ROW_CBOR = 8;
    const MAP_CBOR = 96;
    const SEAL = 24 + 16;
    const HEADER = 32; // an object's header, read first: it gives the table's length
    const pageMax = (dim) => PAGE_KB * 1024 + Math.floor((PAGE_KB * 1024) / (dim * 4)) * ROW_CBOR + MAP_CBOR + SEAL;
    /* A table of P pages has a plaintext of at most 24 * P + 64 bytes (section 4.2), sealed; P <= rows. */
    const tableMax = (rows) => 24 * rows + 64 + SEAL;

    it('every chunk read is ranged, at most a page long, and a query reads at most its re-rank budget of pages and bytes', async () => {
      const b = await bucket('ranged');
      const s3st = new S3Storage({ client: s3.client, bucket: b, prefix: 'r/' });
      const src = new VectorDB({ dimension: DIM, metric: 'l2', chunkSize: 256, key: KEY });
      vectors(N, 41).forEach((v, i) => src.add(`id${i}`, v, { i, tag: `t${i % 3}` }));
      await src.save(s3st, { pageKb: PAGE_KB });

      const info = await VectorDB.inspect(s3st);
      const manifest = JSON.parse(Buffer.from((await s3st.readManifest()).data).toString('utf8')).body;
      const rowsOf = new Map(manifest.chunks.map((c) => [`objects/${c.name}`, c.count]));
      assert.equal(rowsOf.size, info.chunkCount);
      const PAGE = pageMax(info.dimension);
      const TABLE = tableMax(Math.max(...info.chunks.map((c) => c.vectors)));
      const defaultRerank = (k) => Math.max(4 * k, 2 * info.hnsw.efSearch);
      // More pages than a query may read, so the budget is a real bound.
      const chunkBytes = info.chunks.reduce((a, c) => a + c.bytes, 0);
      assert.ok(chunkBytes / PAGE > defaultRerank(10), `${chunkBytes} bytes of chunks in pages of at most ${PAGE}`);

      const f = new FaultStorage(s3st);
      const db = await VectorDB.load(f, { key: KEY, cacheSizeMb: 1 });
      assert.equal(db.loadStats.lazy, true);
      const qs = vectors(20, 42);
      let longest = 0;
      for (let i = 0; i < qs.length; i++) {
        // Half with the default re-rank, half with a small one; every query
        // cold (the cache emptied, its bound kept), the most it can read.
        const [k, opts] = i % 2 === 0 ? [10, {}] : [5, { rerank: 12 }];
        const rerank = opts.rerank || defaultRerank(k);
        db.setCacheSize(1e-6);
        db.setCacheSize(1);
        f.resetCounts();
        const hits = await db.searchAsync(qs[i], k, opts);
        assert.equal(hits.length, k);
        if (i % 2 === 0) assert.deepEqual(hits.map((h) => h.id), await ids(src, qs[i], k), `query ${i}: the results of the whole database`);

        const what = `query ${i} (k ${k}, rerank ${rerank})`;
        const touched = new Set();
        let pages = 0;
        let tables = 0;
        let bytes = 0;
        /* A read s3rver failed (a reset keep-alive socket on a loaded
         * machine) is retried: the same range twice in the log, its bytes
         * counted once. Each distinct read is what the engine asked for. */
        const reads = [...new Map(f.log.map((c) => [`${c.op} ${c.name} ${c.range && c.range.offset} ${c.range && c.range.length}`, c])).values()];
        for (const c of reads) {
          assert.equal(c.op, 'read', `${what}: only reads (${c.op} ${c.name})`);
          assert.ok(rowsOf.has(c.name), `${what}: only chunks are read (${c.name})`);
          assert.ok(c.range, `${what}: ${c.name} read whole`);
          touched.add(c.name);
          bytes += c.range.length;
          if (c.range.offset === 0) {
            assert.equal(c.range.length, HEADER, `${what}: a header read`);
          } else if (c.range.offset === HEADER) {
            tables++;
            assert.ok(c.range.length <= tableMax(rowsOf.get(c.name)), `${what}: a table of ${c.range.length} bytes`);
          } else {
            pages++;
            longest = Math.max(longest, c.range.length);
            assert.ok(c.range.length <= PAGE, `${what}: a page read of ${c.range.length} bytes, more than a page (${PAGE})`);
          }
        }
        assert.ok(pages > 0, `${what}: a cold query reads pages`);
        assert.ok(pages <= rerank, `${what}: ${pages} pages read`);
        assert.ok(tables <= touched.size, `${what}: ${tables} tables of ${touched.size} chunks`);
        // A chunk's page table costs two reads: its header, then the table.
        assert.ok(reads.length <= rerank + 2 * touched.size, `${what}: ${reads.length} reads`);
        assert.equal(bytes, f.counts.readBytes, `${what}: the bytes asked for are the bytes that came`);
        assert.ok(bytes <= rerank * PAGE + touched.size * (HEADER + TABLE), `${what}: ${bytes} bytes`);
      }
      // A query whose pages are cached reads nothing at all.
      await db.searchAsync(qs[0], 10);
      f.resetCounts();
      await db.searchAsync(qs[0], 10);
      assert.deepEqual(f.log, [], 'a warm query reads nothing');
      // The page bound is not loose by orders of magnitude.
      assert.ok(longest > (PAGE_KB * 1024) / 2, `the longest page read is ${longest} bytes`);
      db.close();
      src.close();
    });
  });

  describe('the manifest conditions a save sends (s3rver ignores them)', () => {
    it('the first save only if there is no manifest, each next one only over the ETag it read', async () => {
      const b = await bucket('cond');
      const client = s3.makeClient();
      const rec = recordRequests(client, b);
      const st = new S3Storage({ client, bucket: b, prefix: 'c/' });
      const etag = async () => (await client.send(new HeadObjectCommand({ Bucket: b, Key: 'c/manifest.json' }))).ETag;
      const manifestPuts = () => rec.requests.filter((r) => r.method === 'PUT' && r.key === 'c/manifest.json');
      try {
        const db = build(60, 51);
        await db.save(st);
        let puts = manifestPuts();
        assert.equal(puts.length, 1);
        assert.equal(puts[0].headers['if-none-match'], '*');
        assert.equal(puts[0].headers['if-match'], undefined);

        // The same writer again: over the version its first save left.
        const e1 = await etag();
        db.add('more', vectors(1, 52)[0]);
        await db.save(st);
        puts = manifestPuts();
        assert.equal(puts.length, 2);
        assert.equal(puts[1].headers['if-match'], e1);
        assert.equal(puts[1].headers['if-none-match'], undefined);

        // Another writer that loaded the session: over the version it read.
        const e2 = await etag();
        assert.notEqual(e2, e1);
        const other = await VectorDB.load(st, { key: KEY, lazy: false });
        other.add('other', vectors(1, 53)[0]);
        await other.save(st);
        puts = manifestPuts();
        assert.equal(puts.length, 3);
        assert.equal(puts[2].headers['if-match'], e2);
        assert.equal(puts[2].headers['if-none-match'], undefined);
        // Only the manifest is written conditionally: objects are immutable and content-addressed.
        for (const r of rec.requests.filter((q) => q.method === 'PUT' && q.key !== 'c/manifest.json')) {
          assert.equal(r.headers['if-match'], undefined, r.key);
        }
        other.close();
        db.close();
      } finally {
        rec.stop();
      }
    });
  });

  describe('credentials', () => {
    // Distinctive, so that any appearance is found; fresh each run.
    const SECRET = `vvSecretKey${require('node:crypto').randomBytes(12).toString('hex')}`;
    const TOKEN = `vvSessionToken${require('node:crypto').randomBytes(12).toString('hex')}`;

    /** Runs fn with everything written to stdout and stderr, and every process warning, captured. */
    async function captured(fn) {
      const out = [];
      const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
      const onWarning = (w) => out.push(util.inspect(w));
      for (const k of Object.keys(writes)) {
        process[k].write = function (chunk, ...rest) {
          out.push(Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk));
          const cb = rest.find((a) => typeof a === 'function');
          if (cb) process.nextTick(cb);
          return true;
        };
      }
      process.on('warning', onWarning);
      try {
        await fn();
        await new Promise((r) => setImmediate(r)); // warnings are emitted on a later tick
      } finally {
        process.off('warning', onWarning);
        for (const k of Object.keys(writes)) process[k].write = writes[k];
      }
      return out.join('');
    }

    /** Everything an error says: message, stack, and its causes, inspected whole. */
    const said = (err) => [String(err && err.message), String(err && err.stack), util.inspect(err, { depth: 8, showHidden: true })].join('\n');

    it('never appear in what a save, a load, a search or a failing call writes or says', async () => {
      const b = await bucket('creds');
      const good = s3.makeClient({ credentials: { accessKeyId: 'S3RVER', secretAccessKey: SECRET, sessionToken: TOKEN } });
      // s3rver refuses an access key id it does not know (InvalidAccessKeyId, HTTP 403).
      const unknown = s3.makeClient({ credentials: { accessKeyId: 'VVUNKNOWNKEYID', secretAccessKey: SECRET, sessionToken: TOKEN } });
      const st = new S3Storage({ client: good, bucket: b, prefix: 'k/' });
      const denied = new S3Storage({ client: unknown, bucket: b, prefix: 'k/' });
      const missing = new S3Storage({ client: good, bucket: 'vv-34-no-such-bucket', prefix: 'k/' });
      const errors = [];
      const fails = async (what, p, code) => {
        const err = await p.then(
          () => null,
          (e) => e
        );
        assert.ok(err, `${what} fails`);
        if (code === 'ERR_IO') assert.match(err.message, /vv-34-no-such-bucket.*bucket does not exist/, `${what} says why`);
        if (code === 'ERR_ACCESS') assert.match(err.message, /access denied \(InvalidAccessKeyId\)/, `${what} names the store's answer`);
        assert.equal(err.code, code, `${what}: ${err.message}`);
        errors.push(said(err));
      };
      const db = build(80, 61);
      const log = await captured(async () => {
        await db.save(st, { gcGraceMs: 0 });
        await VectorDB.inspect(st);
        const lazy = await VectorDB.load(st, { key: KEY, cacheSizeMb: 1 });
        await lazy.searchAsync(vectors(1, 62)[0], 5);
        db.add('late', vectors(1, 63)[0]);
        await db.save(st, { gcGraceMs: 0 });
        assert.equal((await lazy.refresh()).generation, 2);
        lazy.close();

        await fails('a load from a bucket that does not exist', VectorDB.load(missing, { key: KEY }), 'ERR_IO');
        await fails('a save into a bucket that does not exist', db.save(missing), 'ERR_IO');
        await fails('an inspect of a bucket that does not exist', VectorDB.inspect(missing), 'ERR_IO');
        await fails('a load refused by the store', VectorDB.load(denied, { key: KEY }), 'ERR_ACCESS');
        await fails('a save refused by the store', db.save(denied), 'ERR_ACCESS');
        await fails('an inspect refused by the store', VectorDB.inspect(denied), 'ERR_ACCESS');
      });
      db.close();
      assert.equal(errors.length, 6);
      for (const text of [log, ...errors]) {
        assert.ok(!text.includes(SECRET), `the secret access key appears in: ${text.slice(0, 2000)}`);
        assert.ok(!text.includes(TOKEN), `the session token appears in: ${text.slice(0, 2000)}`);
      }
      // The refused save left the session as it was.
      const back = await VectorDB.load(st, { key: KEY, lazy: false });
      assert.equal(back.loadStats.generation, 2);
      assert.equal(back.size, 81);
      back.close();
    });

    it('an access-denied answer at any step surfaces as ERR_ACCESS on load, save and lazy search, never retried', async () => {
      const b = await bucket('denied');
      const st = new S3Storage({ client: s3.client, bucket: b, prefix: 'd/' });
      const db = build(120, 71);
      await db.save(st);
      const q = vectors(1, 72)[0];
      db.add('x', q); // something for the saves to write
      const plans = [
        ['a load, at its manifest', 'readManifest', (f) => VectorDB.load(f, { key: KEY })],
        ['a load, at its index', 'read', (f) => VectorDB.load(f, { key: KEY })],
        ['a save, at its uploads', 'write', (f) => db.save(f)],
        ['a save, at its manifest', 'writeManifest', (f) => db.save(f)],
      ];
      /* Not retried: no call of the refused kind is made twice for one name
       * (the calls already in flight each fail once). */
      const triedOnce = (f, op, what) => {
        const names = f.log.filter((c) => c.op === op).map((c) => c.name);
        assert.ok(names.length > 0, `${what}: reached the store`);
        assert.equal(new Set(names).size, names.length, `${what}: a refused call was retried`);
      };
      for (const [what, op, run] of plans) {
        const f = new FaultStorage(st, { faults: FaultStorage.failAll(op, 'access') });
        await assert.rejects(run(f), (e) => e.code === 'ERR_ACCESS', what);
        triedOnce(f, op, what);
      }
      // A lazy session whose store starts refusing.
      const f = new FaultStorage(st);
      const lazy = await VectorDB.load(f, { key: KEY, cacheSizeMb: 1 });
      f.resetCounts();
      f.faults = FaultStorage.failAll('read', 'access');
      await assert.rejects(lazy.searchAsync(q, 5), (e) => e.code === 'ERR_ACCESS', 'a lazy search');
      triedOnce(f, 'read', 'a lazy search');
      lazy.close();
      const back = await VectorDB.load(st, { key: KEY, lazy: false });
      assert.equal(back.loadStats.generation, 1, 'the refused saves left generation 1');
      back.close();
      db.close();
    });
  });
});
