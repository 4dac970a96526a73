'use strict';
/*
 * 35.filter.language.js: the filter language on the JS side, without the
 * engine.
 *
 * Owns: parseFilterable's accepted and refused paths; compileFilter's exact
 * bytes (csrc/filter/filter.h), its folding of what matches everything, and
 * a typed ERR_INVALID_FILTER naming the clause for every bad or hostile
 * filter; encodeAttrs's exact bytes (csrc/filter/attr.h); the reference
 * evaluator's own table of examples; and a differential test: a naive
 * decoder and interpreter of programs and records here must agree with the
 * reference evaluator on thousands of seeded random filters and metadata.
 */
const assert = require('node:assert/strict');
const path = require('node:path');
const util = require('node:util');
const { ROOT } = require('./helpers');
const ref = require('./helpers/filter-ref');

const { parseFilterable, compileFilter, encodeAttrs, encodeAttrsInto, ByteWriter, FILTER_LIMITS, ATTR_LIMITS } = require(path.join(ROOT, 'lib', 'filter.js'));
const { VecvaultError } = require(path.join(ROOT, 'lib', 'errors.js'));

const FIELDS = parseFilterable(['lang', 'year', 'tags', 'author.name']);

/* fn() throws a VecvaultError with `code` and a message matching each of `parts`. */
function throwsCode(fn, code, ...parts) {
  let err;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, `expected ${code}, nothing was thrown`);
  assert.ok(err instanceof VecvaultError, `not a VecvaultError: ${err && err.stack}`);
  assert.equal(err.code, code, err.message);
  for (const p of parts) {
    if (p instanceof RegExp) assert.match(err.message, p);
    else assert.ok(err.message.includes(p), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(p)}`);
  }
  return err;
}

const badFilter = (filter, ...parts) => throwsCode(() => compileFilter(filter, FIELDS), 'ERR_INVALID_FILTER', ...parts);

function hex(...parts) {
  return Buffer.from(parts.join('').replace(/\s+/g, ''), 'hex');
}

function f64(x) {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return b.toString('hex');
}

/* ------------------------------------------------- naive decoder and interpreter */

function reader(buf) {
  let pos = 0;
  const r = {
    byte() {
      assert.ok(pos < buf.length, 'truncated');
      return buf[pos++];
    },
    varint() {
      let n = 0;
      let mul = 1;
      for (let i = 0; ; i++) {
        const b = r.byte();
        n += (b & 0x7f) * mul;
        mul *= 128;
        if (!(b & 0x80)) {
          assert.ok(i === 0 || b !== 0, 'varint not in its shortest form');
          return n;
        }
      }
    },
    bytes(n) {
      assert.ok(pos + n <= buf.length, 'truncated');
      pos += n;
      return buf.subarray(pos - n, pos);
    },
    end() {
      assert.equal(pos, buf.length, 'trailing bytes');
    },
  };
  return r;
}

function readValue(r) {
  const tag = r.byte();
  if (tag <= 2) return { tag };
  if (tag === 3) {
    const num = r.bytes(8).readDoubleLE(0);
    assert.ok(Number.isFinite(num), 'a non-finite number');
    assert.ok(!Object.is(num, -0), '-0 is stored as 0');
    return { tag, num };
  }
  assert.equal(tag, 4, `unknown value tag ${tag}`);
  const str = r.bytes(r.varint());
  assert.ok(str.length <= 65535);
  assert.equal(Buffer.from(str.toString('utf8')).compare(str), 0, 'invalid UTF-8');
  return { tag, str };
}

function decodeRecord(buf, nfields) {
  const r = reader(buf);
  const out = [];
  for (let f = 0; f < nfields; f++) {
    const n = r.varint();
    const values = [];
    for (let i = 1; i < n; i++) values.push(readValue(r));
    out.push({ present: n > 0, values });
  }
  r.end();
  return out;
}

function decodeProgram(buf, nfields) {
  const r = reader(buf);
  assert.deepEqual([...r.bytes(3)], [0x56, 0x46, 0x01], 'header');
  let nodes = 0;
  const node = (depth) => {
    assert.ok(depth <= FILTER_LIMITS.maxDepth, 'too deep');
    assert.ok(++nodes <= FILTER_LIMITS.maxClauses, 'too many nodes');
    const op = r.byte();
    const field = () => {
      const f = r.varint();
      assert.ok(f < nfields, 'field out of range');
      return f;
    };
    switch (op) {
      case 0:
        return { op };
      case 1:
      case 2: {
        const n = r.varint();
        assert.ok(n >= 1);
        return { op, kids: Array.from({ length: n }, () => node(depth + 1)) };
      }
      case 3:
        return { op, kid: node(depth + 1) };
      case 4:
        return { op, field: field(), value: readValue(r) };
      case 5: {
        const f = field();
        const n = r.varint();
        assert.ok(n >= 1 && n <= FILTER_LIMITS.maxIn);
        return { op, field: f, values: Array.from({ length: n }, () => readValue(r)) };
      }
      case 6: {
        const f = field();
        const cmp = r.byte();
        assert.ok(cmp <= 3);
        const value = readValue(r);
        assert.ok(value.tag === 3 || value.tag === 4, 'a CMP operand is a number or a string');
        return { op, field: f, cmp, value };
      }
      case 7:
        return { op, field: field() };
      default:
        assert.fail(`unknown node ${op}`);
    }
  };
  const root = node(1);
  r.end();
  return root;
}

function sameValue(a, b) {
  if (a.tag !== b.tag) return false;
  if (a.tag === 3) return a.num === b.num;
  if (a.tag === 4) return a.str.equals(b.str);
  return true;
}

function cmpValue(a, b) {
  return a.tag === 3 ? a.num - b.num : Buffer.compare(a.str, b.str);
}

function run(node, rec) {
  const eq = (field, v) => field.values.some((x) => sameValue(x, v)) || (v.tag === 0 && !field.present);
  switch (node.op) {
    case 0:
      return true;
    case 1:
      return node.kids.every((k) => run(k, rec));
    case 2:
      return node.kids.some((k) => run(k, rec));
    case 3:
      return !run(node.kid, rec);
    case 4:
      return eq(rec[node.field], node.value);
    case 5:
      return node.values.some((v) => eq(rec[node.field], v));
    case 6:
      return rec[node.field].values.some((x) => {
        if (x.tag !== node.value.tag) return false;
        const c = cmpValue(x, node.value);
        return [c > 0, c >= 0, c < 0, c <= 0][node.cmp];
      });
    default:
      return rec[node.field].present;
  }
}

/* ---------------------------------------------------------------- tests */

describe('filter language: parseFilterable', function () {
  it('accepts dotted paths, unicode, the limits exactly, and none', function () {
    assert.deepEqual(parseFilterable(undefined), []);
    assert.ok(Object.isFrozen(parseFilterable(['lang'])));
    assert.deepEqual(parseFilterable(['lang', 'author.name', 'a.b.c', 'é.ü', 'tags.0', '\u{1F600}']), ['lang', 'author.name', 'a.b.c', 'é.ü', 'tags.0', '\u{1F600}']);
    const many = Array.from({ length: ATTR_LIMITS.maxFields }, (_, i) => `f${i}`);
    assert.deepEqual(parseFilterable(many), many);
    const long = 'é'.repeat(128); // 256 bytes
    assert.deepEqual(parseFilterable([long]), [long]);
  });

  it('refuses what is not a list of distinct, well-formed paths, naming the entry', function () {
    const cases = [
      ['lang', /filterable must be an array/],
      [{ 0: 'lang' }, /filterable must be an array/],
      [null, /filterable must be an array/],
      [['ok', 1], /filterable\[1\] must be a string/],
      [[''], /filterable\[0\] is empty/],
      [['a', 'a..b'], /filterable\[1\] "a\.\.b" has an empty segment/],
      [['.a'], /empty segment/],
      [['a.'], /empty segment/],
      [['$a'], /filterable\[0\] "\$a" has a segment starting with "\$"/],
      [['a.$b'], /starting with "\$"/],
      [['__proto__'], /reserved segment "__proto__"/],
      [['a.constructor'], /reserved segment "constructor"/],
      [['prototype.x'], /reserved segment "prototype"/],
      [['a\0b'], /NUL/],
      [['\ud800x'], /lone UTF-16 surrogate/],
      [['é'.repeat(128) + 'x'], /longer than 256 UTF-8 bytes/],
      [Array.from({ length: 65 }, (_, i) => `f${i}`), /65 paths; at most 64/],
      [['lang', 'year', 'lang'], /filterable\[2\] "lang" is declared twice/],
    ];
    for (const [value, re] of cases) throwsCode(() => parseFilterable(value), 'ERR_INVALID_ARGUMENT', re);
  });
});

describe('filter language: compileFilter', function () {
  const EN = '04 02 656e';

  it('produces the documented bytes', function () {
    const cases = [
      [{ lang: 'en' }, `564601 04 00 ${EN}`],
      [{ lang: { $eq: 'en' } }, `564601 04 00 ${EN}`],
      [{ year: { $gte: 2020 } }, `564601 06 01 01 03 ${f64(2020)}`],
      [{ year: { $gt: 1.5, $lt: 'b' } }, `564601 01 02 06 01 00 03 ${f64(1.5)} 06 01 02 04 01 62`],
      [{ year: { $lte: -0 } }, `564601 06 01 03 03 ${f64(0)}`],
      [{ tags: { $in: ['a', null, true, false] } }, '564601 05 02 04 04 01 61 00 02 01'],
      [{ tags: { $nin: ['a', 2] } }, `564601 03 05 02 02 04 01 61 03 ${f64(2)}`],
      [{ 'author.name': { $exists: true } }, '564601 07 03'],
      [{ 'author.name': { $exists: false }, year: { $ne: true } }, '564601 01 02 03 07 03 03 04 01 02'],
      [{ $or: [{ lang: 'en' }, { year: null }] }, `564601 02 02 04 00 ${EN} 04 01 00`],
      [{ $and: [{ lang: 'en' }, { $not: { year: 1 } }] }, `564601 01 02 04 00 ${EN} 03 04 01 03 ${f64(1)}`],
      [{ year: { $not: { $gt: 5 } } }, `564601 03 06 01 00 03 ${f64(5)}`],
      // NOT NOT x is x
      [{ $not: { lang: { $not: { $eq: 'en' } } } }, `564601 04 00 ${EN}`],
      [{ $not: {} }, '564601 03 00'],
      // a lone surrogate is encoded as U+FFFD, astral characters as 4 bytes
      [{ lang: '\u{10000}\ud800' }, '564601 04 00 04 07 f0908080 efbfbd'],
      [{ $and: [{}, { lang: 'en' }] }, `564601 04 00 ${EN}`],
    ];
    for (const [filter, want] of cases) {
      assert.deepEqual(compileFilter(filter, FIELDS), hex(want), JSON.stringify(filter));
    }
    const big = compileFilter({ year: { $in: Array.from({ length: 200 }, (_, i) => i) } }, FIELDS);
    assert.deepEqual(big.subarray(0, 7), hex('564601 05 01 c801'));
    assert.equal(big.length, 7 + 200 * 9);
  });

  it('returns null for whatever matches everything', function () {
    for (const f of [undefined, {}, { $and: [{}] }, { $or: [{}, { lang: 'x' }] }, { $not: { $not: {} } }, { $and: [{}, { $and: [{}] }] }, Object.create(null)]) {
      assert.equal(compileFilter(f, FIELDS), null, JSON.stringify(f));
    }
  });

  it('names the bad clause and says what is allowed', function () {
    badFilter({ color: 'red' }, 'filter.color', '"color"', 'not declared filterable', '"lang", "year", "tags", "author.name"', 'filterable: ["color"');
    throwsCode(() => compileFilter({ lang: 'en' }, parseFilterable(undefined)), 'ERR_INVALID_FILTER', 'no filterable fields');
    badFilter({ $or: [{ lang: 'en' }, { year: { $gt: true } }] }, 'filter.$or[1].year.$gt', 'finite number or a string', 'got true');
    badFilter({ year: { $foo: 1 } }, 'filter.year.$foo', 'unknown operator "$foo"', '$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $not');
    badFilter({ $nor: [{ lang: 'x' }] }, 'filter.$nor', 'unknown operator "$nor"', '$and, $or, $not');
    badFilter({ $and: [] }, 'filter.$and', 'empty');
    badFilter({ $or: {} }, 'filter.$or', 'non-empty array of filter objects');
    badFilter({ $and: [{ lang: 'x' }, 1] }, 'filter.$and[1]', 'plain object', 'got 1');
    badFilter({ $not: [] }, 'filter.$not', 'plain object', 'an array');
    badFilter({ tags: { $in: [] } }, 'filter.tags.$in', 'empty');
    badFilter({ tags: { $in: 'a' } }, 'filter.tags.$in', 'non-empty array');
    badFilter({ tags: { $in: ['a', {}] } }, 'filter.tags.$in[1]', 'a string, a finite number, a boolean or null');
    badFilter({ tags: { $nin: ['a', [1]] } }, 'filter.tags.$nin[1]', 'an array');
    badFilter({ year: { $gt: null } }, 'filter.year.$gt', 'finite number or a string');
    badFilter({ year: { $lte: [1] } }, 'filter.year.$lte', 'an array');
    badFilter({ year: { $exists: 1 } }, 'filter.year.$exists', 'true or false');
    badFilter({ year: { $eq: {} } }, 'filter.year.$eq', 'a string, a finite number');
    badFilter({ year: { $ne: [1] } }, 'filter.year.$ne', 'an array');
    badFilter({ year: [2020, 2021] }, 'filter.year', 'operator object', 'an array');
    badFilter({ year: {} }, 'filter.year', 'empty object');
    badFilter({ year: NaN }, 'filter.year', 'finite number', 'NaN');
    badFilter({ year: { $gte: Infinity } }, 'filter.year.$gte', 'finite number');
    badFilter({ year: { $lt: -Infinity } }, 'filter.year.$lt', 'finite number');
    badFilter({ year: { $not: 5 } }, 'filter.year.$not', 'operator object');
    badFilter({ author: { name: 'x' } }, 'filter.author', 'not declared');
    badFilter({ 'author.name': { first: 'x' } }, 'filter.author.name.first', 'not an operator', '"author.name.first"');
    badFilter({ year: { $gt: 1, first: 2 } }, 'filter.year.first', 'not an operator');
    badFilter({ 'odd key': 1 }, 'filter["odd key"]', 'not declared');
  });

  it('refuses hostile filters with ERR_INVALID_FILTER, never another error', function () {
    let deep = { lang: 'x' };
    for (let i = 0; i < 100000; i++) deep = { $not: deep };
    badFilter(deep, 'nests deeper than 32');
    deep = { lang: 'x' };
    for (let i = 0; i < 100000; i++) deep = { $and: [deep] };
    badFilter(deep, 'filter.$and[0].$and[0]', 'nests deeper than 32');
    deep = { $gt: 1 };
    for (let i = 0; i < 100000; i++) deep = { $not: deep };
    badFilter({ year: deep }, 'filter.year.$not.$not', 'nests deeper than 32');
    deep = 1;
    for (let i = 0; i < 100000; i++) deep = { a: deep };
    badFilter({ year: deep }, 'filter.year.a', 'not an operator');

    // 32 nodes from the root to the deepest leaf is the most
    const chain = (levels) => {
      let f = { lang: 'x' };
      for (let i = 0; i < levels; i++) f = { $and: [f, { year: i }] };
      return f;
    };
    assert.ok(decodeProgram(compileFilter(chain(31), FIELDS), FIELDS.length));
    badFilter(chain(32), 'nests deeper than 32');
    badFilter({ tags: { $in: Array.from({ length: 70000 }, (_, i) => i) } }, 'filter.tags.$in', '70000 values', 'at most 65536');
    badFilter({ tags: { $nin: new Array(1e9) } }, 'filter.tags.$nin', 'at most 65536'); // refused before it is walked
    assert.ok(compileFilter({ tags: { $in: Array.from({ length: 65536 }, (_, i) => `t${i}`) } }, FIELDS).length > 65536);
    badFilter({ $or: Array.from({ length: 20001 }, () => ({ lang: 'x' })) }, 'filter.$or', 'at most 20000');
    badFilter({ $or: Array.from({ length: 19999 }, () => ({ lang: 'x' })), year: 1 }, 'longer than 20000 clauses');
    assert.ok(compileFilter({ $or: Array.from({ length: 19999 }, () => ({ lang: 'x' })) }, FIELDS));
    badFilter({ lang: 'x'.repeat(65536) }, 'filter.lang', 'longer than 65535 UTF-8 bytes');
    badFilter({ lang: 'é'.repeat(32768) }, 'longer than 65535 UTF-8 bytes');
    assert.ok(compileFilter({ lang: 'x'.repeat(65535) }, FIELDS));
    badFilter({ tags: { $in: Array.from({ length: 300 }, () => 'x'.repeat(60000)) } }, 'larger than 16777216 bytes');
    const nums = Array.from({ length: 65536 }, (_, i) => i); // 9 bytes each
    badFilter({ $or: Array.from({ length: 30 }, () => ({ tags: { $in: nums } })) }, 'filter.$or[28].tags.$in[', 'larger than 16777216 bytes');

    const polluted = JSON.parse('{"__proto__": {"$gt": 1}}');
    badFilter(polluted, 'filter.__proto__', 'not a field path', 'reserved segment');
    assert.equal({}.$gt, undefined);
    badFilter({ ['__proto__']: 1 }, 'filter.__proto__', 'not a field path');
    badFilter({ 'a..b': 1 }, 'filter["a..b"]', 'empty segment');
    badFilter({ [Symbol('x')]: 1 }, 'filter', 'symbol key');
    badFilter({ lang: Symbol('x') }, 'filter.lang', 'a symbol');
    badFilter({ lang: () => 'en' }, 'filter.lang', 'a function');
    badFilter({ lang: { $eq: () => 'en' } }, 'filter.lang.$eq', 'a function');
    badFilter({ year: 2020n }, 'filter.year', 'BigInt');
    badFilter({ year: { $in: [1, 2n] } }, 'filter.year.$in[1]', 'BigInt');
    badFilter({ year: new Date(0) }, 'filter.year', 'not a plain object');
    badFilter({ year: new Map([['$gt', 1]]) }, 'filter.year', 'a Map');
    for (const top of [null, [], [{ lang: 'x' }], new Map([['lang', 'x']]), 'lang', 5, true, () => 1, Object.create({ lang: 'en' }), new (class F {})()]) {
      badFilter(top, 'filter must be a plain object');
    }
    throwsCode(() => compileFilter([], FIELDS, 'options.filter'), 'ERR_INVALID_FILTER', 'options.filter must be');

    const throwing = {};
    Object.defineProperty(throwing, 'lang', { enumerable: true, get() { throw new TypeError('boom'); } });
    badFilter(throwing, 'filter could not be read: boom');
    badFilter({ $and: [new Proxy({}, { ownKeys() { throw new Error('trap'); } })] }, 'filter.$and[0] could not be read: trap');
    const opaque = new Proxy({}, { getPrototypeOf() { throw new Error('trap'); } });
    badFilter({ tags: { $in: ['a', opaque] } }, 'filter.tags.$in[1]', 'cannot be inspected');
    badFilter({ year: { $gt: opaque } }, 'filter.year.$gt', 'cannot be inspected');
    badFilter({ year: opaque }, 'filter.year could not be read: trap');
    badFilter({ $or: new Proxy([], { get(t, k) { if (k === 'length') return 1; throw new Error('no items'); } }) }, 'filter.$or could not be read');
  });

  it('reads each key once, only own enumerable ones, whatever Object.prototype holds', function () {
    let reads = 0;
    const f = { get lang() { reads++; return reads === 1 ? 'en' : { $foo: 1 }; } };
    assert.deepEqual(compileFilter(f, FIELDS), hex('564601 04 00 04 02 656e'));
    assert.equal(reads, 1);
    const hidden = { lang: 'en' };
    Object.defineProperty(hidden, 'year', { enumerable: false, value: { $foo: 1 } });
    assert.deepEqual(compileFilter(hidden, FIELDS), hex('564601 04 00 04 02 656e'));
    Object.prototype.$or = [{ year: 1 }];
    Object.prototype.year = { $gt: 'x' };
    try {
      assert.deepEqual(compileFilter({ lang: 'en' }, FIELDS), hex('564601 04 00 04 02 656e'));
      assert.equal(compileFilter({}, FIELDS), null);
    } finally {
      delete Object.prototype.$or;
      delete Object.prototype.year;
    }
  });
});

describe('filter language: encodeAttrs', function () {
  const rec = (meta) => encodeAttrs(meta, FIELDS);

  it('produces the documented bytes', function () {
    assert.deepEqual(rec({ lang: 'en', year: 2021, tags: ['a', 'b'], author: { name: 'x' } }),
      hex(`02 04 02 656e  02 03 ${f64(2021)}  03 04 01 61 04 01 62  02 04 01 78`));
    assert.deepEqual(rec({ year: -0, tags: [true, false, null, 1.5] }), hex(`00 02 03 ${f64(0)} 05 02 01 00 03 ${f64(1.5)} 00`));
    assert.deepEqual(rec({ lang: '\u{10000}\ud800' }), hex('02 04 07 f0908080 efbfbd 00 00 00'));
    assert.equal(encodeAttrs({ lang: 'x' }, parseFilterable([])), null);
  });

  it('tells missing from present-without-value from null', function () {
    for (const m of [undefined, null, {}, 'str', 5, { other: 1 }, { lang: undefined, year: () => 1 }]) {
      assert.deepEqual(rec(m), hex('00 00 00 00'), String(m));
    }
    // null is a value; [] and {} are present with no value; author: {} lacks name
    assert.deepEqual(rec({ lang: null, year: {}, tags: [], author: {} }), hex('02 00  01  01  00'));
    assert.deepEqual(rec({ author: { name: { first: 'x' } } }), hex('00 00 00 01'));
    assert.deepEqual(rec({ author: { name: [] } }), hex('00 00 00 01'));
    assert.deepEqual(rec({ author: [{}, { name: [[1], { a: 1 }] }] }), hex('00 00 00 01'));
    assert.deepEqual(rec({ author: 'x' }), hex('00 00 00 00'));
    // as JSON stores them: NaN is null, undefined in an array is null
    assert.deepEqual(rec({ year: NaN, tags: [undefined, Infinity] }), hex('00 02 00 03 00 00 00'));
  });

  it('walks arrays of objects, keeps repeats, skips nested arrays', function () {
    assert.deepEqual(rec({ author: [{ name: 'x' }, { name: ['y', 'x'] }, { other: 1 }, 'str', [{ name: 'z' }], null] }),
      hex('00 00 00 04 04 01 78 04 01 79 04 01 78'));
    assert.deepEqual(rec({ tags: ['a', 'a', 1, 1, [2], { x: 1 }] }), hex(`00 00 05 04 01 61 04 01 61 03 ${f64(1)} 03 ${f64(1)} 00`));
    // "tags.0" is an object key, not an array index
    const F = parseFilterable(['tags.0', 'a.b']);
    assert.deepEqual(encodeAttrs({ tags: ['x'], a: [[{ b: 1 }], { b: [true] }] }, F), hex('00 02 02'));
    assert.deepEqual(encodeAttrs({ tags: { 0: 'x' }, a: { b: {} } }, F), hex('02 04 01 78 01'));
  });

  it('writes long counts and strings with multi-byte varints', function () {
    const many = rec({ tags: new Array(200).fill(true) });
    assert.deepEqual(many, Buffer.concat([hex('00 00 c901'), Buffer.alloc(200, 2), hex('00')]));
    const x100 = 'x'.repeat(100);
    assert.deepEqual(rec({ lang: x100 }), Buffer.concat([hex('02 04 64'), Buffer.from(x100), hex('00 00 00')]));
    const e42 = 'é'.repeat(42); // 84 bytes, short enough for the unmeasured path
    assert.deepEqual(rec({ lang: e42 }), Buffer.concat([hex('02 04 54'), Buffer.from(e42), hex('00 00 00')]));
    const e64 = 'é'.repeat(64); // 64 UTF-16 units, 128 bytes: a two-byte length
    assert.deepEqual(rec({ lang: e64 }), Buffer.concat([hex('02 04 8001'), Buffer.from(e64), hex('00 00 00')]));
    const x300 = 'x'.repeat(300);
    assert.deepEqual(rec({ tags: [x300, 'a'] }), Buffer.concat([hex('00 00 03 04 ac02'), Buffer.from(x300), hex('04 01 61 00')]));
    const most = rec({ tags: new Array(ATTR_LIMITS.maxValues).fill(null) });
    assert.deepEqual(most.subarray(0, 4), hex('00 00 8120'));
  });

  it('refuses a field past its limits with ERR_INVALID_METADATA, and the writer keeps whole records', function () {
    throwsCode(() => rec({ tags: new Array(ATTR_LIMITS.maxValues + 1).fill(1) }), 'ERR_INVALID_METADATA', 'metadata.tags', 'more than 4096 values');
    throwsCode(() => rec({ author: { name: 'x'.repeat(65536) } }), 'ERR_INVALID_METADATA', 'metadata.author.name', 'longer than 65535');
    throwsCode(() => encodeAttrs({ lang: 'é'.repeat(40000) }, FIELDS, 'items[3].metadata'), 'ERR_INVALID_METADATA', 'items[3].metadata.lang');
    assert.equal(rec({ lang: 'x'.repeat(65535) }).length, 1 + 1 + 3 + 65535 + 3);
    const w = new ByteWriter(4);
    assert.equal(encodeAttrsInto(w, { lang: 'en' }, FIELDS), 0);
    assert.throws(() => encodeAttrsInto(w, { lang: 'a', tags: new Array(5000).fill(1) }, FIELDS), { code: 'ERR_INVALID_METADATA' });
    assert.equal(encodeAttrsInto(w, { year: 1 }, FIELDS), 8);
    assert.deepEqual(w.take(), Buffer.concat([rec({ lang: 'en' }), rec({ year: 1 })]));
  });
});

describe('filter language: the reference evaluator', function () {
  const F = ref.FIELDS;
  const table = {
    implicit: [
      [{ lang: 'en' }, { lang: 'en' }, true],
      [{ lang: 'en' }, { lang: 'de' }, false],
      [{ lang: 'en' }, { lang: ['de', 'en'] }, true],
      [{ lang: 'en' }, { lang: [['en']] }, false],
      [{ lang: 'en' }, {}, false],
      [{ year: 1 }, { year: '1' }, false],
      [{ year: 0 }, { year: -0 }, true],
      [{ lang: null }, {}, true],
      [{ lang: null }, { lang: null }, true],
      [{ lang: null }, { lang: [] }, false],
      [{ lang: null }, { lang: [null] }, true],
      [{ flag: true }, { flag: 1 }, false],
      [{ lang: '\uFFFD' }, { lang: '\ud800' }, true],
    ],
    $eq: [
      [{ 'author.name': { $eq: 'x' } }, { author: { name: 'x' } }, true],
      [{ 'author.name': { $eq: 'x' } }, { author: [{ name: 'y' }, { name: 'x' }] }, true],
      [{ 'author.name': { $eq: 'x' } }, { author: [[{ name: 'x' }]] }, false],
      [{ 'author.name': { $eq: 'x' } }, { author: { name: { x: 1 } } }, false],
      [{ 'author.name': { $eq: null } }, { author: {} }, true],
      [{ 'author.name': { $eq: null } }, { author: [{ name: 1 }, {}] }, false],
      [{ 'author.name': { $eq: null } }, { author: 'x' }, true],
      [{ 'a.b.c': { $eq: 2 } }, { a: [{ b: [{ c: 1 }, { c: [2] }] }] }, true],
      [{ 'a.b.c': { $eq: 2 } }, { a: { b: { c: { d: 2 } } } }, false],
      [{ year: { $eq: 1 } }, { year: true }, false],
      [{ lang: { $eq: 'e\u0301' } }, { lang: 'é' }, false],
      [{ year: { $eq: 2 } }, { year: [1, 2, 2] }, true],
    ],
    $ne: [
      [{ lang: { $ne: 'en' } }, { lang: 'de' }, true],
      [{ lang: { $ne: 'en' } }, { lang: 'en' }, false],
      [{ lang: { $ne: 'en' } }, {}, true],
      [{ lang: { $ne: 'en' } }, { lang: ['de', 'en'] }, false],
      [{ lang: { $ne: 'en' } }, { lang: [] }, true],
      [{ lang: { $ne: null } }, {}, false],
      [{ lang: { $ne: null } }, { lang: null }, false],
      [{ lang: { $ne: null } }, { lang: [] }, true],
      [{ lang: { $ne: null } }, { lang: 'x' }, true],
      [{ year: { $ne: 1 } }, { year: '1' }, true],
      [{ year: { $ne: -0 } }, { year: 0 }, false],
      [{ flag: { $ne: false } }, { flag: [true, false] }, false],
    ],
    range: [
      [{ year: { $gt: 2020 } }, { year: 2021 }, true],
      [{ year: { $gt: 2020 } }, { year: 2020 }, false],
      [{ year: { $gte: 2020 } }, { year: 2020 }, true],
      [{ year: { $gt: 2020 } }, { year: '2021' }, false],
      [{ year: { $gt: '2020' } }, { year: '2021' }, true],
      [{ year: { $gt: '2020' } }, { year: 2021 }, false],
      [{ year: { $lt: 1 } }, { year: null }, false],
      [{ year: { $lt: 1 } }, { year: false }, false],
      [{ year: { $lt: 1 } }, {}, false],
      [{ year: { $lt: 0 } }, { year: -0 }, false],
      [{ year: { $lte: 0 } }, { year: -0 }, true],
      [{ year: { $gt: 5, $lt: 10 } }, { year: [1, 20] }, true], // each operator may match a different element, as in MongoDB
      [{ lang: { $gt: '\uFFFF' } }, { lang: '\u{10000}' }, true], // code point order, not UTF-16
      [{ lang: { $lt: '\u{10000}' } }, { lang: '\uFFFF' }, true],
      [{ lang: { $gt: 'a' } }, { lang: 'ab' }, true],
      [{ lang: { $lt: 'a' } }, { lang: '' }, true],
      [{ lang: { $gt: 'Z' } }, { lang: 'a' }, true],
      [{ lang: { $gt: '\uFFFD' } }, { lang: '\ud800' }, false],
    ],
    $in: [
      [{ tags: { $in: ['a', 'c'] } }, { tags: ['b', 'c'] }, true],
      [{ tags: { $in: ['a', 'c'] } }, { tags: ['b'] }, false],
      [{ tags: { $in: ['a', 'c'] } }, { tags: 'a' }, true],
      [{ tags: { $in: ['a', null] } }, {}, true],
      [{ tags: { $in: ['a'] } }, {}, false],
      [{ tags: { $in: [1] } }, { tags: ['1'] }, false],
      [{ tags: { $nin: ['a', 'c'] } }, { tags: ['b'] }, true],
      [{ tags: { $nin: ['a', 'c'] } }, { tags: ['b', 'a'] }, false],
      [{ tags: { $nin: ['a'] } }, {}, true],
      [{ tags: { $nin: ['a', null] } }, {}, false],
      [{ tags: { $nin: [null] } }, { tags: [] }, true],
      [{ tags: { $in: [true] } }, { tags: [false, true] }, true],
    ],
    $exists: [
      [{ lang: { $exists: true } }, { lang: null }, true],
      [{ lang: { $exists: true } }, { lang: [] }, true],
      [{ lang: { $exists: true } }, { lang: {} }, true],
      [{ lang: { $exists: true } }, {}, false],
      [{ lang: { $exists: false } }, {}, true],
      [{ lang: { $exists: false } }, { lang: 0 }, false],
      [{ 'author.name': { $exists: true } }, { author: [] }, false],
      [{ 'author.name': { $exists: true } }, { author: [1, { name: [] }] }, true],
      [{ 'author.name': { $exists: true } }, { author: [[{ name: 1 }]] }, false],
      [{ 'author.name': { $exists: false } }, { author: 'name' }, true],
      [{ lang: { $exists: true } }, null, false],
      [{ lang: { $exists: true } }, { lang: undefined }, false],
    ],
    logic: [
      [{}, {}, true],
      [{ lang: 'en', year: 1 }, { lang: 'en', year: 1 }, true],
      [{ lang: 'en', year: 1 }, { lang: 'en', year: 2 }, false],
      [{ $and: [{ lang: 'en' }, { year: 1 }] }, { lang: 'en', year: 1 }, true],
      [{ $or: [{ lang: 'en' }, { year: 1 }] }, { year: 1 }, true],
      [{ $or: [{ lang: 'en' }, { year: 1 }] }, { year: 2 }, false],
      [{ $not: { lang: 'en' } }, {}, true],
      [{ $not: { lang: 'en' } }, { lang: ['en'] }, false],
      [{ year: { $not: { $gt: 5 } } }, { year: 3 }, true],
      [{ year: { $not: { $gt: 5 } } }, { year: 'x' }, true],
      [{ year: { $not: { $gt: 5 } } }, {}, true],
      [{ year: { $not: { $gt: 5, $lt: 10 } } }, { year: 7 }, false],
      [{ $or: [{}, { lang: 'x' }] }, {}, true],
      [{ $not: {} }, {}, false],
    ],
  };

  for (const [name, rows] of Object.entries(table)) {
    it(`${name}: ${rows.length} examples, and the compiled program agrees`, function () {
      for (const [filter, meta, want] of rows) {
        const what = `${JSON.stringify(filter)} on ${JSON.stringify(meta)}`;
        assert.equal(ref.matches(filter, meta, F), want, `reference: ${what}`);
        const F2 = parseFilterable(F);
        const prog = compileFilter(filter, F2);
        const got = prog === null ? true : run(decodeProgram(prog, F.length), decodeRecord(encodeAttrs(meta, F2), F.length));
        assert.equal(got, want, `compiled: ${what}`);
      }
    });
  }

  it('refuses a field outside the declared ones', function () {
    assert.throws(() => ref.matches({ color: 1 }, {}, ['lang']), /not filterable/);
  });
});

describe('filter language: compiler and encoder against the reference', function () {
  it('agree on 24000 seeded random (filter, metadata) pairs', function () {
    const fields = parseFilterable(ref.FIELDS);
    const r = ref.rng(35);
    const metas = Array.from({ length: 60 }, () => ref.randomMetadata(r));
    const recs = metas.map((m) => decodeRecord(encodeAttrs(m, fields), fields.length));
    let matched = 0;
    let total = 0;
    for (let i = 0; i < 400; i++) {
      const filter = ref.randomFilter(r, fields);
      const prog = compileFilter(filter, fields);
      const root = prog === null ? null : decodeProgram(prog, fields.length);
      for (let j = 0; j < metas.length; j++) {
        const want = ref.matches(filter, metas[j], fields);
        const got = root === null ? true : run(root, recs[j]);
        if (got !== want) {
          assert.fail(`filter ${JSON.stringify(filter)} on metadata ${JSON.stringify(metas[j])}: compiled ${got}, reference ${want}`);
        }
        matched += want ? 1 : 0;
        total++;
      }
    }
    // Both outcomes are common, so the comparison means something.
    assert.ok(matched > total * 0.15 && matched < total * 0.85, `${matched} of ${total} matched`);
  });

  it('any JS value as a filter either compiles to a program that agrees with the reference, or is ERR_INVALID_FILTER', function () {
    const fields = parseFilterable(ref.FIELDS);
    const r = ref.rng(1235);
    const KEYS = [...ref.FIELDS, '$and', '$or', '$not', '$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists', '$nor', '$regex', 'color', '', '__proto__', 'author', 'a.b', 'lang.x'];
    const junk = (depth) => {
      const x = r();
      if (depth > 4 || x < 0.3) {
        return [1, -0, 'en', 'a', '\ud800', null, true, false, undefined, NaN, Infinity, 2n, Symbol('s'), () => 1, new Date(0), new Map(), [], 2021][r.int(18)];
      }
      if (x < 0.45) return Array.from({ length: r.int(3) }, () => junk(depth + 1));
      const o = {};
      for (let i = r.int(3); i >= 0; i--) Object.defineProperty(o, KEYS[r.int(KEYS.length)], { value: junk(depth + 1), enumerable: true, configurable: true });
      return o;
    };
    const metas = Array.from({ length: 40 }, () => ref.randomMetadata(r));
    const recs = metas.map((m) => decodeRecord(encodeAttrs(m, fields), fields.length));
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      const filter = junk(0);
      let prog;
      try {
        prog = compileFilter(filter, fields);
      } catch (err) {
        assert.ok(err instanceof VecvaultError && err.code === 'ERR_INVALID_FILTER', `${String(err && err.stack)}`);
        assert.ok(err.message.startsWith('filter'), err.message);
        continue;
      }
      accepted++;
      const root = prog === null ? null : decodeProgram(prog, fields.length);
      metas.forEach((m, j) => {
        const got = root === null ? true : run(root, recs[j]);
        assert.equal(got, ref.matches(filter, m, fields), `${util.inspect(filter, { depth: 9 })} on ${JSON.stringify(m)}`);
      });
    }
    assert.ok(accepted > 300, `only ${accepted} accepted`);
  });

  it('the generators cover the hard cases', function () {
    const r = ref.rng(7);
    const seen = new Set();
    const fields = ref.FIELDS;
    const note = (v) => {
      if (Object.is(v, -0)) seen.add('-0');
      if (typeof v === 'string' && /\p{Surrogate}/u.test(v)) seen.add('lone surrogate');
      if (typeof v === 'string' && v.codePointAt(0) > 0xffff) seen.add('astral');
      if (Array.isArray(v)) seen.add(v.length === 0 ? 'empty array' : new Set(v).size < v.length ? 'repeats' : 'array');
      if (v === null) seen.add('null');
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) seen.add('empty object');
    };
    for (let i = 0; i < 500; i++) {
      const m = ref.randomMetadata(r);
      JSON.stringify(m, (k, v) => (note(v), v));
      if (m && typeof m.year === 'string') seen.add('year as string');
      if (m && typeof m.year === 'number') seen.add('year as number');
      if (m && Array.isArray(m.author) && m.author.some((e) => e && e.name !== undefined)) seen.add('array of objects');
      if (m && !('lang' in m)) seen.add('missing');
      const f = JSON.stringify(ref.randomFilter(r, fields));
      for (const op of ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists', '$not', '$and', '$or']) if (f.includes(`"${op}"`)) seen.add(op);
    }
    for (const want of ['-0', 'lone surrogate', 'astral', 'empty array', 'repeats', 'null', 'empty object', 'year as string', 'year as number', 'array of objects', 'missing', '$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists', '$not', '$and', '$or']) {
      assert.ok(seen.has(want), `never generated: ${want}`);
    }
  });
});
