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
 * engine uses (eager and lazy loads alike), so a reader that accepted
 * anything would fail here. Sessions are written in format version 3
 * (paged objects, section 4.2; a PQ codebook and codes in the index); the
 * version-2 rules of the index segments are tested on an unencrypted
 * session rewritten as version 2 stored it (which vecvault still loads), by
 * rewriting its segments. A database with filterable fields writes version
 * 4: the reader must find the declared paths and, for every vector, the
 * values the filter language resolves from its metadata (test/helpers/
 * filter-ref.js), through updates, deletes and incremental saves.
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
const fref = require('./helpers/filter-ref');

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

/*
 * Rewrites index segments of an unencrypted session (argv: dir, mutation) and
 * re-frames the manifest: each mutation breaks one rule of docs/FORMAT.md
 * section 5.2 (version 2) while keeping every hash and sum right, so only
 * the segment rules themselves can catch it.
 */
const PY_REWRITE = String.raw`
import hashlib, json, math, struct, sys
import cbor2
d, what = sys.argv[1], sys.argv[2]
b2 = lambda x: hashlib.blake2b(x, digest_size=32).digest()
raw = open(d + "/manifest.json", "rb").read()
body = raw[154:-2].decode()
m = json.loads(body)
assert m["encryption"] is None and m["version"] == 2

def load(ref):
    data = open(d + "/objects/" + ref["name"], "rb").read()
    return data[:24], cbor2.loads(data[24:])

def store(ref, hdr, v):
    global body
    plain = cbor2.dumps(v)
    data = hdr[:16] + struct.pack("<Q", len(plain)) + plain
    name = b2(data).hex()
    open(d + "/objects/" + name, "wb").write(data)
    entry = '"name":"%s","seq":%d,"count":%d,"bytes":%d'
    old = entry % (ref["name"], ref["seq"], ref["count"], ref["bytes"])
    assert body.count(old) == 1, old
    body = body.replace(old, entry % (name, ref["seq"], ref["count"], len(data)))

ref0 = m["index"]["base"][0]
hdr, seg = load(ref0)
pq = seg["pq"]
# graph nodes of base[0] that no delta record replaces
later = {n[0] for ref in m["index"]["deltas"] for n in load(ref)[1]["nodes"]}
graph = [n for n in seg["nodes"] if n[4] and n[0] not in later]
if what == "drop-pq":
    del seg["pq"]
elif what == "pq-in-base-1" or what == "pq-in-delta":
    ref = m["index"]["base"][1] if what == "pq-in-base-1" else m["index"]["deltas"][0]
    h, v = load(ref)
    v["pq"] = pq
    store(ref, h, v)
elif what == "short-code":
    graph[0][5] = graph[0][5][:-1]
elif what == "long-code":
    graph[0][5] = graph[0][5] + b"\x00"
elif what == "no-code":
    graph[0][5] = None
elif what == "code-out-of-range":
    assert pq["ksub"] < 256
    graph[0][5] = bytes([255]) + graph[0][5][1:]
elif what == "nan-centroid":
    pq["centroids"] = struct.pack("<f", math.nan) + pq["centroids"][4:]
elif what == "dsub":
    pq["dsub"] += 1
    pq["centroids"] = bytes(4 * pq["m"] * pq["ksub"] * pq["dsub"])
elif what == "pq-key-order":
    seg["pq"] = {k: pq[k] for k in ["ksub", "m", "dsub", "trained", "centroids"]}
elif what == "flat-codebook":
    dim = m["dimension"]
    seg["pq"] = {"m": dim, "ksub": 1, "dsub": 1, "trained": 1, "centroids": bytes(4 * dim)}
elif what == "flat-code":
    seg["nodes"][0][5] = b"\x00"
elif what == "version-1":
    assert body.count('"version":2,') == 1
    body = body.replace('"version":2,', '"version":1,')
else:
    raise SystemExit("unknown mutation " + what)
if what not in ("pq-in-base-1", "pq-in-delta", "version-1"):
    store(ref0, hdr, seg)
b = body.encode()
open(d + "/manifest.json", "wb").write(b'{"sum":"' + b2(b).hex().encode() + raw[72:154] + b + b"}\n")
`;

