'use strict';
/*
 * 19.metadata.roundtrip.js: metadata comes back exactly as it went in.
 *
 * Owns: every JSON value (including '', 0, false, [], {}, nested and
 * Unicode) through add, addBatch, addBatchAsync, get and every search, in
 * memory and after save + load (eager and lazy, encrypted and not);
 * undefined / null / missing meaning "no metadata"; and what a session whose
 * stored metadata is not JSON reports. Such a session is made the way
 * docs/FORMAT.md allows anyone to: an unencrypted chunk object is decoded,
 * one row's `meta` text is replaced, and the object is re-encoded under its
 * new content address, with the manifest's entry and sum rewritten.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

const DIM = 4;

/* Every kind of JSON value, and the awkward ones above all. */
const VALUES = [
  '', 0, -0.5, false, true, [], {}, 'x', ' ', '""', 'null', '0',
  [null], [[]], [{}], { '': '' }, { a: null }, { nested: { deep: [1, '', false, { x: [] }] } },
  'ünïcødé 🦄 \u2028\u2029 \t\n', { '🔑': '值' }, 1e300, -1e-300, Number.MAX_SAFE_INTEGER,
];

const ids = VALUES.map((_, i) => `m${i}`);
const vectors = h.randomVectors(VALUES.length + 3, DIM, 19);

/* The value as JSON gives it back (what every read must return). */
const expected = (v) => (v === undefined || v === null ? null : JSON.parse(JSON.stringify(v)));

function checkAll(db, what) {
  VALUES.forEach((v, i) => {
    const got = db.get(ids[i]);
    assert.ok(got, `${what}: ${ids[i]} missing`);
    assert.deepEqual(got.metadata, expected(v), `${what}: get(${ids[i]}) of ${JSON.stringify(v)}`);
    if (Object.is(v, -0.5)) assert.ok(Object.is(got.metadata, -0.5));
  });
  /* Every search path: search each vector for itself. */
  const byId = new Map();
  for (let i = 0; i < VALUES.length; i++) {
    const [hit] = db.search(vectors[i], 1, { efSearch: 200 });
    byId.set(hit.id, hit.metadata);
  }
  const all = db.searchBatch(vectors.slice(0, VALUES.length), VALUES.length + 3, { efSearch: 200 });
  for (const results of all) for (const r of results) if (r.id.startsWith('m')) assert.deepEqual(r.metadata, expected(VALUES[+r.id.slice(1)]), `${what}: searchBatch ${r.id}`);
  for (const [id, m] of byId) if (id.startsWith('m')) assert.deepEqual(m, expected(VALUES[+id.slice(1)]), `${what}: search ${id}`);
}

async function checkAsync(db, what) {
  for (let i = 0; i < VALUES.length; i += 5) {
    const results = await db.searchAsync(vectors[i], VALUES.length + 3, { efSearch: 200 });
    for (const r of results) if (r.id.startsWith('m')) assert.deepEqual(r.metadata, expected(VALUES[+r.id.slice(1)]), `${what}: searchAsync ${r.id}`);
  }
  const batches = await db.searchBatchAsync(vectors.slice(0, 3), VALUES.length + 3, { efSearch: 200 });
  for (const results of batches) for (const r of results) if (r.id.startsWith('m')) assert.deepEqual(r.metadata, expected(VALUES[+r.id.slice(1)]), `${what}: searchBatchAsync ${r.id}`);
}

/* The three "no metadata" spellings, beside the values. */
function addNone(db) {
  db.add('none-missing', vectors[VALUES.length]);
  db.add('none-undefined', vectors[VALUES.length + 1], undefined);
  db.add('none-null', vectors[VALUES.length + 2], null);
}

function checkNone(db, what) {
  for (const id of ['none-missing', 'none-undefined', 'none-null']) assert.equal(db.get(id).metadata, null, `${what}: ${id}`);
}

/* ------------------------------------------------ hand-written chunks */

/*
 * Replaces the `meta` of `id`'s row in the unencrypted chunk that holds it
 * with `text` (a string, or null for CBOR null) and re-addresses the object
 * (docs/FORMAT.md §4.2 and §5.1): the page holding the row re-encoded, its
 * length and BLAKE2b-128 check in the page table, new name = BLAKE2b-256 of
 * header and table (the table keeps its length), manifest entry and sum
 * rewritten.
 */
