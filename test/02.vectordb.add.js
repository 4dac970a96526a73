'use strict';
/*
 * 02.vectordb.add.js: db.add(id, vector, metadata?): what is stored (copied
 * vectors, cosine normalisation, metadata as JSON), upsert, and which ids and
 * vectors are accepted. Rejections are covered in 08.vectordb.errors.js.
 */
const assert = require('node:assert/strict');
const h = require('./helpers');

describe('02 VectorDB#add', function () {
  it('stores a Float32Array and a number[] alike (l2: values kept exactly)', function () {
    const db = h.openDb({ dimension: 3, metric: 'l2' });
    db.add('f32', new Float32Array([0.1, -2, 3.5]));
    db.add('arr', [0.1, -2, 3.5]);
    assert.equal(db.size, 2);
    const want = Array.from(new Float32Array([0.1, -2, 3.5]));
    for (const id of ['f32', 'arr']) {
      const rec = db.get(id);
      assert.ok(rec.vector instanceof Float32Array, `${id}: vector is a Float32Array`);
      assert.deepEqual(Array.from(rec.vector), want, id);
    }
  });

  it('copies the input: changing the caller\'s array afterwards changes nothing', function () {
    const db = h.openDb({ dimension: 2, metric: 'l2', index: 'flat' });
    const v = new Float32Array([1, 2]);
    const arr = [3, 4];
    db.add('a', v);
    db.add('b', arr);
    v[0] = 100;
    arr[0] = 100;
    assert.deepEqual(Array.from(db.get('a').vector), [1, 2]);
    assert.deepEqual(Array.from(db.get('b').vector), [3, 4]);
    assert.equal(db.search([1, 2], 1)[0].distance, 0);
  });

  it('reads a Float32Array view at its own offset, not from the start of its buffer', function () {
    const db = h.openDb({ dimension: 2, metric: 'l2' });
    const buf = new Float32Array([9, 9, 1, 2, 7, 7]);
    db.add('view', buf.subarray(2, 4));
    assert.deepEqual(Array.from(db.get('view').vector), [1, 2]);
    const bytes = new ArrayBuffer(64);
    const unaligned = new Float32Array(bytes, 20, 2);
    unaligned.set([5, 6]);
    db.add('view2', unaligned);
    assert.deepEqual(Array.from(db.get('view2').vector), [5, 6]);
  });

  it('cosine stores the unit vector in the same direction', function () {
    const db = h.openDb({ dimension: 3, metric: 'cosine' });
    db.add('a', [3, 0, 4]);
    const v = db.get('a').vector;
    h.assertClose(v[0], 0.6, 'x', 1e-6);
    h.assertClose(v[1], 0, 'y', 1e-6);
    h.assertClose(v[2], 0.8, 'z', 1e-6);
    h.assertClose(h.norm(v), 1, 'norm', 1e-6);
  });

  it('l2 and dot do not normalise, and accept a zero vector', function () {
    for (const metric of ['l2', 'dot']) {
      const db = h.openDb({ dimension: 3, metric });
      db.add('a', [3, 0, 4]);
      assert.deepEqual(Array.from(db.get('a').vector), [3, 0, 4], metric);
      db.add('zero', [0, 0, 0]);
      assert.equal(db.size, 2, metric);
      assert.deepEqual(Array.from(db.get('zero').vector), [0, 0, 0], metric);
    }
  });

  describe('metadata', function () {
    const values = [
      ['an object', { title: 'doc', n: 1, nested: { arr: [1, 'two', null, true] } }],
      ['an array', [1, 2, { x: 'y' }]],
      ['a string', 'hello'],
      ['an empty string', ''],
      ['a number', 42.5],
      ['zero', 0],
      ['false', false],
      ['true', true],
      ['null', null],
      ['unicode', { s: 'héllo wörld ✓ 𝄞' }],
    ];
    for (const [what, value] of values) {
      it(`round-trips ${what}`, function () {
        const db = h.openDb({ dimension: 2 });
        db.add('a', [1, 0], value);
        assert.deepEqual(db.get('a').metadata, value);
      });
    }

    it('missing or undefined metadata comes back as null', function () {
      const db = h.openDb({ dimension: 2 });
      db.add('missing', [1, 0]);
      db.add('undef', [0, 1], undefined);
      assert.equal(db.get('missing').metadata, null);
      assert.equal(db.get('undef').metadata, null);
    });

    it('is stored as JSON: toJSON is applied, undefined properties dropped', function () {
      const db = h.openDb({ dimension: 2 });
      db.add('a', [1, 0], { when: new Date(0), gone: undefined, keep: 1 });
      assert.deepEqual(db.get('a').metadata, { when: '1970-01-01T00:00:00.000Z', keep: 1 });
    });

    it('is a copy: later changes to the caller\'s object do not leak in', function () {
      const db = h.openDb({ dimension: 2 });
      const meta = { tags: ['a'] };
      db.add('a', [1, 0], meta);
      meta.tags.push('b');
      meta.extra = true;
      assert.deepEqual(db.get('a').metadata, { tags: ['a'] });
    });

    it('each get returns a fresh copy', function () {
      const db = h.openDb({ dimension: 2 });
      db.add('a', [1, 0], { tags: ['a'] });
      const first = db.get('a').metadata;
      first.tags.push('mutated');
      const second = db.get('a').metadata;
      assert.notEqual(first, second);
      assert.deepEqual(second, { tags: ['a'] });
    });

    it('accepts a 1 MiB JSON document', function () {
      const db = h.openDb({ dimension: 2 });
      const big = { text: 'x'.repeat(1024 * 1024) };
      db.add('big', [1, 0], big);
      assert.equal(db.get('big').metadata.text.length, 1024 * 1024);
    });
  });

  describe('upsert', function () {
    it('the same id replaces vector and metadata; size does not change', function () {
      const db = h.openDb({ dimension: 2, metric: 'l2' });
      db.add('a', [1, 1], { v: 1 });
      db.add('b', [5, 5], { v: 'b' });
      db.add('a', [-3, 2], { v: 2 });
      assert.equal(db.size, 2);
      const rec = db.get('a');
      assert.deepEqual(Array.from(rec.vector), [-3, 2]);
      assert.deepEqual(rec.metadata, { v: 2 });
      assert.deepEqual(db.get('b').metadata, { v: 'b' });
    });

    it('upsert without metadata clears the old metadata to null', function () {
      const db = h.openDb({ dimension: 2 });
      db.add('a', [1, 0], { old: true });
      db.add('a', [0, 1]);
      assert.equal(db.get('a').metadata, null);
    });

    for (const index of h.INDEXES) {
      it(`${index}: search finds the new vector and never the old one, and the id once`, function () {
        const db = h.openDb({ dimension: 4, metric: 'l2', index });
        const vs = h.randomVectors(200, 4, 3);
        vs.forEach((v, i) => db.add(`v${i}`, v, { gen: 0 }));
        const old = vs[17];
        const fresh = new Float32Array([5, 5, 5, 5]);
        db.add('v17', fresh, { gen: 1 });
        assert.equal(db.size, 200);
        const top = db.search(fresh, 1)[0];
        assert.equal(top.id, 'v17');
        assert.equal(top.distance, 0);
        assert.deepEqual(top.metadata, { gen: 1 });
        const around = db.search(old, 200);
        assert.equal(around.length, 200);
        const hits = around.filter((r) => r.id === 'v17');
        assert.equal(hits.length, 1, 'v17 appears exactly once');
        h.assertClose(hits[0].distance, h.measure('l2', old, fresh).distance, 'v17 is at its new position');
        /* the old position must not be reported with distance 0 */
        assert.notEqual(around[0].id, 'v17');
      });
    }

    it('repeated upserts of one id keep size 1', function () {
      const db = h.openDb({ dimension: 3, metric: 'dot' });
      for (let i = 0; i < 500; i++) db.add('same', [i, 1, 2], { i });
      assert.equal(db.size, 1);
      assert.deepEqual(db.get('same').metadata, { i: 499 });
      assert.deepEqual(db.search([1, 0, 0], 10).map((r) => r.id), ['same']);
    });
  });

  describe('ids', function () {
    it('accepts unicode ids and ids that differ only in case or whitespace', function () {
      const db = h.openDb({ dimension: 2 });
      const ids = ['a', 'A', ' a', 'a ', 'é', 'e\u0301', '日本語', '🙂', 'a/b\\c', '0'];
      ids.forEach((id, i) => db.add(id, [1, i + 1], { id }));
      assert.equal(db.size, ids.length);
      for (const id of ids) {
        assert.equal(db.has(id), true, id);
        assert.deepEqual(db.get(id).metadata, { id });
        assert.equal(db.get(id).id, id);
      }
    });

    it('ids are whole strings: an embedded NUL does not truncate them', function () {
      const db = h.openDb({ dimension: 2 });
      db.add('a\u0000b', [1, 0], 1);
      db.add('a\u0000c', [0, 1], 2);
      db.add('a', [1, 1], 3);
      assert.equal(db.size, 3);
      assert.deepEqual(db.get('a\u0000b').metadata, 1);
      assert.deepEqual(db.get('a\u0000c').metadata, 2);
      assert.deepEqual(db.get('a').metadata, 3);
      const ids = db.search([1, 0], 3).map((r) => r.id).sort();
      assert.deepEqual(ids, ['a', 'a\u0000b', 'a\u0000c']);
    });

    it('ids with lone surrogates are either rejected (ERR_INVALID_ID) or kept distinct and returned unchanged', function () {
      /* 'a\uD800' and 'a\uDC00' are different strings, but both become
       * 'a\uFFFD' if converted to UTF-8 naively: they must not merge */
      const db = h.openDb({ dimension: 2, metric: 'l2' });
      const ids = ['a\uD800', 'a\uDC00', 'a\uFFFD'];
      const accepted = [];
      for (const [i, id] of ids.entries()) {
        try {
          db.add(id, [i, 0], { i });
          accepted.push([i, id]);
        } catch (e) {
          h.assertVecvaultError(e, 'ERR_INVALID_ID', `add(${JSON.stringify(id)})`);
          assert.ok(i < 2, 'a well-formed id was rejected');
        }
      }
      assert.equal(db.size, accepted.length, 'distinct ids merged into one');
      for (const [i, id] of accepted) {
        assert.equal(db.has(id), true);
        assert.deepEqual(db.get(id).metadata, { i }, `get(${JSON.stringify(id)})`);
        const [top] = db.search([i, 0], 1);
        assert.equal(top.id, id, `search returned ${JSON.stringify(top.id)} for ${JSON.stringify(id)}`);
      }
    });

    it('accepts an id of exactly 4096 UTF-8 bytes (ASCII and multi-byte)', function () {
      const db = h.openDb({ dimension: 2 });
      const ascii = 'x'.repeat(4096);
      const twoByte = 'é'.repeat(2048); /* 2 bytes each */
      const fourByte = '🙂'.repeat(1024); /* 4 bytes each */
      for (const id of [ascii, twoByte, fourByte]) {
        assert.equal(Buffer.byteLength(id, 'utf8'), 4096);
        db.add(id, [1, 0]);
        assert.equal(db.has(id), true);
        assert.equal(db.search([1, 0], 3).some((r) => r.id === id), true);
      }
      assert.equal(db.size, 3);
    });

    it('counts UTF-8 bytes, not characters: 2049 × "é" is too long', function () {
      const db = h.openDb({ dimension: 2 });
      const id = 'é'.repeat(2049);
      assert.equal(id.length, 2049);
      h.throwsCode(() => db.add(id, [1, 0]), 'ERR_INVALID_ID');
      h.throwsCode(() => db.add('x'.repeat(4097), [1, 0]), 'ERR_INVALID_ID');
      assert.equal(db.size, 0);
    });
  });

  it('add returns undefined', function () {
    const db = h.openDb({ dimension: 2 });
    assert.equal(db.add('a', [1, 0]), undefined);
  });

  it('size counts many distinct ids', function () {
    const db = h.openDb({ dimension: 8, metric: 'l2' });
    const vs = h.randomVectors(1000, 8, 5);
    vs.forEach((v, i) => db.add(`id-${i}`, v));
    assert.equal(db.size, 1000);
    assert.deepEqual(Array.from(db.get('id-999').vector), Array.from(vs[999]));
  });
});