/*
 * Rewrites an unencrypted version-3 session (argv: dir, reader directory) as
 * version 2 stored it: every object whole (section 4.1), its pages' rows or
 * nodes in one map (the reader's own decoding of section 4.2), the manifest
 * entries and version changed and its sum recomputed, in manifest.json and
 * in its history copy under manifests/.
 */
const PY_DOWNGRADE = String.raw`
import hashlib, json, struct, sys
sys.path.insert(0, sys.argv[2])
import cbor2
import reader
d = sys.argv[1]
raw = open(d + "/manifest.json", "rb").read()
body = raw[154:-2].decode()
m = json.loads(body)
assert m["encryption"] is None and m["version"] == 3

def corrupt(why):
    raise SystemExit("the version-3 session does not read: " + why)

def down(ref, kind):
    global body
    data = open(d + "/objects/" + ref["name"], "rb").read()
    v, _ = reader.read_paged_object(data, ref, kind, m, None, corrupt)
    plain = cbor2.dumps(v)
    out = b"VVOB" + bytes([1, kind, 0, 0]) + struct.pack("<QQ", ref["seq"], len(plain)) + plain
    name = hashlib.blake2b(out, digest_size=32).hexdigest()
    open(d + "/objects/" + name, "wb").write(out)
    entry = '"name":"%s","seq":%d,"count":%d,"bytes":%d'
    old = entry % (ref["name"], ref["seq"], ref["count"], ref["bytes"])
    assert body.count(old) == 1, old
    body = body.replace(old, entry % (name, ref["seq"], ref["count"], len(out)))

for c in m["chunks"]:
    down(c, 1)
for part in ("base", "deltas"):
    for g in m["index"][part]:
        down(g, 2)
assert body.count('"version":3,') == 1
body = body.replace('"version":3,', '"version":2,')
b = body.encode()
framed = b'{"sum":"' + hashlib.blake2b(b, digest_size=32).hexdigest().encode() + raw[72:154] + b + b"}\n"
# manifest.json and its history copy: a later save keeps what that copy names.
for f in ("/manifest.json", "/manifests/%020d.json" % m["generation"]):
    open(d + f, "wb").write(framed)
`;

function downgradeToV2(dir) {
  const r = spawnSync(s.PYTHON, ['-c', PY_DOWNGRADE, dir, path.dirname(READER)], { encoding: 'utf8' });
  assert.equal(r.status, 0, `rewriting ${dir} as version 2 failed:\n${r.stderr}`);
}

/*
 * The engine refuses the session with `code` when loading eagerly and when
 * loading lazily. A lazy load reads no chunk, so damage in chunk `chunkSeq`
 * (when given) shows only when that chunk is read: preload() reads it.
 */
