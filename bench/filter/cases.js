'use strict';
// The filtered benchmark's metadata and filters.
//
// Metadata is generated from its own seed, independently of the vectors (a
// filter selects rows with no relation to where they sit in the space, the
// hard case for a graph search), and kept in columns: typed arrays indexed
// by row, which is also what a fair hnswlib-node user would keep for its
// filter callback.
//
// A filter is a list of clauses, all of which must hold. Each clause
// translates three ways, so the systems are asked exactly the same thing:
// a MongoDB-style filter for vecvault, a SQL predicate for LanceDB, and a JS
// predicate over the columns (hnswlib-node's callback and the exact ground
// truth). filter.js checks that the three count the same rows.

const { makeRng } = require('../data');

// A skewed language mix: one value at half the rows, one at 0.1%.
const LANGS = [['en', 0.5], ['de', 0.15], ['fr', 0.1], ['es', 0.08], ['ja', 0.06], ['zh', 0.05], ['pt', 0.034], ['it', 0.015], ['ko', 0.01], ['nl', 0.001]];
const USERS = 10000;
const TAGS = 50;
const MAX_TAGS = 4;
const TS0 = 1600000000; // timestamps: one integer second in [TS0, TS0 + TS_SPAN)
const TS_SPAN = 100000000;
const SELECTIVITIES = [0.5, 0.1, 0.01, 0.001, 0.0001];
const METADATA_SEED = 12; // not the vectors' seeds (1, 2): metadata and position are unrelated

const tagName = (t) => `t${String(t).padStart(2, '0')}`;
const userName = (u) => `u${String(u).padStart(5, '0')}`;

// Draws from `weights` (cumulative, ending at 1) with one uniform number.
function pick(cum, u) {
  let i = 0;
  while (i < cum.length - 1 && u >= cum[i]) i++;
  return i;
}

function cumulative(weights) {
  const total = weights.reduce((a, b) => a + b, 0);
  let s = 0;
  return weights.map((w) => (s += w / total));
}

function timestamps(rng, n) {
  const ts = new Int32Array(n);
  for (let i = 0; i < n; i++) ts[i] = TS0 + (rng.next() % TS_SPAN);
  return ts;
}

/**
 * Metadata of the embedding set: lang (10 values, skewed), user (10,000
 * values, uniform), ts (integer seconds, uniform), tags (0 to 4 distinct of
 * 50, Zipf-like: tag r drawn with weight 1/(r+1)).
 */
function embeddingColumns(n, seed = METADATA_SEED) {
  const rng = makeRng(seed);
  const langCum = cumulative(LANGS.map((l) => l[1]));
  const tagCum = cumulative(Array.from({ length: TAGS }, (_, r) => 1 / (r + 1)));
  const lang = new Uint8Array(n), user = new Uint16Array(n);
  const tagsLo = new Uint32Array(n), tagsHi = new Uint32Array(n); // bit t of (hi:lo): tag t present
  for (let i = 0; i < n; i++) {
    lang[i] = pick(langCum, rng.uniform());
    user[i] = rng.next() % USERS;
    const count = rng.next() % (MAX_TAGS + 1);
    for (let c = 0; c < count;) {
      const t = pick(tagCum, rng.uniform());
      const has = t < 32 ? tagsLo[i] & (1 << t) : tagsHi[i] & (1 << (t - 32));
      if (has) continue;
      if (t < 32) tagsLo[i] |= 1 << t; else tagsHi[i] |= 1 << (t - 32);
      c++;
    }
  }
  return {
    n,
    fields: {
      lang: { kind: 'string', codes: lang, values: LANGS.map((l) => l[0]) },
      user: { kind: 'string', codes: user, values: Array.from({ length: USERS }, (_, u) => userName(u)) },
      ts: { kind: 'number', values: timestamps(rng, n) },
      tags: { kind: 'tags', lo: tagsLo, hi: tagsHi, values: Array.from({ length: TAGS }, (_, t) => tagName(t)) },
    },
  };
}

/** Metadata of Fashion-MNIST: its class label (0..9) and a synthetic ts. */
function fashionColumns(labels, seed = METADATA_SEED) {
  const rng = makeRng(seed);
  const n = labels.length;
  return { n, fields: { label: { kind: 'label', values: labels }, ts: { kind: 'number', values: timestamps(rng, n) } } };
}

