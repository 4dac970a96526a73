'use strict';
// The public VectorDB class. Validates every argument (exact messages,
// typed errors) and shapes results; the engine does all the work in C.
const native = require('./native');
const { VecvaultError, abortError } = require('./errors');
const {
  METRICS,
  INDEXES,
  LIMITS,
  parseDbOptions,
  parseSearchOptions,
  parseAsyncOptions,
  parseK,
  invalid,
  describe,
} = require('./options');

function closedError() {
  return new VecvaultError('the database is closed', 'ERR_CLOSED');
}

const isWellFormed =
  typeof String.prototype.isWellFormed === 'function'
    ? (s) => s.isWellFormed()
    : (s) => !/\p{Surrogate}/u.test(s);

function checkId(id, where) {
  if (typeof id !== 'string') throw new VecvaultError(`${where}id must be a string, got ${describe(id)}`, 'ERR_INVALID_ID');
  if (id.length === 0) throw new VecvaultError(`${where}id must not be empty`, 'ERR_INVALID_ID');
  // Ids are stored as UTF-8: a lone surrogate would silently become U+FFFD
  // and two different ids could collide, so they are refused instead.
  if (!isWellFormed(id)) throw new VecvaultError(`${where}id contains a lone UTF-16 surrogate`, 'ERR_INVALID_ID');
  // A UTF-16 unit is at most 3 UTF-8 bytes: only long ids need measuring.
  if (id.length * 3 > LIMITS.maxIdBytes && Buffer.byteLength(id, 'utf8') > LIMITS.maxIdBytes) {
    throw new VecvaultError(`${where}id is longer than ${LIMITS.maxIdBytes} UTF-8 bytes`, 'ERR_INVALID_ID');
  }
  return id;
}

function encodeMetadata(meta, where) {
  if (meta === undefined || meta === null) return null;
  let json;
  try {
    json = JSON.stringify(meta);
  } catch (err) {
    throw new VecvaultError(`${where}metadata is not JSON-serialisable: ${err.message}`, 'ERR_INVALID_METADATA', { cause: err });
  }
  if (json === undefined) throw new VecvaultError(`${where}metadata is not JSON-serialisable (${typeof meta})`, 'ERR_INVALID_METADATA');
  if (json.length * 3 > LIMITS.maxMetadataBytes && Buffer.byteLength(json, 'utf8') > LIMITS.maxMetadataBytes) {
    throw new VecvaultError(`${where}metadata is larger than ${LIMITS.maxMetadataBytes} bytes as JSON`, 'ERR_INVALID_METADATA');
  }
  return json;
}

function decodeMetadata(json) {
  return json === undefined ? null : JSON.parse(json);
}

/** Copies `v` into out[offset..] after checking shape and values. */
function writeVector(v, dim, out, offset, where) {
  const isArrayLike = Array.isArray(v) || v instanceof Float32Array || v instanceof Float64Array;
  if (!isArrayLike) throw invalid(`${where} must be a Float32Array or an array of numbers, got ${describe(v)}`);
  if (v.length !== dim) {
    throw new VecvaultError(`${where} has ${v.length} dimensions, the database has ${dim}`, 'ERR_DIMENSION_MISMATCH');
  }
  for (let i = 0; i < dim; i++) {
    const x = v[i];
    if (typeof x !== 'number') throw new VecvaultError(`${where}[${i}] is not a number (${describe(x)})`, 'ERR_INVALID_VECTOR');
    const f = Math.fround(x);
    if (!Number.isFinite(f)) {
      throw new VecvaultError(`${where}[${i}] is ${x} (${Number.isFinite(x) ? 'out of float32 range' : 'not finite'})`, 'ERR_INVALID_VECTOR');
    }
    out[offset + i] = f;
  }
}

function toVector(v, dim, where) {
  const out = new Float32Array(dim);
  writeVector(v, dim, out, 0, where);
  return out;
}

/** Turns the engine's compact per-query array into result objects. */
function toResults(raw) {
  const [ids, ds, metas, vectors] = raw;
  const out = new Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const r = { id: ids[i], distance: ds[2 * i], score: ds[2 * i + 1], metadata: decodeMetadata(metas[i]) };
    if (vectors) r.vector = vectors[i];
    out[i] = r;
  }
  return out;
}

class VectorDB {
  #native;
  #options;
  #closed = false;

