'use strict';
/*
 * test/helpers/session.js: what the session suites (11–15) share.
 *
 * Owns: temporary session directories (made under os.tmpdir(), removed by
 * cleanupTmp), deterministic keys, building databases with awkward ids and
 * metadata of every JSON type, capturing a database's state and comparing a
 * loaded one against it, hashing a directory tree, and the manifest.json
 * surgery the fault tests need (reading the frame of docs/FORMAT.md §3,
 * editing the body and recomputing the BLAKE2b-256 sum and keyed MAC).
 *
 * Node's crypto has no BLAKE2b-256 (only BLAKE2b-512, which is a different
 * function, not a prefix), so sums and MACs are computed by the system
 * python3's hashlib. No mocha globals here: child scripts require it too.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');

const h = require('./index');

/* Debian's python, where python3-cbor2 and python3-nacl are installed. */
const PYTHON = '/usr/bin/python3';

/* ------------------------------------------------------------ temp dirs */

const made = new Set();

function tmpDir(tag = 's') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `vv-${tag}-`));
  made.add(d);
  return d;
}

/* A path inside a fresh temp dir that does not exist yet. */
function freshPath(tag = 's', name = 'session') {
  return path.join(tmpDir(tag), name);
}

function cleanupTmp() {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  made.clear();
}

/* ------------------------------------------------------------------ keys */

/* A deterministic 32-byte key per label. */
function keyFor(label) {
  return new Uint8Array(crypto.createHash('sha256').update(`vecvault-test-key:${label}`).digest());
}

/* The three ways a session is sealed, as constructor/load option pairs. */
const SEALS = {
  key: { db: { key: keyFor('main') }, load: { key: keyFor('main') } },
  passphrase: { db: { passphrase: 'correct horse battery staple' }, load: { passphrase: 'correct horse battery staple' } },
  none: { db: { encryptAtRest: false }, load: {} },
};

/* --------------------------------------------------------------- content */

/* Ids that exercise UTF-8 (2-, 3- and 4-byte sequences, combining marks). */
const UNICODE_IDS = ['naïve-café', 'Ж-вектор', '向量-數據庫', '🦄-emoji-👩‍👩‍👧', 'e\u0301-combining', 'tab\tand space', '"quoted"\\slash'];

/* Metadata values of every JSON type, nested. */
function metadataFor(i) {
  switch (i % 8) {
    case 0: return null; /* no metadata */
    case 1: return { s: `str-${i}`, n: i, f: i + 0.25, neg: -i, t: true, f2: false, z: null };
    case 2: return [i, `a${i}`, null, true, { deep: [1, [2, [3]]] }];
    case 3: return `just a string ${i} ✓`;
    case 4: return i * 1.5;
    case 5: return i % 16 === 5;
    case 6: return { unicode: 'ünïcødé 🦄', empty: {}, list: [], big: 1e300, small: -1e-300 };
    default: return { i, nested: { a: { b: { c: [i, i + 1] } } } };
  }
}

/*
 * Adds n items with ids `${prefix}${i}` (plus the unicode ids) and returns
 * their ids. Vectors are seeded so the same call builds the same database.
 */
function fill(db, n, { prefix = 'v', seed = 1, unicode = true, clustered = true } = {}) {
  const vs = clustered ? h.clusteredVectors(n, db.dimension, { clusters: 8, seed }) : h.randomVectors(n, db.dimension, seed);
  const ids = [];
  const items = vs.map((vector, i) => {
    const id = unicode && i < UNICODE_IDS.length ? UNICODE_IDS[i] : `${prefix}${i}`;
    ids.push(id);
    const item = { id, vector };
    const m = metadataFor(i);
    if (m !== null) item.metadata = m;
    return item;
  });
  db.addBatch(items);
  return ids;
}

/* Deletes every `every`-th id and replaces the vector and metadata of others. */
function churn(db, ids, { seed = 99, every = 7, offset = 0 } = {}) {
  const r = h.rng(seed);
  const live = [];
  const deleted = [];
  ids.forEach((id, i) => {
    if ((i + offset) % every === 0) {
      if (db.delete(id)) deleted.push(id);
    } else if ((i + offset) % every === 3) {
      const v = new Float32Array(db.dimension);
      for (let j = 0; j < v.length; j++) v[j] = r() * 2 - 1;
      db.add(id, v, { upserted: seed, was: i });
      live.push(id);
    } else {
      live.push(id);
    }
  });
  return { live, deleted };
}

/* -------------------------------------------------------------- databases */

const tracked = new Set();

/* A new VectorDB, closed after each test by the root hook (00.setup.js). */
function newDb(options) {
  return h.openDb(options);
}

/* VectorDB.load, with the result closed by closeTracked(). */
async function loadDb(dir, options) {
  const db = await h.vecvault().VectorDB.load(dir, options);
  tracked.add(db);
  return db;
}

