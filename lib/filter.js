'use strict';
/*
 * lib/filter.js: the filter language on the JS side.
 *
 * Owns: validating the declared filterable paths (parseFilterable),
 * validating a MongoDB-style filter and compiling it into the program the
 * engine runs per candidate (compileFilter, layout in csrc/filter/filter.h),
 * and resolving the declared paths in a record's metadata into its attribute
 * record (encodeAttrs, layout in csrc/filter/attr.h). The engine trusts none
 * of these bytes; this file is where a user's mistake becomes a message that
 * names the bad clause.
 *
 * Path resolution (the same rule as test/helpers/filter-ref.js): walk the
 * segments; through an array, continue into each element that is a plain
 * object; a scalar leaf is one value, an array leaf contributes its scalar
 * elements, an object leaf none; the path is present when a leaf was
 * reached. Metadata is stored as JSON, so values are taken as JSON would
 * store them: a property holding undefined, a function or a symbol is
 * absent, the same in an array is null, and so is a NaN or infinite number.
 */
const { VecvaultError } = require('./errors');
const { isPlainObject, isWellFormed, describe } = require('./options');

const FILTER_LIMITS = Object.freeze({
  maxDepth: 32, // nodes on any path from the root of the compiled program, leaf included
  maxClauses: 20000, // nodes in the compiled program
  maxIn: 65536, // values in one $in or $nin
  maxStringBytes: 65535, // UTF-8 bytes of one string operand
  maxProgramBytes: 16 << 20,
});

const ATTR_LIMITS = Object.freeze({
  maxFields: 64,
  maxPathBytes: 256,
  maxValues: 4096, // scalar values of one field in one record
  maxStringBytes: 65535,
});

/* filter.h node tags and attr.h value tags */
const N_TRUE = 0, N_AND = 1, N_OR = 2, N_NOT = 3, N_EQ = 4, N_IN = 5, N_CMP = 6, N_EXISTS = 7;
const V_NULL = 0, V_FALSE = 1, V_TRUE = 2, V_NUMBER = 3, V_STRING = 4;
const CMP_OPS = { $gt: 0, $gte: 1, $lt: 2, $lte: 3 };
const FIELD_OPS = ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists', '$not'];
const TOP_OPS = ['$and', '$or', '$not'];
const RESERVED_SEGMENTS = ['__proto__', 'constructor', 'prototype'];

/* ------------------------------------------------------------ byte writer */

/** A growing byte buffer. One is shared by encodeAttrs so that an add()
 * allocates only its result; a batch can pass its own to encodeAttrsInto. */