/** Row i's metadata object, as a user would add() it. */
function metadataOf(cols, i) {
  const out = {};
  for (const [name, f] of Object.entries(cols.fields)) {
    if (f.kind === 'string') out[name] = f.values[f.codes[i]];
    else if (f.kind === 'number' || f.kind === 'label') out[name] = f.values[i];
    else out[name] = tagsOf(f, i);
  }
  return out;
}

function tagsOf(f, i) {
  const out = [];
  for (let t = 0; t < f.values.length; t++) if (t < 32 ? f.lo[i] & (1 << t) : f.hi[i] & (1 << (t - 32))) out.push(f.values[t]);
  return out;
}

// ---------------------------------------------------------------- clauses

// { field, op: 'eq' | 'in' | 'range' | 'any', value | values | lo/hi }.
// 'range' is lo <= v < hi; 'any' is a tag array holding any of `values`.
const eq = (field, value) => ({ field, op: 'eq', value });
const oneOf = (field, values) => ({ field, op: 'in', values });
const range = (field, lo, hi) => ({ field, op: 'range', lo, hi });
const anyTag = (field, values) => ({ field, op: 'any', values });

const sqlValue = (v) => (typeof v === 'number' ? String(v) : `'${String(v).replace(/'/g, "''")}'`);

function clauseMongo(c) {
  switch (c.op) {
    case 'eq': return { [c.field]: c.value };
    case 'in': case 'any': return { [c.field]: { $in: c.values } };
    case 'range': return { [c.field]: { $gte: c.lo, $lt: c.hi } };
    default: throw new Error(`unknown clause ${c.op}`);
  }
}

function clauseSql(c) {
  switch (c.op) {
    case 'eq': return `${c.field} = ${sqlValue(c.value)}`;
    case 'in': return `${c.field} IN (${c.values.map(sqlValue).join(', ')})`;
    case 'any': return `array_has_any(${c.field}, [${c.values.map(sqlValue).join(', ')}])`;
    case 'range': return `${c.field} >= ${c.lo} AND ${c.field} < ${c.hi}`;
    default: throw new Error(`unknown clause ${c.op}`);
  }
}

// A JS predicate (row -> boolean) over the columns.
function clausePredicate(cols, c) {
  const f = cols.fields[c.field];
  if (c.op === 'range') {
    const v = f.values, { lo, hi } = c;
    return (i) => v[i] >= lo && v[i] < hi;
  }
  const wanted = c.op === 'eq' ? [c.value] : c.values;
  if (f.kind === 'string') {
    const mask = new Uint8Array(f.values.length);
    for (const w of wanted) { const code = f.values.indexOf(w); if (code >= 0) mask[code] = 1; }
    const codes = f.codes;
    return (i) => mask[codes[i]] === 1;
  }
  if (f.kind === 'tags') {
    let mlo = 0, mhi = 0;
    for (const w of wanted) {
      const t = f.values.indexOf(w);
      if (t >= 0 && t < 32) mlo |= 1 << t; else if (t >= 32) mhi |= 1 << (t - 32);
    }
    const { lo, hi } = f;
    return (i) => ((lo[i] & mlo) | (hi[i] & mhi)) !== 0;
  }
  const set = new Set(wanted), v = f.values;
  return (i) => set.has(v[i]);
}

/** The three forms of a conjunction of clauses. */
function translate(cols, clauses) {
  const fields = clauses.map((c) => c.field);
  const distinct = new Set(fields).size === fields.length;
  const parts = clauses.map(clauseMongo);
  const mongo = distinct ? Object.assign({}, ...parts) : { $and: parts };
  const sql = clauses.map((c) => (clauses.length > 1 ? `(${clauseSql(c)})` : clauseSql(c))).join(' AND ');
  const preds = clauses.map((c) => clausePredicate(cols, c));
  const predicate = preds.length === 1 ? preds[0] : (i) => preds.every((p) => p(i));
  return { mongo, sql, predicate };
}