  /**
   * @param {object} options see index.d.ts (VectorDBOptions)
   */
  constructor(options) {
    const o = parseDbOptions(options);
    this.#options = o;
    this.#native = new native.NativeDB(
      o.dimension,
      METRICS[o.metric],
      INDEXES[o.index],
      o.hnsw.m,
      o.hnsw.efConstruction,
      o.hnsw.efSearch,
      o.threads
    );
  }

  get dimension() {
    return this.#options.dimension;
  }
  get metric() {
    return this.#options.metric;
  }
  get index() {
    return this.#options.index;
  }
  get closed() {
    return this.#closed;
  }
  get size() {
    return this.#open().size();
  }

  #open() {
    if (this.#closed) throw closedError();
    return this.#native;
  }

  add(id, vector, metadata) {
    const n = this.#open();
    checkId(id, '');
    const v = toVector(vector, this.#options.dimension, 'vector');
    n.add(id, v, encodeMetadata(metadata, ''));
  }

  /** Packs items into the engine's batch layout, validating each. */
  #pack(items) {
    if (!Array.isArray(items)) throw invalid(`items must be an array, got ${describe(items)}`);
    const dim = this.#options.dimension;
    const n = items.length;
    const ids = new Array(n);
    const vectors = new Float32Array(n * dim);
    let metas = null;
    for (let i = 0; i < n; i++) {
      const it = items[i];
      const where = `items[${i}].`;
      if (it === null || typeof it !== 'object') throw invalid(`items[${i}] must be an object with id and vector, got ${describe(it)}`);
      ids[i] = checkId(it.id, where);
      writeVector(it.vector, dim, vectors, i * dim, `items[${i}].vector`);
      const m = encodeMetadata(it.metadata, where);
      if (m !== null) {
        if (!metas) metas = new Array(n).fill(null);
        metas[i] = m;
      }
    }
    return { ids, vectors, metas, n };
  }

  addBatch(items) {
    const native = this.#open();
    const p = this.#pack(items);
    native.addBatch(p.ids, p.vectors, p.metas, this.#options.threads);
  }

  async addBatchAsync(items, options) {
    const native = this.#open();
    const { onProgress, signal } = parseAsyncOptions(options);
    if (signal && signal.aborted) throw abortError(signal);
    const p = this.#pack(items);
    // The engine polls this flag between groups of inserts.
    const abortFlag = new Int32Array(new ArrayBuffer(4));
    let userError = null;
    let last = -1;
    const report = (done, total) => {
      if (userError !== null || done <= last) return; // late, coalesced or repeated ticks
      last = done;
      try {
        onProgress(done, total);
      } catch (err) {
        userError = err;
        Atomics.store(abortFlag, 0, 1);
      }
    };
    const onAbort = () => Atomics.store(abortFlag, 0, 1);
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    try {
      await native.addBatchAsync(p.ids, p.vectors, p.metas, this.#options.threads, onProgress ? report : null, abortFlag);
    } catch (err) {
      if (userError !== null) throw userError;
      if (err && err.code === 'ERR_ABORTED') throw abortError(signal);
      throw err;
    } finally {
      if (signal) signal.removeEventListener('abort', onAbort);
    }
    if (userError !== null) throw userError;
    if (onProgress && last < p.n) report(p.n, p.n);
    if (userError !== null) throw userError;
  }

  get(id) {
    const n = this.#open();
    checkId(id, '');
    const rec = n.get(id);
    if (rec === null) return null;
    return { id, vector: rec[0], metadata: decodeMetadata(rec[1]) };
  }

  has(id) {
    const n = this.#open();
    checkId(id, '');
    return n.has(id);
  }

  delete(id) {
    const n = this.#open();
    checkId(id, '');
    return n.delete(id);
  }

  #searchArgs(query, k, opts) {
    const o = parseSearchOptions(opts);
    const kk = parseK(k);
    const q = toVector(query, this.#options.dimension, 'query');
    return [q, 1, kk, o.efSearch, o.includeVector, 0];
  }

  search(query, k, opts) {
    const n = this.#open();
    return toResults(n.search(...this.#searchArgs(query, k, opts)));
  }

  async searchAsync(query, k, opts) {
    const n = this.#open();
    return toResults(await n.searchAsync(...this.#searchArgs(query, k, opts)));
  }

  #batchArgs(queries, k, opts) {
    const o = parseSearchOptions(opts);
    const kk = parseK(k);
    const dim = this.#options.dimension;
    let flat;
    let nq;
    if (queries instanceof Float32Array) {
      if (queries.length % dim !== 0) {
        throw new VecvaultError(`queries has ${queries.length} floats, not a multiple of dimension ${dim}`, 'ERR_DIMENSION_MISMATCH');
      }
      nq = queries.length / dim;
      flat = new Float32Array(queries.length);
      for (let i = 0; i < nq; i++) writeVector(queries.subarray(i * dim, (i + 1) * dim), dim, flat, i * dim, `queries[${i}]`);
    } else if (Array.isArray(queries)) {
      nq = queries.length;
      flat = new Float32Array(nq * dim);
      for (let i = 0; i < nq; i++) writeVector(queries[i], dim, flat, i * dim, `queries[${i}]`);
    } else {
      throw invalid(`queries must be an array of vectors or a Float32Array, got ${describe(queries)}`);
    }
    return [flat, nq, kk, o.efSearch, o.includeVector, this.#options.threads];
  }

  searchBatch(queries, k, opts) {
    const n = this.#open();
    const args = this.#batchArgs(queries, k, opts);
    if (args[1] === 0) return [];
    return n.searchBatch(...args).map(toResults);
  }

  async searchBatchAsync(queries, k, opts) {
    const n = this.#open();
    const args = this.#batchArgs(queries, k, opts);
    if (args[1] === 0) return [];
    return (await n.searchBatchAsync(...args)).map(toResults);
  }

  /** Frees native memory now, or as soon as in-flight async work settles.
   * Every later call throws ERR_CLOSED. Calling it again does nothing. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close();
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    const o = this.#options;
    const size = this.#closed ? 'closed' : this.#native.size();
    return `VectorDB { dimension: ${o.dimension}, metric: '${o.metric}', index: '${o.index}', size: ${size} }`;
  }
}

module.exports = { VectorDB };
