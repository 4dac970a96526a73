'use strict';
/*
 * test/helpers/index.js: what every mocha suite shares.
 *
 * Owns: loading the package under test, seeded random data (uniform and
 * clustered vectors), the brute-force reference search the engine is checked
 * against, assertions for VecvaultError codes (sync throw and async reject),
 * tracking of databases so a failing test cannot leak one into the next, and
 * running a child script (GC, teardown and crash tests need a process of
 * their own so a crash fails one test instead of killing the suite).
 */
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');

let cached;
/* The package as a user gets it through require('vecvault'). */
function vecvault() {
  if (!cached) cached = require(ROOT);
  return cached;
}

/* ---------------------------------------------------------------- random */

/* mulberry32: tiny, fast, good enough for test data, and identical on every run. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare = null;
  next.gauss = () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = next();
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  next.int = (n) => Math.floor(next() * n);
  return next;
}

/* n vectors of `dim` components uniform in [-1, 1). */
function randomVectors(n, dim, seed) {
  const r = rng(seed);
  const out = [];
  for (let i = 0; i < n; i++) {
    const v = new Float32Array(dim);
    for (let j = 0; j < dim; j++) v[j] = r() * 2 - 1;
    out.push(v);
  }
  return out;
}

/*
 * n vectors around `clusters` gaussian centres: the shape of real embedding
 * data, and the case where a broken HNSW graph (bad links, lost entry point)
 * shows up as low recall.
 */
function clusteredVectors(n, dim, { clusters = 50, spread = 0.15, seed = 1 } = {}) {
  const r = rng(seed);
  const centres = [];
  for (let c = 0; c < clusters; c++) {
    const v = new Float32Array(dim);
    for (let j = 0; j < dim; j++) v[j] = r.gauss();
    centres.push(v);
  }
  const out = [];
  for (let i = 0; i < n; i++) {
    const c = centres[r.int(clusters)];
    const v = new Float32Array(dim);
    for (let j = 0; j < dim; j++) v[j] = c[j] + spread * r.gauss();
    out.push(v);
  }
  return out;
}

function makeItems(vectors, prefix = 'v', withMeta = true) {
  return vectors.map((vector, i) => {
    const item = { id: `${prefix}${i}`, vector };
    if (withMeta) item.metadata = { i, tag: `${prefix}-${i % 7}` };
    return item;
  });
}

/* All vectors back to back, the flat layout searchBatch accepts. */
function flatten(vectors, dim) {
  const out = new Float32Array(vectors.length * dim);
  vectors.forEach((v, i) => out.set(v, i * dim));
  return out;
}

/* ------------------------------------------------------------- reference */

function norm(v) {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

function normalized(v) {
  const n = norm(v);
  return Float64Array.from(v, (x) => x / n);
}

/* Distance and score exactly as the contract defines them, in double precision. */
function measure(metric, query, vector) {
  let dot = 0;
  let l2 = 0;
  for (let i = 0; i < query.length; i++) {
    dot += query[i] * vector[i];
    const d = query[i] - vector[i];
    l2 += d * d;
  }
  switch (metric) {
    case 'cosine': {
      const sim = dot / (norm(query) * norm(vector));
      return { distance: 1 - sim, score: sim };
    }
    case 'l2': {
      const dist = Math.sqrt(l2);
      return { distance: dist, score: -dist };
    }
    case 'dot':
      return { distance: -dot, score: dot };
    default:
      throw new Error(`unknown metric ${metric}`);
  }
}

/* Exact k nearest of `entries` (iterable of [id, vector]) to `query`. */
function bruteForce(entries, query, k, metric) {
  const all = [];
  for (const [id, vector] of entries) all.push({ id, ...measure(metric, query, vector) });
  all.sort((a, b) => a.distance - b.distance);
  return all.slice(0, k);
}

/* Float32 arithmetic in the engine against float64 here: compare loosely. */
function close(actual, expected, tol = 1e-4) {
  return Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected));
}

function assertClose(actual, expected, what, tol = 1e-4) {
  assert.ok(typeof actual === 'number' && close(actual, expected, tol),
    `${what}: got ${actual}, expected ${expected} (tolerance ${tol})`);
}

/*
 * Check a result list against brute force over `reference` (a Map id ->
 * original vector). Tolerant of near-ties (two ids at the same distance up to
 * float32 rounding may swap), strict about everything else: the length, the
 * order, every distance and score, and that each id really is at the
 * distance reported for it.
 */
function assertMatchesReference(results, reference, query, k, metric, what = 'results') {
  const expected = bruteForce(reference, query, k, metric);
  assert.ok(Array.isArray(results), `${what}: not an array`);
  assert.equal(results.length, expected.length, `${what}: length`);
  const seen = new Set();
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    assert.equal(typeof r.id, 'string', `${what}[${i}].id`);
    assert.ok(!seen.has(r.id), `${what}: id ${r.id} appears twice`);
    seen.add(r.id);
    assert.ok(reference.has(r.id), `${what}: ${r.id} is not a live id`);
    if (i > 0) assert.ok(r.distance >= results[i - 1].distance, `${what}: not sorted at ${i}`);
    const own = measure(metric, query, reference.get(r.id));
    assertClose(r.distance, own.distance, `${what}[${i}] (${r.id}) distance`);
    assertClose(r.score, own.score, `${what}[${i}] (${r.id}) score`);
    assertClose(r.distance, expected[i].distance, `${what}[${i}] distance vs rank ${i} of brute force`);
  }
}

