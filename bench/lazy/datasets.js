'use strict';
// The datasets of the lazy benchmark and where their prepared files live.
//
// A dataset is embedding-like 384-D data at some size (data.embedding, the
// project's yardstick) or Fashion-MNIST (60K x 784, l2). Everything prepared
// for one lives outside the repo in ~/.cache/vecvault-bench/lazy3/<id>/:
//   base.f32      the base vectors, raw little-endian float32 (generated data
//                 only: a million rows take a minute to generate, and every
//                 preparation step needs them)
//   session/      the encrypted session, built once with vecvault's defaults
//   session-v<N>/ the same session re-saved by an engine that writes format N
//   hnswlib.bin   hnswlib-node's index of the same vectors, same M/efConstruction
//   params.json   what was built, from what, how long it took
// Ground truth sits next to ann.js's in ~/.cache/vecvault-bench/*.gt (the same
// names and keys, so either script reuses the other's).

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const data = require('../data');

const ROOT = path.join(data.CACHE_DIR, 'lazy3');
const EMBEDDING_DIM = 384;
// vecvault's defaults (lib/options.js); hnswlib-node gets the same graph.
const GRAPH = { m: 16, efConstruction: 200 };
// A fixed, public benchmark key (the one session.js uses). Never use a key
// derived like this for real data.
const KEY = crypto.createHash('sha256').update('vecvault-bench session key v1').digest();

const SIZES = { '10k': 1e4, '50k': 5e4, '100k': 1e5, '200k': 2e5, '500k': 5e5, '1m': 1e6 };

function sizeOf(tag) {
  const n = SIZES[String(tag).toLowerCase()];
  if (!n) throw new RangeError(`lazy: unknown size ${tag} (one of ${Object.keys(SIZES).join(', ')})`);
  return n;
}

// data.embedding picks its mixture size from n; queries must share it.
const embeddingClusters = (n) => Math.max(8, Math.round(Math.sqrt(n) / 4));

function embeddingDataset(tag) {
  const n = sizeOf(tag);
  const id = `${tag}-embedding`;
  return {
    id, kind: 'embedding', n, dim: EMBEDDING_DIM, metric: 'cosine',
    gtName: `embedding-${tag}-${EMBEDDING_DIM}-angular`, // ann.js's name
    dir: path.join(ROOT, id),
    generate: () => data.embedding(n, EMBEDDING_DIM, { seed: 1 }).data,
    queries: (nq) => data.embedding(nq, EMBEDDING_DIM, { seed: 2, clusters: embeddingClusters(n) }).data,
    describe: `embedding-like ${tag} x ${EMBEDDING_DIM}, cosine`,
  };
}

function fashionDataset() {
  const id = 'fashion';
  let cached = null;
  const load = () => (cached = cached || data.loadFashionMnist());
  return {
    id, kind: 'fashion', n: 60000, dim: 784, metric: 'l2',
    gtName: 'fashion-mnist-784-euclidean',
    dir: path.join(ROOT, id),
    generate: () => load().train,
    // The test file alone: a measuring child that parsed the 188 MB training
    // set would count it in its RSS before the session is even opened.
    queries(nq) {
      data.ensureFashionMnist();
      const t = data.parseIdxImages(path.join(data.FASHION_DIR, 't10k-images-idx3-ubyte.gz'));
      if (nq > t.count) throw new RangeError(`lazy: fashion-mnist has only ${t.count} test vectors`);
      return t.data.slice(0, nq * t.dim);
    },
    describe: 'Fashion-MNIST 60K x 784, l2',
  };
}

/** `embedding` at `sizeTag`, or `fashion`. */
function dataset(name, sizeTag) {
  if (name === 'fashion') return fashionDataset();
  if (name === 'embedding') return embeddingDataset(sizeTag);
  throw new RangeError(`lazy: unknown dataset ${name} (embedding or fashion)`);
}

function fingerprint(arr) {
  const head = arr.subarray(0, Math.min(arr.length, 1000 * 384));
  return crypto.createHash('sha256').update(Buffer.from(head.buffer, head.byteOffset, head.byteLength)).digest('hex').slice(0, 16);
}

const baseFile = (ds) => path.join(ds.dir, 'base.f32');

/** The base vectors: read from base.f32 when it is there and whole. */
function baseVectors(ds) {
  if (ds.kind === 'fashion') return ds.generate();
  const file = baseFile(ds);
  const want = ds.n * ds.dim * 4;
  if (fs.existsSync(file) && fs.statSync(file).size === want) {
    const buf = fs.readFileSync(file);
    return new Float32Array(buf.buffer, buf.byteOffset, ds.n * ds.dim);
  }
  const v = ds.generate();
  fs.mkdirSync(ds.dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  fs.renameSync(tmp, file);
  return v;
}

const paramsFile = (ds) => path.join(ds.dir, 'params.json');

function readParams(ds) {
  try { return JSON.parse(fs.readFileSync(paramsFile(ds), 'utf8')); } catch { return {}; }
}

// Read-modify-write of params.json: preparation steps run one after another.
function updateParams(ds, patch) {
  const p = { ...readParams(ds), ...patch };
  fs.mkdirSync(ds.dir, { recursive: true });
  const tmp = `${paramsFile(ds)}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(p, null, 2) + '\n');
  fs.renameSync(tmp, paramsFile(ds));
  return p;
}

module.exports = { ROOT, GRAPH, KEY, SIZES, sizeOf, dataset, fingerprint, baseVectors, baseFile, readParams, updateParams };