async function engineRefuses(dir, loadOpts, code, chunkSeq = null) {
  await h.rejectsCode(() => VectorDB.load(dir, { ...loadOpts, lazy: false }), code, 'engine (eager load)');
  if (chunkSeq === null) {
    await h.rejectsCode(() => VectorDB.load(dir, { ...loadOpts, lazy: true }), code, 'engine (lazy load)');
    return;
  }
  const db = await s.loadDb(dir, { ...loadOpts, lazy: true });
  assert.equal(db.loadStats.lazy, true, 'the session opens lazily');
  await h.rejectsCode(() => db.preload([chunkSeq]), code, 'engine (lazy load, reading the chunk)');
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
        assert.equal(s.readManifest(dir).json.version, 3);
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
      const chunkSeq = damage && damage.chunk ? s.readManifest(target).json.chunks[0].seq : null;
      try {
        if (damage) damage.apply(file);
        const out = read(target, args);
        assert.equal(out.error, code, `reader: ${out.error || 'accepted the session'} ${out.message || ''}`);
        await engineRefuses(target, loadOpts, code, chunkSeq);
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
      await both(dir, keyArgs, { key }, 'ERR_CHUNK_CORRUPT', { rel: chunk, chunk: true, apply: (f) => s.flipBit(f, 60, 2) });
      await both(dir, keyArgs, { key }, 'ERR_CHUNK_CORRUPT', { rel: delta, apply: (f) => s.truncateTo(f, 30) });
      await both(dir, keyArgs, { key }, 'ERR_CHUNK_MISSING', { rel: chunk, chunk: true, apply: (f) => fs.unlinkSync(f) });
      /* Version 3: a bit of the last page (the name, over header and table, still matches). */
      await both(dir, keyArgs, { key }, 'ERR_CHUNK_CORRUPT', { rel: chunk, chunk: true, apply: (f) => s.flipBit(f, fs.statSync(f).size - 30, 1) });
      await both(plain, [], {}, 'ERR_CHUNK_CORRUPT', {
        rel: () => `objects/${s.readManifest(plain).json.chunks[0].name}`,
        chunk: true,
        apply: (f) => s.flipBit(f, fs.statSync(f).size - 30, 1),
      });
    });

    it('damaged and edited manifests', async function () {
      const m = { rel: () => 'manifest.json' };
      await both(dir, keyArgs, { key }, 'ERR_MANIFEST_CORRUPT', { ...m, apply: (f) => s.flipBit(f, 300, 1) });
      /* Another hex digit inside the mac (a flipped bit can leave the hex alphabet, which is a broken frame). */
      const otherHexDigit = (f) => {
        const b = fs.readFileSync(f);
        b[100] = b[100] === 0x30 ? 0x31 : 0x30;
        fs.writeFileSync(f, b);
      };
      await both(dir, keyArgs, { key }, 'ERR_MANIFEST_AUTH', { ...m, apply: otherHexDigit });
      await both(dir, keyArgs, { key }, 'ERR_MANIFEST_AUTH', { ...m, apply: () => s.editManifest(dir, (b) => b.replace(/"totalVectors":\d+/, '"totalVectors":3')) });
      await both(dir, keyArgs, { key }, 'ERR_UNSUPPORTED_VERSION', { ...m, apply: () => s.editManifest(dir, (b) => b.replace(/"version":\d+,/, '"version":7,')) });
      await both(plain, [], {}, 'ERR_CHUNK_CORRUPT', { ...m, apply: () => s.editManifest(plain, (b) => b.replace(/"totalVectors":\d+/, '"totalVectors":3')) });
      await both(plain, [], {}, 'ERR_MANIFEST_CORRUPT', { ...m, apply: () => s.editManifest(plain, (b) => b.replace('"format":', '"extra":0,"format":')) });
    });
  });

  describe('version 4: the filterable fields in the index', function () {
    /* A value as the attribute record holds it: strings as UTF-8 stores them,
     * -0 as 0. */
    const stored = (v) => (typeof v === 'string' ? v.toWellFormed() : Object.is(v, -0) ? 0 : v);
    const valueKey = (v) => `${typeof v}:${JSON.stringify(v)}`;
    const sorted = (vals) => [...vals].sort((a, b) => (valueKey(a) < valueKey(b) ? -1 : valueKey(a) > valueKey(b) ? 1 : 0));
    const canonical = (vals) => sorted(new Map(vals.map((v) => [valueKey(v), v])).values());

    /* Per declared path that is present in `metadata`: its values, each once. */
    function expectedAttributes(metadata, fields) {
      const out = {};
      for (const f of fields) {
        const { present, values } = fref.resolve(metadata, f);
        if (present) out[f] = canonical(values.map(stored));
      }
      return out;
    }

    function assertAttributes(out, db, ids, what) {
      assertReaderMatches(out, db, ids, what);
      assert.deepEqual(out.fields, [...fref.FIELDS], `${what}: the declared paths, in order`);
      const byId = new Map(out.vectors.map((v) => [v.id, v]));
      let checked = 0;
      for (const id of ids) {
        const rec = db.get(id);
        if (rec === null) continue;
        const got = byId.get(id).attributes;
        const norm = Object.fromEntries(Object.entries(got).map(([f, vals]) => [f, sorted(vals)])); /* repeats dropped by the reader */
        assert.deepEqual(norm, expectedAttributes(rec.metadata, fref.FIELDS), `${what}: values of ${JSON.stringify(id)} (metadata ${JSON.stringify(rec.metadata)})`);
        checked++;
      }
      assert.ok(checked > 0, `${what}: some vectors were checked`);
    }

    for (const seal of Object.keys(s.SEALS)) {
      it(`${seal}: version 4, its paths and every vector's values read back through updates, deletes and incremental saves`, async function () {
        const dir = s.freshPath('fmt-v4');
        const db = s.newDb({ dimension: 6, metric: 'l2', chunkSize: 25, filterable: [...fref.FIELDS], ...s.SEALS[seal].db });
        const r = fref.rng(41);
        const vec = () => Float32Array.from({ length: 6 }, () => r() - 0.5);
        const ids = [];
        for (let i = 0; i < 120; i++) {
          ids.push(`f${i}`);
          db.add(`f${i}`, vec(), i % 10 === 9 ? undefined : fref.randomMetadata(r));
        }
        const args = secretArgs(seal);
        await db.save(dir);
        assert.equal(s.readManifest(dir).json.version, 4);
        assert.ok(s.readManifest(dir).json.index.base.length > 1, 'several base segments: only the first lists the paths');
        assertAttributes(read(dir, args), db, ids, 'generation 1');

        for (let i = 0; i < ids.length; i += 7) db.updateMetadata(ids[i], fref.randomMetadata(r));
        for (let i = 3; i < ids.length; i += 11) db.delete(ids[i]);
        for (let i = 0; i < 10; i++) {
          ids.push(`g${i}`);
          db.add(`g${i}`, vec(), fref.randomMetadata(r));
        }
        assert.equal((await db.save(dir)).full, false);
        assertAttributes(read(dir, args), db, ids, 'generation 2 (incremental)');

        const again = await s.loadDb(dir, { ...s.SEALS[seal].load });
        assert.deepEqual(again.filterable, [...fref.FIELDS], 'the paths come back from the session');
        again.updateMetadata(ids[1], { lang: 'en', tags: ['a', 'a', 'b'], author: { name: 'x' } });
        await again.save(dir);
        assertAttributes(read(dir, args), again, ids, 'generation 3 (after a load)');
      });
    }

    it('a version number that does not match the segments is refused by the reader and the engine alike', async function () {
      const v4 = s.freshPath('fmt-v4-as-3');
      const db = s.newDb({ dimension: 4, chunkSize: 10, filterable: ['lang'], encryptAtRest: false });
      const v3 = s.freshPath('fmt-v3-as-4');
      const plainDb = s.newDb({ dimension: 4, chunkSize: 10, encryptAtRest: false });
      for (let i = 0; i < 30; i++) {
        db.add(`x${i}`, [i, 1, 0, 0], { lang: i % 2 ? 'en' : 'de' });
        plainDb.add(`x${i}`, [i, 1, 0, 0], { lang: 'en' });
      }
      await db.save(v4);
      await plainDb.save(v3);
      assert.equal(s.readManifest(v3).json.version, 3, 'without filterable fields the session stays version 3');
      s.editManifest(v4, (b) => b.replace('"version":4,', '"version":3,'));
      s.editManifest(v3, (b) => b.replace('"version":3,', '"version":4,'));
      for (const dir of [v4, v3]) {
        const out = read(dir, []);
        assert.equal(out.error, 'ERR_CHUNK_CORRUPT', `reader (${path.basename(dir)}): ${out.error || 'accepted the session'} ${out.message || ''}`);
        await engineRefuses(dir, {}, 'ERR_CHUNK_CORRUPT');
      }
    });
  });

  describe('version 2 index segments: the reader and the engine refuse what breaks section 5.2', function () {
    let hnswDir;
    let flatDir;

    before(async function () {
      /* Two generations (a delta), several base segments (chunkSize 20), few
       * enough vectors that ksub < 256. */
      hnswDir = s.freshPath('fmt-v2');
      const db = s.newDb({ dimension: 8, chunkSize: 20, encryptAtRest: false });
      s.fill(db, 90, { seed: 21 });
      await db.save(hnswDir);
      db.add('late', new Float32Array(8).fill(0.25));
      assert.equal((await db.save(hnswDir)).full, false);
      const m = s.readManifest(hnswDir).json;
      assert.ok(m.index.base.length >= 2 && m.index.deltas.length >= 1, 'the fixture has base segments and a delta');
      flatDir = s.freshPath('fmt-v2-flat');
      const f = s.newDb({ dimension: 8, chunkSize: 20, index: 'flat', encryptAtRest: false });
      s.fill(f, 50, { seed: 22 });
      await f.save(flatDir);
      for (const d of [hnswDir, flatDir]) {
        downgradeToV2(d);
        assert.equal(s.readManifest(d).json.version, 2);
        assert.ok(!read(d, []).error, 'the untouched fixture reads');
      }
      /* ... and so does the engine, eagerly and lazily, with the same data. */
      for (const lazy of [false, true]) {
        const again = await s.loadDb(hnswDir, { lazy });
        assert.equal(again.size, db.size);
        assert.deepEqual(again.get('late'), db.get('late'));
      }
    });

    function mutated(from, what) {
      const dir = s.freshPath(`fmt-v2-${what}`);
      fs.cpSync(from, dir, { recursive: true });
      const r = spawnSync(s.PYTHON, ['-c', PY_REWRITE, dir, what], { encoding: 'utf8' });
      assert.equal(r.status, 0, `rewriting (${what}) failed:\n${r.stderr}`);
      return dir;
    }

    const cases = [
      ['hnsw', 'drop-pq', 'a 5-key segment in a version-2 session'],
      ['hnsw', 'version-1', 'a 6-key segment in a version-1 session'],
      ['hnsw', 'pq-in-base-1', 'a codebook in base segment 1'],
      ['hnsw', 'pq-in-delta', 'a codebook in a delta'],
      ['hnsw', 'pq-key-order', 'codebook keys out of order'],
      ['hnsw', 'dsub', 'm * dsub is not the dimension'],
      ['hnsw', 'nan-centroid', 'a NaN centroid'],
      ['hnsw', 'short-code', 'a code shorter than m'],
      ['hnsw', 'long-code', 'a code longer than m'],
      ['hnsw', 'no-code', 'a graph node without a code'],
      ['hnsw', 'code-out-of-range', 'a code byte not below ksub'],
      ['flat', 'flat-codebook', 'a codebook in a flat session'],
      ['flat', 'flat-code', 'a code in a flat session'],
    ];
    for (const [kind, what, title] of cases) {
      it(`${kind}: ${title}`, async function () {
        const dir = mutated(kind === 'flat' ? flatDir : hnswDir, what);
        const out = read(dir, []);
        assert.equal(out.error, 'ERR_CHUNK_CORRUPT', `reader: ${out.error || 'accepted the session'} ${out.message || ''}`);
        await engineRefuses(dir, {}, 'ERR_CHUNK_CORRUPT');
      });
    }

    it('a version-2 session loads lazily, upgrades to version 3 on its next save, and its whole objects go once no kept generation names them', async function () {
      const dir = s.freshPath('fmt-v2-up');
      fs.cpSync(hnswDir, dir, { recursive: true });
      const before = read(dir, []);
      assert.ok(!before.error);
      const old = new Set([...s.manifestObjects(dir).chunks, ...s.manifestObjects(dir).index].map((o) => o.name));
      const db = await s.loadDb(dir, { lazy: true });
      assert.equal(db.loadStats.lazy, true);
      for (const v of before.vectors) assert.deepEqual(Array.from(db.get(v.id).vector), v.vector);
      await db.save(dir);
      assert.equal(s.readManifest(dir).json.version, 3);
      const after = read(dir, []);
      assert.ok(!after.error, `${after.error} ${after.message}`);
      assert.deepEqual(after.vectors, before.vectors, 'every vector and its metadata, as version 3');
      for (const c of s.readManifest(dir).json.chunks) assert.ok(s.objectPages(dir, c.name) >= 1, 'chunks are paged now');
      const present = () => s.listFiles(`${dir}/objects`).filter((f) => old.has(f)).length;
      assert.equal(present(), old.size, 'the version-2 generation is still kept');
      /* Newer generations push it out of the kept history (docs/FORMAT.md section 6). */
      for (let g = 0; g < 4 && present() > 0; g++) {
        db.add(`gen-${g}`, new Float32Array(8).fill((g + 1) / 8));
        await db.save(dir);
      }
      assert.equal(present(), 0, 'the whole objects are collected');
      assert.ok(!read(dir, []).error);
    });
  });
});