class ByteWriter {
  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
    this.pos = 0;
  }

  reserve(n) {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b) {
    this.reserve(1);
    this.buf[this.pos++] = b;
  }

  /* unsigned LEB128, shortest form; n is a safe integer */
  varint(n) {
    this.reserve(8);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  f64(x) {
    this.reserve(8);
    this.buf.writeDoubleLE(x === 0 ? 0 : x, this.pos); // -0 is stored as 0
    this.pos += 8;
  }

  bytes(b) {
    this.reserve(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  /* A copy of [start, pos), so the writer can be reused. */
  take(start = 0) {
    return Buffer.from(this.buf.subarray(start, this.pos));
  }
}

function varintSize(n) {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

/* ---------------------------------------------------------- filterable */

function badArgument(message) {
  return new VecvaultError(message, 'ERR_INVALID_ARGUMENT');
}

/** The declared filterable paths: a frozen array (a path's field index is
 * its position), [] when none are declared. */
function parseFilterable(value) {
  if (value === undefined) return Object.freeze([]);
  if (!Array.isArray(value)) throw badArgument(`filterable must be an array of field paths like ['lang', 'author.name'], got ${describe(value)}`);
  if (value.length > ATTR_LIMITS.maxFields) {
    throw badArgument(`filterable declares ${value.length} paths; at most ${ATTR_LIMITS.maxFields} are allowed`);
  }
  const paths = [];
  for (let i = 0; i < value.length; i++) {
    const p = value[i];
    const problem = pathProblem(p);
    if (problem) throw badArgument(`filterable[${i}] ${problem}`);
    if (paths.includes(p)) throw badArgument(`filterable[${i}] ${describe(p)} is declared twice`);
    paths.push(p);
  }
  return Object.freeze(paths);
}

/* What is wrong with a declared path, or null. */
function pathProblem(p) {
  if (typeof p !== 'string') return `must be a string (a dotted field path), got ${describe(p)}`;
  if (p.length === 0) return 'is empty';
  if (!isWellFormed(p)) return `${describe(p)} contains a lone UTF-16 surrogate`;
  if (p.includes('\0')) return `${describe(p)} contains a NUL character`;
  if (Buffer.byteLength(p, 'utf8') > ATTR_LIMITS.maxPathBytes) return `${describe(p)} is longer than ${ATTR_LIMITS.maxPathBytes} UTF-8 bytes`;
  for (const s of p.split('.')) {
    if (s === '') return `${describe(p)} has an empty segment (paths are segments joined by single dots)`;
    if (s[0] === '$') return `${describe(p)} has a segment starting with "$", which filters reserve for operators`;
    if (RESERVED_SEGMENTS.includes(s)) return `${describe(p)} has the reserved segment "${s}"`;
  }
  return null;
}

/* ------------------------------------------------------------ compiler */

function describeValue(v) {
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'bigint') return `a BigInt (${v}n; pass a Number)`;
  try {
    if (v instanceof Map) return 'a Map';
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !isPlainObject(v)) return 'an object that is not a plain object';
  } catch {
    return 'an object that cannot be inspected'; // a proxy whose traps throw
  }
  return describe(v);
}

function badFilter(at, message, cause) {
  return new VecvaultError(`${at} ${message}`, 'ERR_INVALID_FILTER', cause === undefined ? undefined : { cause });
}

/* at + key, readable: filter.year.$gt, filter["odd key"] */
function child(at, key) {
  if (/^[A-Za-z_$][\w$]*(?:\.[\w$]+)*$/.test(key) && key.length <= 64) return `${at}.${key}`;
  return `${at}[${describe(key)}]`;
}

function thrownMessage(err) {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'an unprintable value was thrown';
  }
}

/* Reads a user object in a try: a getter or proxy that throws becomes a
 * typed error about the clause it was reading. */
function guarded(at, read) {
  try {
    return read();
  } catch (err) {
    if (err instanceof VecvaultError) throw err;
    throw badFilter(at, `could not be read: ${thrownMessage(err)}`, err);
  }
}

/* A plain object's own enumerable keys and their values, each read once, or
 * null when v is not a plain object. */
function snapshot(v, at) {
  return guarded(at, () => {
    if (!isPlainObject(v)) return null;
    for (const s of Object.getOwnPropertySymbols(v)) {
      if (Object.prototype.propertyIsEnumerable.call(v, s)) throw badFilter(at, `has a symbol key (${String(s)}); filter keys are field paths and operators`);
    }
    const keys = Object.keys(v);
    const values = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) values[i] = v[keys[i]];
    return { keys, values };
  });
}

/* An array's items, each read once, after checking its length (so a huge
 * array is refused before it is walked); null when v is not an array. */
function items(v, at, max, tooMany) {
  return guarded(at, () => {
    if (!Array.isArray(v)) return null;
    const n = v.length;
    if (n > max) throw badFilter(at, tooMany(n));
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = v[i];
    return out;
  });
}

/* Counts one node of the program at `depth` (the root is at 1) against the
 * limits, before anything below it is compiled: no hostile nesting can get
 * deeper than the limit into the JS stack. */
