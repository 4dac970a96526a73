'use strict';
/*
 * test/helpers/filter-ref.js: the reference evaluator of the filter
 * language, and seeded generators of hard metadata and filters.
 *
 * Owns: `matches(filter, metadata, fields?)`, written straight from the
 * documented semantics on JS values (docs/FILTER.md), independently of
 * lib/filter.js and of the engine: the suites compare both against it. It
 * trusts its input to be a valid filter (validation is lib/filter.js's job)
 * and throws a plain Error for a field outside `fields`.
 *
 * Semantics, per field path: resolve it in the metadata (through arrays of
 * objects), giving a set of scalar values and whether the path is present;
 * then $eq x: some value === x (null also matches a missing path), $ne: not
 * $eq, $gt/$gte/$lt/$lte: some value of x's type compares so (strings by
 * code point), $in: $eq of any, $nin: not $in, $exists: present or not.
 * Metadata counts as JSON stores it: NaN and infinities are null, a property
 * holding undefined (or a function) is absent, the same in an array is null.
 */
const { rng } = require('./index');

/* -------------------------------------------------------- path resolution */

function isObj(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function droppedByJson(v) {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

/* A scalar as JSON stores it, or undefined for a non-scalar. */
function asScalar(v) {
  if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (droppedByJson(v)) return null; // only reached for array elements
  return undefined;
}

/** { present, values } of a dotted path in metadata. */
function resolve(metadata, path) {
  const segs = path.split('.');
  const values = [];
  let present = false;
  const visit = (v, i) => {
    if (i === segs.length) {
      present = true;
      for (const e of Array.isArray(v) ? v : [v]) {
        const s = asScalar(e);
        if (s !== undefined) values.push(s);
      }
      return;
    }
    if (Array.isArray(v)) {
      for (const e of v) if (isObj(e)) visit(e, i);
    } else if (isObj(v) && Object.hasOwn(v, segs[i]) && !droppedByJson(v[segs[i]])) {
      visit(v[segs[i]], i + 1);
    }
  };
  if (!droppedByJson(metadata)) visit(metadata, 0);
  return { present, values };
}

/* ------------------------------------------------------------- comparison */

function sameType(a, b) {
  return a === null ? b === null : b !== null && typeof a === typeof b;
}

/* String.prototype.toWellFormed, which Node 18 lacks: with the u flag, only
 * a lone surrogate is a \p{Surrogate}. */
function wellFormed(s) {
  return s.replace(/\p{Surrogate}/gu, '\uFFFD');
}

/* Strings by Unicode code point, after lone surrogates become U+FFFD. */
function compareStrings(a, b) {
  const x = [...wellFormed(a)].map((c) => c.codePointAt(0));
  const y = [...wellFormed(b)].map((c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function equal(a, b) {
  if (!sameType(a, b)) return false;
  return typeof a === 'string' ? compareStrings(a, b) === 0 : a === b; // -0 === 0
}

function compare(a, b) {
  return typeof a === 'string' ? compareStrings(a, b) : a - b;
}

/* ------------------------------------------------------------- evaluation */

function eq(field, x) {
  return field.values.some((v) => equal(v, x)) || (x === null && !field.present);
}

const OPS = {
  $eq: (f, x) => eq(f, x),
  $ne: (f, x) => !eq(f, x),
  $gt: (f, x) => f.values.some((v) => sameType(v, x) && compare(v, x) > 0),
  $gte: (f, x) => f.values.some((v) => sameType(v, x) && compare(v, x) >= 0),
  $lt: (f, x) => f.values.some((v) => sameType(v, x) && compare(v, x) < 0),
  $lte: (f, x) => f.values.some((v) => sameType(v, x) && compare(v, x) <= 0),
  $in: (f, xs) => xs.some((x) => eq(f, x)),
  $nin: (f, xs) => !xs.some((x) => eq(f, x)),
  $exists: (f, want) => f.present === want,
  $not: (f, ops) => !fieldMatches(f, ops),
};

function isOperatorObject(v) {
  return isObj(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => k.startsWith('$'));
}

function fieldMatches(field, cond) {
  if (!isOperatorObject(cond)) return eq(field, cond);
  return Object.entries(cond).every(([op, x]) => {
    if (!OPS[op]) throw new Error(`reference: unknown operator ${op}`);
    return OPS[op](field, x);
  });
}

/** Whether `metadata` matches `filter`. */
function matches(filter, metadata, fields) {
  if (filter === undefined) return true;
  return Object.entries(filter).every(([key, v]) => {
    if (key === '$and') return v.every((f) => matches(f, metadata, fields));
    if (key === '$or') return v.some((f) => matches(f, metadata, fields));
    if (key === '$not') return !matches(v, metadata, fields);
    if (fields && !fields.includes(key)) throw new Error(`reference: ${key} is not filterable`);
    return fieldMatches(resolve(metadata, key), v);
  });
}

/* ------------------------------------------------------------- generators */

/* The fields the generators use: flat, nested, through arrays of objects. */
const FIELDS = Object.freeze(['lang', 'year', 'tags', 'author.name', 'items.k', 'flag', 'a.b.c']);

/* '\uFFFF' sorts before '\u{10000}' by code point but after it in UTF-16
 * units; '\ud800' is a lone surrogate, stored as U+FFFD. */
const STRINGS = ['', 'a', 'b', 'ab', 'A', 'en', 'de', 'é', 'e\u0301', 'z', '\uFFFD', '\uFFFF', '\u{10000}', '\u{1F600}', '\ud800', '2021', '1', 'null'];
const NUMBERS = [0, -0, 1, -1, 1.5, 2, 2020, 2021, 2022, 1e300, -1e300, 5e-324, Number.MAX_SAFE_INTEGER];
/* Operands that no generated metadata holds. */
const ABSENT = ['nope', '\u{10FFFF}', 99, -2.5, 2019.5];

function pick(r, list) {
  return list[r.int(list.length)];
}

function randomScalar(r) {
  const x = r();
  if (x < 0.45) return pick(r, STRINGS);
  if (x < 0.85) return pick(r, NUMBERS);
  if (x < 0.93) return x < 0.89;
  return null;
}

/* A field's value: mostly scalars, also arrays (repeats, nesting, objects
 * inside), empty objects and arrays. */
function randomValue(r, scalar = randomScalar) {
  const x = r();
  if (x < 0.55) return scalar(r);
  if (x < 0.85) {
    const n = r.int(5);
    const out = [];
    for (let i = 0; i < n; i++) {
      const y = r();
      if (y < 0.75) out.push(scalar(r));
      else if (y < 0.85 && out.length > 0) out.push(out[r.int(out.length)]); // a repeat
      else if (y < 0.93) out.push([scalar(r)]); // nested: contributes nothing
      else out.push({ v: scalar(r) }); // an object: contributes nothing
    }
    return out;
  }
  if (x < 0.92) return {};
  return [];
}

/* Objects holding `key`, possibly in an array of objects. */
function randomHolder(r, key, inner) {
  const x = r();
  if (x < 0.45) return { [key]: inner() };
  if (x < 0.8) {
    const n = r.int(4);
    const out = [];
    for (let i = 0; i < n; i++) {
      const y = r();
      if (y < 0.7) out.push({ [key]: inner() });
      else if (y < 0.8) out.push({ other: 1 });
      else if (y < 0.9) out.push([{ [key]: inner() }]); // an array inside an array: not traversed
      else out.push(randomScalar(r));
    }
    return out;
  }
  return x < 0.9 ? randomScalar(r) : {};
}

const yearish = (r) => (r() < 0.75 ? pick(r, NUMBERS) : r() < 0.5 ? pick(r, ['2021', '2020', 'unknown']) : randomScalar(r));

/** Random metadata over FIELDS (and a few fields nobody declares). */
function randomMetadata(r) {
  const m = {};
  const maybe = (p, key, make) => {
    if (r() < p) m[key] = make();
  };
  maybe(0.8, 'lang', () => randomValue(r));
  maybe(0.8, 'year', () => (r() < 0.8 ? yearish(r) : randomValue(r, yearish)));
  maybe(0.7, 'tags', () => (r() < 0.7 ? Array.from({ length: r.int(5) }, () => pick(r, STRINGS.slice(0, 8))) : randomValue(r)));
  maybe(0.7, 'author', () => randomHolder(r, 'name', () => randomValue(r)));
  maybe(0.6, 'items', () => randomHolder(r, 'k', () => randomValue(r)));
  maybe(0.6, 'flag', () => (r() < 0.7 ? r() < 0.5 : randomScalar(r)));
  maybe(0.5, 'a', () => randomHolder(r, 'b', () => randomHolder(r, 'c', () => randomValue(r))));
  maybe(0.2, 'undeclared', () => randomValue(r));
  if (r() < 0.05) return r() < 0.5 ? null : undefined;
  return m;
}

function operand(r) {
  return r() < 0.85 ? randomScalar(r) : pick(r, ABSENT);
}

function rangeOperandOf(r) {
  const x = r();
  if (x < 0.45) return pick(r, STRINGS);
  if (x < 0.9) return pick(r, NUMBERS);
  return pick(r, ABSENT);
}

function randomOperators(r, depth) {
  const out = {};
  const n = 1 + r.int(2);
  for (let i = 0; i < n; i++) {
    const op = pick(r, ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists', '$not']);
    if (op === '$in' || op === '$nin') out[op] = Array.from({ length: 1 + r.int(4) }, () => operand(r));
    else if (op === '$exists') out[op] = r() < 0.5;
    else if (op === '$not') out[op] = depth < 3 ? randomOperators(r, depth + 1) : { $exists: true };
    else if (op === '$eq' || op === '$ne') out[op] = operand(r);
    else out[op] = rangeOperandOf(r);
  }
  return out;
}

/** A random valid filter over `fields`. */
function randomFilter(r, fields, depth = 0) {
  const x = r();
  if (depth >= 3 || x < 0.5) {
    const f = {};
    const n = r() < 0.8 ? 1 : 2;
    for (let i = 0; i < n; i++) f[pick(r, fields)] = r() < 0.3 ? operand(r) : randomOperators(r, 0);
    return f;
  }
  if (x < 0.65) return { $and: Array.from({ length: 1 + r.int(3) }, () => randomFilter(r, fields, depth + 1)) };
  if (x < 0.8) return { $or: Array.from({ length: 1 + r.int(3) }, () => randomFilter(r, fields, depth + 1)) };
  if (x < 0.9) return { $not: randomFilter(r, fields, depth + 1) };
  if (x < 0.93) return {};
  return { ...randomFilter(r, fields, depth + 1), $or: [randomFilter(r, fields, depth + 1), randomFilter(r, fields, depth + 1)] };
}

module.exports = { matches, resolve, compareStrings, randomMetadata, randomFilter, rng, FIELDS, STRINGS, NUMBERS };