function closeTracked() {
  for (const db of tracked) {
    try {
      if (!db.closed) db.close();
    } catch (_) {
      /* a broken close() fails its own test */
    }
  }
  tracked.clear();
}

/*
 * The changes made before saving generation g (> 1) in the many-generations
 * tests: 10 new ids, 10 deletes and 10 upserts picked with `r` from `all`
 * (which grows). With threads: 1 the whole history is deterministic.
 */
function generationChanges(db, g, all, r) {
  for (let i = 0; i < 10; i++) {
    const id = `g${g}-${i}`;
    all.push(id);
    db.add(id, h.randomVectors(1, db.dimension, g * 100 + i)[0], { g, i });
  }
  for (let i = 0; i < 10; i++) db.delete(all[r.int(all.length)]);
  for (let i = 0; i < 10; i++) db.add(all[r.int(all.length)], h.randomVectors(1, db.dimension, g * 1000 + i)[0], { upsert: g });
}

/* ----------------------------------------------------------------- state */

/* Everything get() returns for `ids`, as plain data (null for absent ids). */
function capture(db, ids) {
  const m = new Map();
  for (const id of ids) {
    const rec = db.get(id);
    m.set(id, rec === null ? null : { vector: Array.from(rec.vector), metadata: rec.metadata });
  }
  return m;
}

/* `db` holds exactly what `state` captured (every id, bit for bit) and `size` vectors. */
function assertState(db, state, size, what = 'loaded db') {
  if (size !== undefined) assert.equal(db.size, size, `${what}: size`);
  for (const [id, want] of state) {
    const got = db.get(id);
    if (want === null) {
      assert.equal(got, null, `${what}: ${JSON.stringify(id)} should be absent`);
      continue;
    }
    assert.ok(got !== null, `${what}: ${JSON.stringify(id)} is missing`);
    assert.deepEqual(Array.from(got.vector), want.vector, `${what}: vector of ${JSON.stringify(id)}`);
    assert.deepEqual(got.metadata, want.metadata, `${what}: metadata of ${JSON.stringify(id)}`);
  }
}

/* A fixed set of queries and their results, for before/after comparisons. */
function searchAll(db, seed = 5, nq = 12, k = 10) {
  const qs = h.randomVectors(nq, db.dimension, seed);
  return qs.map((q) => h.plainResults(db.search(q, k)));
}

/* ------------------------------------------------------- crash batches */

/*
 * The batch the crash child adds before saving generation `gen`: ids encode
 * the generation, vectors and metadata are a function of (gen, row), so the
 * parent can check every generation without talking to the child.
 */
const CRASH_DIM = 16;
function crashBatchSize(gen) {
  return 40 + ((gen * 37) % 60);
}
function crashBatch(gen) {
  const r = h.rng(gen * 7919 + 17);
  const n = crashBatchSize(gen);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const v = new Float32Array(CRASH_DIM);
    for (let j = 0; j < CRASH_DIM; j++) v[j] = r() * 2 - 1;
    out[i] = { id: `g${gen}-${i}`, vector: v, metadata: { gen, i } };
  }
  return out;
}
/* Vectors in a session after `gen` generations. */
function crashSize(gen) {
  let n = 0;
  for (let g = 1; g <= gen; g++) n += crashBatchSize(g);
  return n;
}

/* ----------------------------------------------------------------- files */

function listFiles(dir) {
  const out = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}

const isTmp = (rel) => path.basename(rel).startsWith('tmp-');

/* relative path -> sha256 of every file under dir (temporary files left out unless asked). */
function hashDir(dir, { withTmp = false } = {}) {
  const out = {};
  for (const rel of listFiles(dir)) {
    if (!withTmp && isTmp(rel)) continue;
    out[rel] = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, rel))).digest('hex');
  }
  return out;
}

/* All bytes of all files under dir, concatenated (for plaintext greps). */
function allBytes(dir) {
  return Buffer.concat(listFiles(dir).map((rel) => fs.readFileSync(path.join(dir, rel))));
}

function flipBit(file, offset, bit = 0) {
  const b = fs.readFileSync(file);
  const at = offset < 0 ? b.length + offset : offset;
  assert.ok(at >= 0 && at < b.length, `flipBit: offset ${offset} outside ${file} (${b.length} bytes)`);
  b[at] ^= 1 << bit;
  fs.writeFileSync(file, b);
}

function truncateTo(file, len) {
  fs.truncateSync(file, len);
}

/* ------------------------------------------------------------- BLAKE2b */

const PY_B2 = `
import sys, hashlib, json
a = json.loads(sys.argv[1])
data = sys.stdin.buffer.read()
kw = {'digest_size': 32}
for k in ('key', 'salt', 'person'):
    if a.get(k): kw[k] = bytes.fromhex(a[k])
if a.get('subkey') is not None:
    i = a['subkey']
    master = bytes.fromhex(a['master'])
    sub = hashlib.blake2b(b'', digest_size=32, key=master, salt=i.to_bytes(8, 'little') + bytes(8),
                          person=b'vvsessn1' + bytes(8)).digest()
    kw['key'] = sub
sys.stdout.write(hashlib.blake2b(data, **kw).hexdigest())
`;