function enter(st, depth, at) {
  if (depth > FILTER_LIMITS.maxDepth) throw badFilter(at, `nests deeper than ${FILTER_LIMITS.maxDepth} clauses (each $and, $or, $not, $ne, $nin and field with several operators is one level)`);
  if (++st.nodes > FILTER_LIMITS.maxClauses) throw badFilter(at, `makes the filter longer than ${FILTER_LIMITS.maxClauses} clauses`);
}

const TRUE = Object.freeze({ op: N_TRUE });

function andOf(kids) {
  const k = kids.filter((n) => n.op !== N_TRUE);
  if (k.length === 0) return TRUE;
  return k.length === 1 ? k[0] : { op: N_AND, kids: k };
}

function orOf(kids) {
  if (kids.some((n) => n.op === N_TRUE)) return TRUE;
  return kids.length === 1 ? kids[0] : { op: N_OR, kids };
}

function notOf(kid) {
  return kid.op === N_NOT ? kid.kid : { op: N_NOT, kid };
}

/* Counts an operand's bytes as it is read, so a filter too large to run is
 * refused before all of it is copied. */
function addBytes(st, n, at) {
  st.bytes += n;
  if (st.bytes > FILTER_LIMITS.maxProgramBytes) throw badFilter(at, `makes the compiled filter larger than ${FILTER_LIMITS.maxProgramBytes} bytes`);
}

/* A scalar operand as a value ({ tag, num } or { tag, str: Buffer }), or
 * null when v is not a string, finite number, boolean or null. */
function scalarValue(v, at, st) {
  if (v === null) return { tag: V_NULL };
  if (v === false) return { tag: V_FALSE };
  if (v === true) return { tag: V_TRUE };
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw badFilter(at, `must be a finite number, got ${v}`);
    addBytes(st, 9, at);
    return { tag: V_NUMBER, num: v }; // ByteWriter.f64 stores -0 as 0
  }
  if (typeof v === 'string') {
    // A UTF-16 unit is at least one UTF-8 byte: long strings fail unencoded.
    const str = v.length > FILTER_LIMITS.maxStringBytes ? null : Buffer.from(v, 'utf8');
    if (str === null || str.length > FILTER_LIMITS.maxStringBytes) {
      throw badFilter(at, `is a string longer than ${FILTER_LIMITS.maxStringBytes} UTF-8 bytes`);
    }
    addBytes(st, 4 + str.length, at);
    return { tag: V_STRING, str };
  }
  return null;
}

const SCALAR = 'a string, a finite number, a boolean or null';

function eqOperand(v, at, st) {
  const value = scalarValue(v, at, st);
  if (value === null) throw badFilter(at, `must be ${SCALAR}, got ${describeValue(v)}`);
  return value;
}

function rangeOperand(v, at, st) {
  const value = typeof v === 'number' || typeof v === 'string' ? scalarValue(v, at, st) : null;
  if (value === null) throw badFilter(at, `must be a finite number or a string, got ${describeValue(v)}`);
  return value;
}

function inOperand(v, at, st) {
  const list = items(v, at, FILTER_LIMITS.maxIn, (n) => `has ${n} values; at most ${FILTER_LIMITS.maxIn} are allowed`);
  if (list === null) throw badFilter(at, `must be a non-empty array of values (${SCALAR}), got ${describeValue(v)}`);
  if (list.length === 0) throw badFilter(at, 'is an empty array; it needs at least one value');
  return list.map((x, i) => eqOperand(x, `${at}[${i}]`, st));
}

/* One filter object: { field: ..., $and: [...], ... }, several keys = AND. */
function filterObject(v, at, depth, st) {
  const snap = snapshot(v, at);
  if (snap === null) {
    throw badFilter(at, `must be a plain object like { lang: 'en', year: { $gte: 2020 } }, got ${describeValue(v)}`);
  }
  const { keys, values } = snap;
  if (keys.length === 0) {
    enter(st, depth + 1, at);
    return TRUE;
  }
  if (keys.length === 1) return clause(keys[0], values[0], at, depth, st);
  enter(st, depth + 1, at);
  return andOf(keys.map((k, i) => clause(k, values[i], at, depth + 1, st)));
}