// The upper bound hi of [lo, hi) on a number field such that exactly
// `count` rows passing `others` fall in it (or as close as ties allow).
function tunedRange(cols, field, lo, count, others = () => true) {
  const v = cols.fields[field].values;
  const inside = [];
  for (let i = 0; i < cols.n; i++) if (v[i] >= lo && others(i)) inside.push(v[i]);
  inside.sort((a, b) => a - b);
  if (inside.length === 0) return lo + 1;
  return inside[Math.min(inside.length, Math.max(1, count)) - 1] + 1;
}

function matchingRows(cols, predicate) {
  const rows = [];
  for (let i = 0; i < cols.n; i++) if (predicate(i)) rows.push(i);
  return Int32Array.from(rows);
}

// The value of a string or tag field whose share of rows is closest to `target`.
function valueNear(cols, field, target) {
  const f = cols.fields[field];
  const counts = new Float64Array(f.values.length);
  for (let i = 0; i < cols.n; i++) {
    if (f.kind === 'string') counts[f.codes[i]]++;
    else for (let t = 0; t < f.values.length; t++) if (t < 32 ? f.lo[i] & (1 << t) : f.hi[i] & (1 << (t - 32))) counts[t]++;
  }
  let best = 0;
  const off = (c) => Math.abs(Math.log(Math.max(c, 0.5) / (target * cols.n)));
  for (let v = 1; v < counts.length; v++) if (off(counts[v]) < off(counts[best])) best = v;
  return f.values[best];
}

const TS_MID = TS0 + 0.25 * TS_SPAN; // windows start a quarter in, away from the ends

/**
 * The filters of the embedding set: for every selectivity a ts range
 * (family "range"), and one of another kind (family "mixed"): equality on
 * the low-cardinality field, a tag $in, a conjunction of equality and range,
 * equality on a rare value, equality on the high-cardinality field.
 */
function embeddingCases(cols) {
  const n = cols.n;
  const cases = [];
  for (const s of SELECTIVITIES) {
    cases.push({ family: 'range', target: s, clauses: [range('ts', TS_MID, tunedRange(cols, 'ts', TS_MID, Math.round(s * n)))] });
  }
  const de = clausePredicate(cols, eq('lang', 'de'));
  cases.push({ family: 'mixed', target: 0.5, clauses: [eq('lang', valueNear(cols, 'lang', 0.5))] });
  cases.push({ family: 'mixed', target: 0.1, clauses: [anyTag('tags', [valueNear(cols, 'tags', 0.1)])] });
  cases.push({ family: 'mixed', target: 0.01, clauses: [eq('lang', 'de'), range('ts', TS_MID, tunedRange(cols, 'ts', TS_MID, Math.round(0.01 * n), de))] });
  cases.push({ family: 'mixed', target: 0.001, clauses: [eq('lang', valueNear(cols, 'lang', 0.001))] });
  cases.push({ family: 'mixed', target: 0.0001, clauses: [eq('user', valueNear(cols, 'user', 0.0001))] });
  return cases;
}

/** Fashion-MNIST: $in of five classes, one class, one class and a ts range. */
function fashionCases(cols) {
  const n = cols.n;
  const three = clausePredicate(cols, eq('label', 3));
  const cases = [
    { family: 'label', target: 0.5, clauses: [oneOf('label', [0, 1, 2, 3, 4])] },
    { family: 'label', target: 0.1, clauses: [eq('label', 3)] },
  ];
  for (const s of [0.01, 0.001, 0.0001]) {
    cases.push({ family: 'label', target: s, clauses: [eq('label', 3), range('ts', TS_MID, tunedRange(cols, 'ts', TS_MID, Math.round(s * n), three))] });
  }
  return cases;
}

/** Every case with its three forms, matching rows and actual selectivity. */
function resolveCases(cols, cases) {
  return cases.map((c, idx) => {
    const t = translate(cols, c.clauses);
    const rows = matchingRows(cols, t.predicate);
    return { ...c, index: idx, name: `${c.family} ${fmtPct(c.target)}`, mongo: t.mongo, sql: t.sql, predicate: t.predicate, rows, selectivity: rows.length / cols.n };
  });
}

function fmtPct(s) {
  const p = s * 100;
  return `${p >= 1 ? p.toFixed(0) : p >= 0.1 ? p.toFixed(1) : p.toFixed(2)}%`;
}

module.exports = {
  SELECTIVITIES, embeddingColumns, fashionColumns, metadataOf, embeddingCases, fashionCases, resolveCases, translate, fmtPct,
};