/*
 * BLAKE2b-256 of `data` (hex). opts: { key, salt, person } as bytes, or
 * { master, subkey } to key it with FORMAT.md §2's subkey `subkey` of the
 * master key `master`.
 */
function blake2b256(data, opts = {}) {
  const a = {};
  for (const k of ['key', 'salt', 'person', 'master']) if (opts[k]) a[k] = Buffer.from(opts[k]).toString('hex');
  if (opts.subkey !== undefined) a.subkey = opts.subkey;
  const r = spawnSync(PYTHON, ['-c', PY_B2, JSON.stringify(a)], { input: Buffer.from(data), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 blake2b failed: ${r.stderr || r.error}`);
  return r.stdout.trim();
}

/*
 * Pages of a format-3 object (docs/FORMAT.md section 4.2: the header's u32 at
 * offset 24), or 0 for an object of another format.
 */
function objectPages(dir, name) {
  const h = fs.readFileSync(path.join(dir, 'objects', name)).subarray(0, 32);
  return h.length === 32 && h.subarray(0, 4).toString('latin1') === 'VVOB' && h[4] === 2 ? h.readUInt32LE(24) : 0;
}

/* Pages of every chunk of the session in dir. */
function chunkPages(dir) {
  return readManifest(dir).json.chunks.reduce((n, c) => n + objectPages(dir, c.name), 0);
}

/* -------------------------------------------------------------- manifest */

const PREFIX = {
  sum: Buffer.from('{"sum":"'),
  mac: Buffer.from('","mac":"'),
  body: Buffer.from('","body":'),
};
const BODY_AT = 154;

/* The frame of manifest.json (FORMAT.md §3), checked, with its parsed body. */
function readManifest(dir) {
  const file = path.join(dir, 'manifest.json');
  const raw = fs.readFileSync(file);
  assert.ok(raw.subarray(0, 8).equals(PREFIX.sum), 'manifest frame: sum prefix');
  assert.ok(raw.subarray(72, 81).equals(PREFIX.mac), 'manifest frame: mac prefix');
  assert.ok(raw.subarray(145, 154).equals(PREFIX.body), 'manifest frame: body prefix');
  assert.equal(raw.subarray(raw.length - 2).toString('latin1'), '}\n', 'manifest frame: suffix');
  const body = raw.subarray(BODY_AT, raw.length - 2);
  return {
    file,
    raw,
    sum: raw.subarray(8, 72).toString('latin1'),
    mac: raw.subarray(81, 145).toString('latin1'),
    body,
    json: JSON.parse(body.toString('utf8')),
  };
}

function frameManifest(sum, mac, body) {
  return Buffer.concat([PREFIX.sum, Buffer.from(sum), PREFIX.mac, Buffer.from(mac), PREFIX.body, Buffer.from(body), Buffer.from('}\n')]);
}

/*
 * Rewrites manifest.json with `edit(bodyText) -> bodyText` applied, and the
 * sum recomputed (unless fixSum is false). With `key` (a raw master key) the
 * MAC is recomputed too; otherwise the old MAC is kept.
 */
function editManifest(dir, edit, { fixSum = true, key = null } = {}) {
  const m = readManifest(dir);
  const before = m.body.toString('utf8');
  const after = edit(before);
  assert.notEqual(after, before, 'editManifest: the edit changed nothing');
  const sum = fixSum ? blake2b256(Buffer.from(after)) : m.sum;
  const mac = key ? blake2b256(Buffer.from(after), { master: key, subkey: 3 }) : m.mac;
  fs.writeFileSync(m.file, frameManifest(sum, mac, after));
}

/* Objects listed by the manifest, by kind, as { name, seq, bytes, path }. */
function manifestObjects(dir) {
  const { json } = readManifest(dir);
  const withPath = (o) => ({ ...o, path: path.join(dir, 'objects', o.name) });
  return {
    chunks: json.chunks.map(withPath),
    index: [...json.index.base, ...json.index.deltas].map(withPath),
  };
}


module.exports = {
  PYTHON,
  tmpDir,
  freshPath,
  cleanupTmp,
  keyFor,
  SEALS,
  newDb,
  loadDb,
  closeTracked,
  UNICODE_IDS,
  metadataFor,
  fill,
  churn,
  generationChanges,
  capture,
  assertState,
  searchAll,
  CRASH_DIM,
  crashBatch,
  crashBatchSize,
  crashSize,
  listFiles,
  isTmp,
  hashDir,
  allBytes,
  flipBit,
  truncateTo,
  blake2b256,
  readManifest,
  frameManifest,
  editManifest,
  manifestObjects,
  objectPages,
  chunkPages,
  BODY_AT,
};