function clause(key, value, parent, depth, st) {
  const at = child(parent, key);
  if (key === '$and' || key === '$or') {
    const list = items(value, at, FILTER_LIMITS.maxClauses, (n) => `has ${n} filters; a filter has at most ${FILTER_LIMITS.maxClauses} clauses`);
    if (list === null) throw badFilter(at, `must be a non-empty array of filter objects, got ${describeValue(value)}`);
    if (list.length === 0) throw badFilter(at, 'is an empty array; it needs at least one filter');
    enter(st, depth + 1, at);
    const kids = list.map((f, i) => filterObject(f, `${at}[${i}]`, depth + 1, st));
    return key === '$and' ? andOf(kids) : orOf(kids);
  }
  if (key === '$not') {
    enter(st, depth + 1, at);
    return notOf(filterObject(value, at, depth + 1, st));
  }
  if (key[0] === '$') {
    throw badFilter(at, `uses the unknown operator ${describe(key)}: a filter's own operators are ${TOP_OPS.join(', ')}; field operators (${FIELD_OPS.join(', ')}) go inside a field, like { year: { $gt: 2020 } }`);
  }
  const field = st.fields.indexOf(key);
  const problem = field < 0 ? pathProblem(key) : null;
  if (problem) throw badFilter(at, `is not a field path: ${problem}`);
  if (field < 0) {
    const declared = st.fields.length === 0 ? 'this database declares no filterable fields' : `the filterable fields are ${st.fields.map((f) => describe(f)).join(', ')}`;
    throw badFilter(at, `filters on ${describe(key)}, which is not declared filterable (${declared}); declare it when creating the database: filterable: [${describe(key)}, ...]`);
  }
  const operand = scalarValue(value, at, st);
  if (operand !== null) {
    enter(st, depth + 1, at);
    return { op: N_EQ, field, value: operand };
  }
  return operators(field, key, value, at, depth, st);
}

/* A field's operator object: { $gte: 1, $lt: 5 }, several operators = AND. */
function operators(field, name, v, at, depth, st) {
  const snap = snapshot(v, at);
  if (snap === null) {
    throw badFilter(at, `must be ${SCALAR}, or an operator object like { $gt: 1 }, got ${describeValue(v)}`);
  }
  const { keys, values } = snap;
  if (keys.length === 0) throw badFilter(at, `is an empty object; give a value or operators (${FIELD_OPS.join(', ')})`);
  for (const k of keys) {
    if (k[0] !== '$') {
      throw badFilter(child(at, k), `is not an operator: objects are not compared as values; to filter on a nested field, declare and use its dotted path (${describe(`${name}.${k}`)})`);
    }
  }
  if (keys.length === 1) return operator(field, name, keys[0], values[0], child(at, keys[0]), depth, st);
  enter(st, depth + 1, at);
  return andOf(keys.map((k, i) => operator(field, name, k, values[i], child(at, k), depth + 1, st)));
}

function operator(field, name, op, v, at, depth, st) {
  switch (op) {
    case '$eq':
      enter(st, depth + 1, at);
      return { op: N_EQ, field, value: eqOperand(v, at, st) };
    case '$ne':
    case '$nin': // NOT of $eq and $in, so that a missing path matches, as in MongoDB
      enter(st, depth + 1, at);
      return notOf(operator(field, name, op === '$ne' ? '$eq' : '$in', v, at, depth + 1, st));
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      enter(st, depth + 1, at);
      return { op: N_CMP, field, cmp: CMP_OPS[op], value: rangeOperand(v, at, st) };
    case '$in':
      enter(st, depth + 1, at);
      return { op: N_IN, field, values: inOperand(v, at, st) };
    case '$exists':
      if (typeof v !== 'boolean') throw badFilter(at, `must be true or false, got ${describeValue(v)}`);
      enter(st, depth + 1, at);
      if (v) return { op: N_EXISTS, field };
      enter(st, depth + 2, at);
      return notOf({ op: N_EXISTS, field });
    case '$not':
      if (!guarded(at, () => isPlainObject(v))) throw badFilter(at, `must be an operator object like { $gt: 5 }, got ${describeValue(v)}`);
      enter(st, depth + 1, at);
      return notOf(operators(field, name, v, at, depth + 1, st));
    default:
      throw badFilter(at, `uses the unknown operator ${describe(op)}; the field operators are ${FIELD_OPS.join(', ')}`);
  }
}

