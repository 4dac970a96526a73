'use strict';
// Benchmark data: the Fashion-MNIST loader (Debian's dataset-fashion-mnist),
// a seeded synthetic generator for embedding-like clustered vectors, and an
// exact brute-force ground truth cached under ~/.cache/vecvault-bench/.
//
// Ground truth is computed in plain JS on purpose: the system under test must
// never grade itself. The same file doubles as the ground-truth worker script
// (worker_threads), see the bottom of the file.

const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { spawnSync } = require('child_process');
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
const FASHION_PACKAGE = 'dataset-fashion-mnist';
const CACHE_DIR = path.join(os.homedir(), '.cache', 'vecvault-bench');
const GT_MAGIC = 0x54475656; // "VVGT" little-endian
const GT_VERSION = 1;

// ---------------------------------------------------------------- Fashion-MNIST

function fashionFile(split) {
  return path.join(FASHION_DIR, `${split}-images-idx3-ubyte.gz`);
}

function fashionInstalled() {
  return fs.existsSync(fashionFile('train')) && fs.existsSync(fashionFile('t10k'));
}

// Installs the Debian package when missing. Only root may run apt-get here;
// anyone else gets the exact command to run.
function ensureFashionMnist({ quiet = false } = {}) {
  if (fashionInstalled()) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    throw new Error(`Fashion-MNIST is missing (${FASHION_DIR}). Install it with:\n` +
      `  sudo apt-get install -y ${FASHION_PACKAGE}`);
  }
  if (!quiet) console.error(`[setup] installing ${FASHION_PACKAGE} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', FASHION_PACKAGE], { stdio: 'inherit', env });
  if (r.status !== 0) {
    // A fresh machine may have no package lists yet.
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', FASHION_PACKAGE], { stdio: 'inherit', env });
  }
  if (r.status !== 0 || !fashionInstalled()) {
    throw new Error(`could not install ${FASHION_PACKAGE}; run: apt-get install -y ${FASHION_PACKAGE}`);
  }
}

// IDX: big-endian magic 0x00000803 (ubyte, 3 dims), then the dims, then bytes.
function parseIdxImages(file) {
  const buf = zlib.gunzipSync(fs.readFileSync(file));
  const magic = buf.readUInt32BE(0);
  if (magic !== 0x00000803) throw new Error(`${file}: not an IDX3 ubyte file (magic 0x${magic.toString(16)})`);
  const count = buf.readUInt32BE(4);
  const rows = buf.readUInt32BE(8);
  const cols = buf.readUInt32BE(12);
  const dim = rows * cols;
  if (buf.length !== 16 + count * dim) throw new Error(`${file}: truncated (${buf.length} bytes for ${count}x${dim})`);
  const out = new Float32Array(count * dim);
  for (let i = 0; i < out.length; i++) out[i] = buf[16 + i];
  return { data: out, count, dim };
}

// IDX labels: big-endian magic 0x00000801 (ubyte, 1 dim), the count, then one byte each.
function parseIdxLabels(file) {
  const buf = zlib.gunzipSync(fs.readFileSync(file));
  const magic = buf.readUInt32BE(0);
  if (magic !== 0x00000801) throw new Error(`${file}: not an IDX1 ubyte file (magic 0x${magic.toString(16)})`);
  const count = buf.readUInt32BE(4);
  if (buf.length !== 8 + count) throw new Error(`${file}: truncated (${buf.length} bytes for ${count} labels)`);
  return Uint8Array.from(buf.subarray(8));
}

// The class (0..9) of every train and test image, in the order of loadFashionMnist's rows.
function loadFashionLabels() {
  ensureFashionMnist();
  const file = (split) => path.join(FASHION_DIR, `${split}-labels-idx1-ubyte.gz`);
  return { train: parseIdxLabels(file('train')), test: parseIdxLabels(file('t10k')) };
}

// Pixel values are kept as 0..255 floats, as ann-benchmarks does.
function loadFashionMnist() {
  ensureFashionMnist();
  const train = parseIdxImages(fashionFile('train'));
  const test = parseIdxImages(fashionFile('t10k'));
  if (train.dim !== test.dim) throw new Error('fashion-mnist: train/test dimension mismatch');
  return { train: train.data, test: test.data, dim: train.dim, nTrain: train.count, nTest: test.count };
}

// ---------------------------------------------------------------- synthetic

// xoshiro128** seeded through splitmix32: fast, 32-bit only, reproducible.
function makeRng(seed) {
  let s = seed >>> 0;
  const splitmix32 = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix32(), b = splitmix32(), c = splitmix32(), d = splitmix32();
  const next = () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = rotl(d, 11);
    return r;
  };
  const uniform = () => (next() + 0.5) / 4294967296; // (0, 1)
  let spare = NaN;
  const gaussian = () => {
    if (!Number.isNaN(spare)) { const g = spare; spare = NaN; return g; }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const th = 2 * Math.PI * uniform();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
  return { next, uniform, gaussian };
}

function rotl(x, k) { return ((x << k) | (x >>> (32 - k))) >>> 0; }

function normalizeRows(data, dim) {
  for (let off = 0; off < data.length; off += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[off + j] * data[off + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) data[off + j] *= inv;
  }
}

const SYNTHETIC_DEFAULTS = { seed: 1, centerSeed: 42, clusters: 0, normalize: true, spread: 3.0, decay: 0.5 };

// Embedding-like clustered data. Cluster centres are random unit vectors (from
// centerSeed, shared by base and queries); a point is centre + noise whose
// per-dimension scale decays as (j+1)^-decay (a low effective rank, as real
// embedding spectra have), with the decaying axes rotated per cluster. The
// noise norm is `spread` times the centre norm, so neighbouring clusters
// overlap and a query's true neighbours are not all in its own cluster (with
// the defaults, about 80% of the true top-10 at 100K; HNSW M=16 then needs
// efSearch ~64 for recall@10 0.95). Base and queries use the same centres with
// different `seed`s.
function synthetic(n, dim, opts = {}) {
  const o = { ...SYNTHETIC_DEFAULTS, ...opts };
  const clusters = o.clusters > 0 ? o.clusters : Math.max(8, Math.round(Math.sqrt(n)));

  const crng = makeRng(o.centerSeed);
  const centers = new Float64Array(clusters * dim);
  for (let i = 0; i < centers.length; i++) centers[i] = crng.gaussian();
  for (let c = 0; c < clusters; c++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += centers[c * dim + j] ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) centers[c * dim + j] *= inv;
  }
  const shift = new Int32Array(clusters);
  for (let c = 0; c < clusters; c++) shift[c] = crng.next() % dim;

  // Per-dimension noise scale, normalised so that E|noise|^2 = spread^2.
  const scale = new Float64Array(dim);
  let total = 0;
  for (let j = 0; j < dim; j++) { scale[j] = Math.pow(j + 1, -o.decay); total += scale[j] ** 2; }
  for (let j = 0; j < dim; j++) scale[j] *= o.spread / Math.sqrt(total);

  const rng = makeRng(o.seed);
  const data = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = rng.next() % clusters;
    labels[i] = c;
    const co = c * dim, sh = shift[c], off = i * dim;
    for (let j = 0; j < dim; j++) {
      let jj = j + sh; if (jj >= dim) jj -= dim;
      data[off + jj] = centers[co + jj] + scale[j] * rng.gaussian();
    }
  }
  if (o.normalize) normalizeRows(data, dim);
  return { data, labels, clusters, dim, n, params: { ...o, clusters } };
}

// Embedding-shaped data: what sentence-embedding models produce has a low
// intrinsic dimension and a relative contrast (mean distance to a random
// point over distance to the nearest) of about 2, unlike isotropic clusters.
// A point is drawn from a Gaussian mixture in a LATENT-dimensional space
// (component means ~ N(0, I), within-component spread `spread`), lifted to
// `dim` dimensions by a fixed random linear map (from mapSeed, shared by base
// and queries) and a tanh, plus small isotropic noise, then normalised.
// Components: `clusters` (0 = about sqrt(n) / 4, at least 8). Base and queries
// share means and map; they differ by `seed`. relativeContrast() measures the
// result: 1.97 at 10K and 2.13 at 100K with the defaults (200 queries).
const EMBEDDING_DEFAULTS = { seed: 1, mapSeed: 7, clusters: 0, latent: 64, spread: 2.0, gain: 0.6, noise: 0.01 };

function embedding(n, dim, opts = {}) {
  const o = { ...EMBEDDING_DEFAULTS, ...opts };
  const L = o.latent;
  const clusters = o.clusters > 0 ? o.clusters : Math.max(8, Math.round(Math.sqrt(n) / 4));
  const mrng = makeRng(o.mapSeed);
  const means = new Float64Array(clusters * L);
  for (let i = 0; i < means.length; i++) means[i] = mrng.gaussian();
  const map = new Float64Array(dim * L); // row j maps the latent vector to output j
  const g = o.gain / Math.sqrt(L);
  for (let i = 0; i < map.length; i++) map[i] = mrng.gaussian() * g;
  const rng = makeRng(o.seed);
  const data = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  const z = new Float64Array(L);
  for (let i = 0; i < n; i++) {
    const c = rng.next() % clusters;
    labels[i] = c;
    for (let k = 0; k < L; k++) z[k] = means[c * L + k] + o.spread * rng.gaussian();
    const off = i * dim;
    for (let j = 0; j < dim; j++) {
      let t = 0;
      const mo = j * L;
      for (let k = 0; k < L; k++) t += map[mo + k] * z[k];
      data[off + j] = Math.tanh(t) + o.noise * rng.gaussian();
    }
  }
  normalizeRows(data, dim);
  return { data, labels, clusters, dim, n, params: { ...o, clusters, kind: 'embedding' } };
}

// Relative contrast of `queries` against `base` (cosine distance): the mean
// over queries of (mean distance to the base) / (distance to the nearest).
function relativeContrast(base, queries, dim) {
  const nb = base.length / dim, nq = queries.length / dim;
  let sum = 0;
  for (let q = 0; q < nq; q++) {
    let min = Infinity, total = 0;
    for (let b = 0; b < nb; b++) {
      const d = 1 - dot(base, b * dim, queries, q * dim, dim);
      total += d;
      if (d < min) min = d;
    }
    sum += total / nb / Math.max(min, 1e-12);
  }
  return sum / nq;
}

// ---------------------------------------------------------------- distances

// Distances are float64 so that ground truth and recall checks agree exactly.
// l2 is the squared distance (same order); cosine is 1 - cos; dot is -dot.
function l2sq(a, ao, b, bo, dim) {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, j = 0;
  for (; j + 3 < dim; j += 4) {
    const d0 = a[ao + j] - b[bo + j], d1 = a[ao + j + 1] - b[bo + j + 1];
    const d2 = a[ao + j + 2] - b[bo + j + 2], d3 = a[ao + j + 3] - b[bo + j + 3];
    s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
  }
  for (; j < dim; j++) { const d = a[ao + j] - b[bo + j]; s0 += d * d; }
  return (s0 + s1) + (s2 + s3);
}

function dot(a, ao, b, bo, dim) {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, j = 0;
  for (; j + 3 < dim; j += 4) {
    s0 += a[ao + j] * b[bo + j]; s1 += a[ao + j + 1] * b[bo + j + 1];
    s2 += a[ao + j + 2] * b[bo + j + 2]; s3 += a[ao + j + 3] * b[bo + j + 3];
  }
  for (; j < dim; j++) s0 += a[ao + j] * b[bo + j];
  return (s0 + s1) + (s2 + s3);
}

function norms(data, dim) {
  const n = data.length / dim;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(dot(data, i * dim, data, i * dim, dim));
  return out;
}

// Exact distance between query qi and base vector bi, as ground truth defines it.
function distance(metric, base, bi, queries, qi, dim, baseNorms, queryNorms) {
  if (metric === 'l2') return l2sq(queries, qi * dim, base, bi * dim, dim);
  const d = dot(queries, qi * dim, base, bi * dim, dim);
  if (metric === 'dot') return -d;
  const den = (queryNorms ? queryNorms[qi] : Math.sqrt(dot(queries, qi * dim, queries, qi * dim, dim))) *
    (baseNorms ? baseNorms[bi] : Math.sqrt(dot(base, bi * dim, base, bi * dim, dim)));
  return den > 0 ? 1 - d / den : 1;
}

// ---------------------------------------------------------------- ground truth

// Brute force for queries [q0, q1): blocks of QB queries share each base row
// while it sits in L1, so the base is streamed once per block, not per query.
function bruteForceRange(base, queries, dim, metric, k, q0, q1, onRow) {
  const n = base.length / dim;
  const QB = 8;
  const baseNorms = metric === 'cosine' ? norms(base, dim) : null;
  const queryNorms = metric === 'cosine' ? norms(queries, dim) : null;
  const ids = new Int32Array((q1 - q0) * k);
  const dists = new Float64Array((q1 - q0) * k);
  for (let qb = q0; qb < q1; qb += QB) {
    const qe = Math.min(qb + QB, q1);
    const m = qe - qb;
    // Per query: a sorted top-k kept by insertion (rarely touched after warm-up).
    const topD = [], topI = [], count = new Int32Array(m);
    for (let t = 0; t < m; t++) { topD.push(new Float64Array(k).fill(Infinity)); topI.push(new Int32Array(k).fill(-1)); }
    for (let i = 0; i < n; i++) {
      for (let t = 0; t < m; t++) {
        const d = distance(metric, base, i, queries, qb + t, dim, baseNorms, queryNorms);
        const D = topD[t];
        if (d >= D[k - 1]) continue;
        const I = topI[t];
        let p = k - 1;
        while (p > 0 && D[p - 1] > d) { D[p] = D[p - 1]; I[p] = I[p - 1]; p--; }
        D[p] = d; I[p] = i;
        if (count[t] < k) count[t]++;
      }
    }
    for (let t = 0; t < m; t++) {
      ids.set(topI[t], (qb + t - q0) * k);
      dists.set(topD[t], (qb + t - q0) * k);
    }
    if (onRow) onRow(m);
  }
  return { ids, dists };
}

// A cheap fingerprint of the data, so a cache entry never outlives a change in
// the generator or the files it was computed from.
function fingerprint(arr) {
  let h = 0x811c9dc5;
  const step = Math.max(1, Math.floor(arr.length / 65536));
  const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < arr.length; i += step) {
    f32[0] = arr[i];
    h = Math.imul(h ^ u32[0], 0x01000193) >>> 0;
  }
  return (h >>> 0).toString(16).padStart(8, '0') + '-' + arr.length.toString(36);
}

function gtCachePath(name, base, queries, metric, k) {
  const key = `${name}.${metric}.k${k}.b${fingerprint(base)}.q${fingerprint(queries)}`;
  return path.join(CACHE_DIR, `${key.replace(/[^A-Za-z0-9._-]/g, '_')}.gt`);
}

function readGt(file, nq, k) {
  const buf = fs.readFileSync(file);
  if (buf.length < 16 || buf.readUInt32LE(0) !== GT_MAGIC || buf.readUInt32LE(4) !== GT_VERSION) return null;
  if (buf.readUInt32LE(8) !== nq || buf.readUInt32LE(12) !== k) return null;
  const want = 16 + nq * k * 4 + nq * k * 8;
  if (buf.length !== want) return null;
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  return { ids: new Int32Array(ab, 16, nq * k), dists: new Float64Array(ab, 16 + nq * k * 4, nq * k) };
}

function writeGt(file, nq, k, ids, dists) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const head = Buffer.alloc(16);
  head.writeUInt32LE(GT_MAGIC, 0); head.writeUInt32LE(GT_VERSION, 4);
  head.writeUInt32LE(nq, 8); head.writeUInt32LE(k, 12);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, Buffer.concat([head, Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength),
    Buffer.from(dists.buffer, dists.byteOffset, dists.byteLength)]));
  fs.renameSync(tmp, file);
}

function toShared(arr) {
  const sab = new SharedArrayBuffer(arr.byteLength);
  const out = new Float32Array(sab);
  out.set(arr);
  return out;
}

// Exact top-k for every query. Returns { ids: Int32Array(nq*k), dists:
// Float64Array(nq*k), k, cached }. Cached by name + metric + k + data fingerprints.
async function groundTruth(name, base, queries, dim, metric, k = 100, { threads = os.cpus().length, log = console.error } = {}) {
  const nq = queries.length / dim;
  const n = base.length / dim;
  if (!Number.isInteger(nq) || !Number.isInteger(n)) throw new Error('groundTruth: array length is not a multiple of dim');
  if (k > n) k = n;
  const file = gtCachePath(name, base, queries, metric, k);
  if (fs.existsSync(file)) {
    const gt = readGt(file, nq, k);
    if (gt) return { ...gt, k, cached: true, file };
  }
  const t0 = Date.now();
  log(`[gt] ${name}: exact ${metric} top-${k} for ${nq} queries over ${n} x ${dim} (${threads} threads)...`);
  const ids = new Int32Array(nq * k);
  const dists = new Float64Array(nq * k);
  const workers = Math.max(1, Math.min(threads, nq));
  if (workers === 1) {
    const r = bruteForceRange(base, queries, dim, metric, k, 0, nq);
    ids.set(r.ids); dists.set(r.dists);
  } else {
    const sBase = toShared(base), sQueries = toShared(queries);
    const per = Math.ceil(nq / workers);
    let done = 0, lastLog = Date.now();
    await Promise.all(Array.from({ length: workers }, (_, w) => new Promise((resolve, reject) => {
      const q0 = w * per, q1 = Math.min(nq, q0 + per);
      if (q0 >= q1) return resolve();
      const worker = new Worker(__filename, { workerData: { kind: 'vv-bench-gt', base: sBase, queries: sQueries, dim, metric, k, q0, q1 } });
      worker.on('message', (m) => {
        if (m.progress) {
          done += m.progress;
          if (Date.now() - lastLog > 5000) { lastLog = Date.now(); log(`[gt]   ${done}/${nq} queries`); }
          return;
        }
        ids.set(m.ids, q0 * k); dists.set(m.dists, q0 * k);
        resolve();
      });
      worker.on('error', reject);
      worker.on('exit', (code) => { if (code !== 0) reject(new Error(`ground-truth worker exited with ${code}`)); });
    })));
  }
  writeGt(file, nq, k, ids, dists);
  log(`[gt] ${name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s, cached at ${file}`);
  return { ids, dists, k, cached: false, file };
}

if (!isMainThread && workerData && workerData.kind === 'vv-bench-gt') {
  const { base, queries, dim, metric, k, q0, q1 } = workerData;
  const r = bruteForceRange(base, queries, dim, metric, k, q0, q1, (m) => parentPort.postMessage({ progress: m }));
  parentPort.postMessage({ ids: r.ids, dists: r.dists }, [r.ids.buffer, r.dists.buffer]);
}

module.exports = {
  FASHION_DIR,
  FASHION_PACKAGE,
  CACHE_DIR,
  ensureFashionMnist,
  fashionInstalled,
  loadFashionMnist,
  loadFashionLabels,
  parseIdxImages,
  parseIdxLabels,
  makeRng,
  synthetic,
  embedding,
  relativeContrast,
  normalizeRows,
  distance,
  norms,
  groundTruth,
  gtCachePath,
  bruteForceRange,
};