const PY_REWRITE = `
import sys, json, hashlib, cbor2
path, want_id, text = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
data = open(path, 'rb').read()
assert data[:4] == b'VVOB' and data[4] == 2 and data[6] == 0, 'not an unencrypted paged object'
npages, tlen = int.from_bytes(data[24:28], 'little'), int.from_bytes(data[28:32], 'little')
head, table = data[:32], cbor2.loads(data[32:32 + tlen])
lens = [int.from_bytes(table['bytes'][4 * i:4 * i + 4], 'little') for i in range(npages)]
pages, off = [], 32 + tlen
for n in lens:
    pages.append(data[off:off + n])
    off += n
found = None
for p, unit in enumerate(pages):
    chunk = cbor2.loads(unit)
    rows = [i for i, x in enumerate(chunk['ids']) if x == want_id]
    if rows:
        chunk['meta'][rows[0]] = text
        pages[p] = cbor2.dumps(chunk)
        found = p
        break
if found is None:
    print(json.dumps(None)); sys.exit(0)
lens[found] = len(pages[found])
table['bytes'] = b''.join(n.to_bytes(4, 'little') for n in lens)
checks = bytearray(table['checks'])
checks[16 * found:16 * found + 16] = hashlib.blake2b(pages[found], digest_size=16).digest()
table['checks'] = bytes(checks)
tb = cbor2.dumps(table)
assert len(tb) == tlen
out = head + tb + b''.join(pages)
name = hashlib.blake2b(head + tb, digest_size=32).hexdigest()
open(path.rsplit('/', 1)[0] + '/' + name, 'wb').write(out)
print(json.dumps({'name': name, 'bytes': len(out)}))
`;