/*
 * A result list as plain data, for deepEqual between two calls that should
 * agree (search vs searchBatch, sync vs async) without tripping over an
 * absent key versus a key set to undefined.
 */
function plainResults(results) {
  return results.map((r) => {
    const o = { id: r.id, distance: r.distance, score: r.score, metadata: r.metadata };
    if (r.vector !== undefined) o.vector = Array.from(r.vector);
    return o;
  });
}

function recallAtK(results, expected) {
  const want = new Set(expected.map((e) => e.id));
  let hit = 0;
  for (const r of results) if (want.has(r.id)) hit++;
  return hit / expected.length;
}

/* ------------------------------------------------------------ assertions */

function describeError(e) {
  if (!(e instanceof Error)) return String(e);
  return `${e.constructor && e.constructor.name}(${e.code}): ${e.message}`;
}

function assertVecvaultError(err, code, what = 'error') {
  const { VecvaultError } = vecvault();
  assert.ok(err instanceof Error, `${what}: not an Error: ${describeError(err)}`);
  assert.ok(err instanceof VecvaultError, `${what}: not a VecvaultError: ${describeError(err)}`);
  assert.equal(err.code, code, `${what}: wrong code: ${describeError(err)}`);
  assert.equal(typeof err.message, 'string');
  assert.ok(err.message.length > 0, `${what}: empty message`);
}

/* fn() must throw a VecvaultError with `code`. Returns the error. */
function throwsCode(fn, code, what) {
  let err;
  let threw = false;
  try {
    fn();
  } catch (e) {
    threw = true;
    err = e;
  }
  assert.ok(threw, `${what || fn.toString()}: expected ${code}, nothing was thrown`);
  assertVecvaultError(err, code, what || fn.toString());
  return err;
}

/* fn() must return a promise (not throw) that rejects with `code`. */
async function rejectsCode(fn, code, what) {
  const label = what || fn.toString();
  let p;
  try {
    p = fn();
  } catch (e) {
    assert.fail(`${label}: threw synchronously instead of rejecting: ${describeError(e)}`);
  }
  assert.ok(p && typeof p.then === 'function', `${label}: did not return a promise`);
  let err;
  let rejected = false;
  try {
    await p;
  } catch (e) {
    rejected = true;
    err = e;
  }
  assert.ok(rejected, `${label}: expected rejection with ${code}, it resolved`);
  assertVecvaultError(err, code, label);
  return err;
}

/* ------------------------------------------------------------- databases */

const open = new Set();

/* A VectorDB that the root afterEach hook (00.setup.js) closes. */
function openDb(options) {
  const { VectorDB } = vecvault();
  const db = new VectorDB(options);
  open.add(db);
  return db;
}

function closeAll() {
  for (const db of open) {
    try {
      if (!db.closed) db.close();
    } catch (_) {
      /* a test that broke close() has already failed on its own */
    }
  }
  open.clear();
}

/* The live state of a db as a Map, for the reference search. */
function snapshot(db, ids) {
  const m = new Map();
  for (const id of ids) {
    const rec = db.get(id);
    if (rec) m.set(id, rec.vector);
  }
  return m;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/* ----------------------------------------------------------- child runs */

/*
 * Run test/helpers/children/<name>.js with `args`, in a fresh node with
 * `execArgv`. Resolves with { code, signal, stdout, stderr, result } where
 * `result` is the JSON the child printed on its last stdout line (if any).
 */
function runChild(name, { args = [], execArgv = [], timeoutMs = 45000 } = {}) {
  const script = path.join(__dirname, 'children', `${name}.js`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...execArgv, script, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let result;
      const last = stdout.trim().split('\n').pop();
      try {
        result = JSON.parse(last);
      } catch (_) {
        result = undefined;
      }
      resolve({ code, signal, stdout, stderr, result });
    });
  });
}

function assertChildOk(run, what) {
  assert.ok(run.signal === null && run.code === 0,
    `${what}: child exited with code ${run.code}, signal ${run.signal}\n` +
    `stdout:\n${run.stdout.slice(-2000)}\nstderr:\n${run.stderr.slice(-4000)}`);
  assert.ok(run.result && typeof run.result === 'object', `${what}: child printed no JSON result\n${run.stdout}`);
  return run.result;
}

module.exports = {
  ROOT,
  vecvault,
  rng,
  randomVectors,
  clusteredVectors,
  makeItems,
  flatten,
  norm,
  normalized,
  measure,
  bruteForce,
  close,
  assertClose,
  assertMatchesReference,
  recallAtK,
  plainResults,
  assertVecvaultError,
  throwsCode,
  rejectsCode,
  describeError,
  openDb,
  closeAll,
  snapshot,
  tick,
  sleep,
  runChild,
  assertChildOk,
  METRICS: ['cosine', 'l2', 'dot'],
  INDEXES: ['flat', 'hnsw'],
};