function writeValue(w, value) {
  w.byte(value.tag);
  if (value.tag === V_NUMBER) w.f64(value.num);
  else if (value.tag === V_STRING) {
    w.varint(value.str.length);
    w.bytes(value.str);
  }
}

function writeNode(w, n) {
  w.byte(n.op);
  switch (n.op) {
    case N_AND:
    case N_OR:
      w.varint(n.kids.length);
      for (const k of n.kids) writeNode(w, k);
      break;
    case N_NOT:
      writeNode(w, n.kid);
      break;
    case N_EQ:
      w.varint(n.field);
      writeValue(w, n.value);
      break;
    case N_IN:
      w.varint(n.field);
      w.varint(n.values.length);
      for (const v of n.values) writeValue(w, v);
      break;
    case N_CMP:
      w.varint(n.field);
      w.byte(n.cmp);
      writeValue(w, n.value);
      break;
    case N_EXISTS:
      w.varint(n.field);
      break;
    default: // N_TRUE
  }
}

/**
 * The program (filter.h) for `filter` over the declared `fields`, or null
 * when the filter matches everything (undefined, {}, or what folds to it).
 * Throws ERR_INVALID_FILTER naming the bad clause, rooted at `where`.
 */
function compileFilter(filter, fields, where = 'filter') {
  if (filter === undefined) return null;
  const st = { fields, nodes: 0, bytes: 3 };
  const root = filterObject(filter, where, 0, st);
  if (root.op === N_TRUE) return null;
  const w = new ByteWriter(64 + st.bytes + 4 * st.nodes);
  w.bytes(PROGRAM_MAGIC);
  writeNode(w, root);
  if (w.pos > FILTER_LIMITS.maxProgramBytes) throw badFilter(where, `compiles to more than ${FILTER_LIMITS.maxProgramBytes} bytes`);
  return w.take();
}

const PROGRAM_MAGIC = Buffer.from([0x56, 0x46, 0x01]); // 'V' 'F' version 1

/* ---------------------------------------------------- attribute records */

const segmentCache = new WeakMap();

function segmentsOf(fields) {
  let segs = segmentCache.get(fields);
  if (segs === undefined) {
    segs = fields.map((p) => p.split('.'));
    segmentCache.set(fields, segs);
  }
  return segs;
}

/* What encodeAttrsInto is collecting for the current field. */
const cur = { count: 0, present: false, path: '', where: '' };

function badMetadata(message) {
  return new VecvaultError(`${cur.where}.${cur.path} ${message}`, 'ERR_INVALID_METADATA');
}

function isObject(v) {
  return v !== null && typeof v === 'object';
}

/* A property holding what JSON leaves out is no property at all. */
function isAbsent(v) {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

/* A short string's UTF-8 at buf[at..]; returns its length. ASCII is copied
 * here: a call into Buffer's encoder costs more than the copy. */
function writeShort(buf, v, at) {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 0x80) return buf.write(v, at, 'utf8');
    buf[at + i] = c;
  }
  return v.length;
}