function rewriteMeta(dir, id, text) {
  for (const c of s.manifestObjects(dir).chunks) {
    const r = spawnSync(s.PYTHON, ['-c', PY_REWRITE, c.path, id, JSON.stringify(text)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`python3 chunk rewrite failed: ${r.stderr || r.error}`);
    const made = JSON.parse(r.stdout);
    if (made === null) continue;
    s.editManifest(dir, (body) => {
      const entry = new RegExp(`"name":"${c.name}"(,"seq":\\d+,"count":\\d+,"bytes":)${c.bytes},`);
      assert.match(body, entry, 'chunk entry in the manifest');
      return body.replace(entry, `"name":"${made.name}"$1${made.bytes},`);
    });
    fs.rmSync(c.path);
    return made.name;
  }
  throw new Error(`no chunk holds ${id}`);
}

/* An unencrypted session of a few ids with JSON metadata; `bad` is then rewritten. */
async function sessionWith(bad, text) {
  const dir = s.freshPath('meta-bad');
  const db = s.newDb({ dimension: DIM, encryptAtRest: false, threads: 1, chunkSize: 4 });
  db.addBatch(h.randomVectors(10, DIM, 7).map((vector, i) => ({ id: `r${i}`, vector, metadata: { row: i } })));
  await db.save(dir);
  const object = rewriteMeta(dir, bad, text);
  return { dir, object, vector: db.get(bad).vector };
}

describe('19 metadata round trip', function () {
  it('every JSON value comes back exactly through add, get and every search', async function () {
    const db = s.newDb({ dimension: DIM, encryptAtRest: false, threads: 1 });
    VALUES.forEach((v, i) => db.add(ids[i], vectors[i], v));
    addNone(db);
    checkAll(db, 'add');
    checkNone(db, 'add');
    await checkAsync(db, 'add');
  });

  it('and through addBatch and addBatchAsync', async function () {
    const items = VALUES.map((metadata, i) => ({ id: ids[i], vector: vectors[i], metadata }));
    const a = s.newDb({ dimension: DIM, encryptAtRest: false, threads: 2 });
    a.addBatch(items);
    checkAll(a, 'addBatch');
    const b = s.newDb({ dimension: DIM, encryptAtRest: false, threads: 2 });
    await b.addBatchAsync(items);
    checkAll(b, 'addBatchAsync');
    await checkAsync(b, 'addBatchAsync');
    /* an item without the field, with undefined and with null: no metadata */
    a.addBatch([{ id: 'none-missing', vector: vectors[0] }, { id: 'none-undefined', vector: vectors[1], metadata: undefined }, { id: 'none-null', vector: vectors[2], metadata: null }]);
    checkNone(a, 'addBatch');
  });

  it('replacing metadata with a falsy value replaces it (and with none, removes it)', function () {
    const db = s.newDb({ dimension: DIM, encryptAtRest: false, threads: 1 });
    db.add('u', vectors[0], { big: 'value' });
    for (const v of ['', 0, false, [], {}]) {
      db.add('u', vectors[0], v);
      assert.deepEqual(db.get('u').metadata, v);
    }
    db.add('u', vectors[0]);
    assert.equal(db.get('u').metadata, null);
  });

  for (const seal of ['none', 'key']) {
    it(`survives save and load, eager and lazy (${seal === 'none' ? 'unencrypted' : 'encrypted'})`, async function () {
      const db = s.newDb({ dimension: DIM, threads: 1, chunkSize: 5, ...s.SEALS[seal].db });
      VALUES.forEach((v, i) => db.add(ids[i], vectors[i], v));
      addNone(db);
      const dir = s.freshPath(`meta-rt-${seal}`);
      await db.save(dir);
      /* an incremental generation rewrites some rows with other falsy values */
      db.add(ids[1], vectors[1], VALUES[1]);
      await db.save(dir);
      for (const lazy of [false, true]) {
        const what = `${seal} lazy=${lazy}`;
        /* a tiny cache makes the lazy reads go to storage again and again */
        const loaded = await s.loadDb(dir, { ...s.SEALS[seal].load, lazy, cacheSizeMb: 0.0001 });
        checkAll(loaded, what);
        checkNone(loaded, what);
        await checkAsync(loaded, what);
      }
    });
  }

  describe('stored metadata that is not JSON', function () {
    for (const lazy of [false, true]) {
      it(`get() and every search report ERR_METADATA_CORRUPT naming the id (lazy: ${lazy})`, async function () {
        const { dir, vector } = await sessionWith('r6', '{"row": 6');
        const db = await s.loadDb(dir, { lazy });
        const err = h.throwsCode(() => db.get('r6'), 'ERR_METADATA_CORRUPT');
        assert.match(err.message, /"r6"/);
        assert.ok(err.cause instanceof SyntaxError, 'the parse error is the cause');
        h.throwsCode(() => db.search(vector, 1, { efSearch: 50 }), 'ERR_METADATA_CORRUPT');
        h.throwsCode(() => db.searchBatch([vector], 3, { efSearch: 50 }), 'ERR_METADATA_CORRUPT');
        await h.rejectsCode(() => db.searchAsync(vector, 1, { efSearch: 50 }), 'ERR_METADATA_CORRUPT');
        await h.rejectsCode(() => db.searchBatchAsync([vector], 1, { efSearch: 50 }), 'ERR_METADATA_CORRUPT');
        /* the rest of the database is unharmed */
        assert.deepEqual(db.get('r5').metadata, { row: 5 });
        assert.equal(db.has('r6'), true);
        /* and replacing the record's metadata repairs it */
        db.add('r6', vector, { row: 'fixed' });
        assert.deepEqual(db.get('r6').metadata, { row: 'fixed' });
      });
    }

    it('an empty metadata text is not JSON either: ERR_CHUNK_CORRUPT naming the object, never null', async function () {
      /* vecvault never writes one (JSON text is never empty); reading it as
       * "no metadata" would hide the damage */
      const { dir, object } = await sessionWith('r2', '');
      const eager = await h.rejectsCode(() => VectorDB.load(dir, { lazy: false }), 'ERR_CHUNK_CORRUPT');
      assert.ok(eager.message.includes(object.slice(0, 16)) || eager.message.includes(object), `names the object: ${eager.message}`);
      const db = await s.loadDb(dir, { lazy: true });
      h.throwsCode(() => db.get('r2'), 'ERR_CHUNK_CORRUPT');
    });

    it('the C layer refuses present-but-empty metadata instead of storing "none"', function () {
      /* The JS layer never passes one; the engine must not collapse it
       * silently either. The binding is the C API's caller here. */
      const native = require(path.join(h.ROOT, 'lib', 'native.js'));
      const n = new native.NativeDB(DIM, 1, 1, 16, 20, 20, 1, 100);
      try {
        h.throwsCode(() => n.add('e', new Float32Array([1, 2, 3, 4]), ''), 'ERR_INVALID_METADATA');
        assert.equal(n.has('e'), false);
      } finally {
        n.close();
      }
    });
  });
});