/* One scalar as JSON stores it: what JSON turns into null is null. */
function writeScalar(w, v) {
  if (++cur.count > ATTR_LIMITS.maxValues) throw badMetadata(`has more than ${ATTR_LIMITS.maxValues} values; a filterable field holds at most that many per record`);
  if (typeof v === 'string') {
    // A UTF-16 unit is at most 3 UTF-8 bytes, so short strings take a
    // one-byte length without being measured first.
    w.reserve(4 + 3 * v.length);
    const buf = w.buf;
    buf[w.pos++] = V_STRING;
    if (3 * v.length < 0x80) {
      const n = writeShort(buf, v, w.pos + 1);
      buf[w.pos] = n;
      w.pos += 1 + n;
      return;
    }
    const n = v.length > ATTR_LIMITS.maxStringBytes ? Infinity : Buffer.byteLength(v, 'utf8');
    if (n > ATTR_LIMITS.maxStringBytes) throw badMetadata(`holds a string longer than ${ATTR_LIMITS.maxStringBytes} UTF-8 bytes`);
    w.varint(n);
    w.pos += w.buf.write(v, w.pos, 'utf8');
  } else if (typeof v === 'number' && Number.isFinite(v)) {
    w.byte(V_NUMBER);
    w.f64(v);
  } else if (typeof v === 'boolean') {
    w.byte(v ? V_TRUE : V_FALSE);
  } else {
    w.byte(V_NULL);
  }
}

function leaf(w, v) {
  cur.present = true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const e = v[i];
      if (!isObject(e)) writeScalar(w, e);
    }
  } else if (!isObject(v)) {
    writeScalar(w, v);
  }
}

function walk(w, v, segs, i) {
  if (i === segs.length) return leaf(w, v);
  if (!isObject(v)) return;
  if (Array.isArray(v)) {
    for (let j = 0; j < v.length; j++) {
      const e = v[j];
      if (isObject(e) && !Array.isArray(e)) walk(w, e, segs, i);
    }
    return;
  }
  const key = segs[i];
  if (!Object.prototype.hasOwnProperty.call(v, key)) return;
  const next = v[key];
  if (!isAbsent(next)) walk(w, next, segs, i + 1);
}

/**
 * Appends the attribute record (attr.h) of `metadata` for `fields` to the
 * writer; returns the record's start offset. Throws ERR_INVALID_METADATA
 * when a field passes ATTR_LIMITS.
 */
function encodeAttrsInto(w, metadata, fields, where = 'metadata') {
  const start = w.pos;
  try {
    writeRecord(w, metadata, fields, where);
  } catch (err) {
    w.pos = start; // the writer holds only whole records
    throw err;
  }
  return start;
}

function writeRecord(w, metadata, fields, where) {
  const segs = segmentsOf(fields);
  cur.where = where;
  for (let f = 0; f < segs.length; f++) {
    const at = w.pos;
    w.byte(0); // the count, fixed up below
    cur.count = 0;
    cur.present = false;
    cur.path = fields[f];
    if (!isAbsent(metadata)) walk(w, metadata, segs[f], 0);
    const n = cur.count === 0 ? (cur.present ? 1 : 0) : cur.count + 1;
    const size = varintSize(n);
    if (size > 1) {
      w.reserve(size - 1);
      w.buf.copyWithin(at + size, at + 1, w.pos);
      w.pos += size - 1;
    }
    let p = at;
    for (let x = n; ; x = Math.floor(x / 0x80)) {
      if (x < 0x80) {
        w.buf[p] = x;
        break;
      }
      w.buf[p++] = (x % 0x80) | 0x80;
    }
  }
}

const shared = new ByteWriter(1024);

/** The attribute record of `metadata` for `fields`, or null when no field
 * is declared. */
function encodeAttrs(metadata, fields, where = 'metadata') {
  if (fields.length === 0) return null;
  shared.pos = 0;
  try {
    encodeAttrsInto(shared, metadata, fields, where);
    return shared.take(0);
  } finally {
    if (shared.buf.length > 1 << 20) shared.buf = Buffer.allocUnsafe(1024); // give back what one huge record took
  }
}

module.exports = { parseFilterable, compileFilter, encodeAttrs, encodeAttrsInto, ByteWriter, FILTER_LIMITS, ATTR_LIMITS };
