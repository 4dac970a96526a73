'use strict';
// The public VectorDB class. Validates every argument (exact messages,
// typed errors) and shapes results; the engine does all the work in C.
const fs = require('fs');
const path = require('path');
const native = require('./native');
const { VecvaultError, abortError } = require('./errors');
const { Cache, sharedCache } = require('./cache');
const { openNative, isStorage } = require('./storage/bridge');
const { withLease } = require('./storage/lease');
const transfer = require('./storage/transfer');
const { parseFilterable, compileFilter, encodeAttrs } = require('./filter');
const {
  METRICS,
  INDEXES,
  LIMITS,
  parseDbOptions,
  parseSearchOptions,
  parseAsyncOptions,
  parseSaveOptions,
  parseSignalOptions,
  parseSearchAsyncOptions,
  parseK,
  parseLoadOptions,
  parseCacheSize,
  cacheBytes,
  invalid,
  describe,
  ownFields,
  ownOptions,
  intIn,
  isWellFormed,
  OPTION_KEYS,
} = require('./options');

/** Validates a session path and returns it absolute and normalised, so
 * "dir" and "dir/" name the same session (and incremental saves match). */
function checkDir(dir) {
  if (typeof dir !== 'string' || dir.length === 0) throw invalid(`dir must be a non-empty string path, got ${describe(dir)}`);
  if (dir.includes('\0')) throw invalid('dir must not contain NUL characters');
  return path.resolve(dir);
}

/** A save, load or inspect target: a directory path, or a Storage (index.d.ts). */
function resolveTarget(target, what) {
  if (isStorage(target)) return { storage: target, dir: null };
  if (typeof target === 'string') return { storage: null, dir: checkDir(target) };
  throw invalid(
    `${what} must be a directory path or a Storage (an object with read, write, delete, list, readManifest and writeManifest), got ${describe(target)}`
  );
}

/**
 * Runs `fn(where)` with `where` the engine's view of `t`: the path, or a
 * native handle over the Storage whose requests honour `signal` while fn
 * runs (and only then: a lazy database keeps reading through the handle).
 */
/** Codes of errors about a session's files, whose messages must name the session. */
const ABOUT_FILES = new Set([
  'ERR_WRONG_KEY', 'ERR_MANIFEST_CORRUPT', 'ERR_MANIFEST_AUTH', 'ERR_CHUNK_MISSING', 'ERR_CHUNK_CORRUPT', 'ERR_METADATA_CORRUPT',
  'ERR_UNSUPPORTED_VERSION', 'ERR_LOCKED', 'ERR_IO', 'ERR_NOSPC', 'ERR_NOT_FOUND', 'ERR_ROLLBACK', 'ERR_NOT_A_SESSION', 'ERR_CONFLICT', 'ERR_ACCESS',
]);

/** `err`, its message naming the session directory `dir` if it is about the session's files and does not yet. */
function namingDir(err, dir) {
  if (err instanceof VecvaultError && ABOUT_FILES.has(err.code) && !err.message.includes(dir)) err.message += ` (session ${dir})`;
  return err;
}

async function withTarget(t, options, signal, fn) {
  if (!t.storage) {
    try {
      return await fn(t.dir, null);
    } catch (err) {
      throw namingDir(err, t.dir);
    }
  }
  const bridge = openNative(t.storage, options);
  bridge.state.signal = signal || undefined;
  try {
    return await fn(bridge.handle, bridge);
  } finally {
    bridge.state.signal = undefined;
  }
}

/**
 * Creates the missing parents of a session directory (mkdir -p), never the
 * directory itself: the engine creates that, and checks what it holds
 * (docs/FORMAT.md section 1, "Where a save may write").
 */
async function makeParents(dir) {
  const parent = path.dirname(dir);
  try {
    await fs.promises.mkdir(parent, { recursive: true });
  } catch (err) {
    const code = { ENOSPC: 'ERR_NOSPC', EDQUOT: 'ERR_NOSPC', EACCES: 'ERR_ACCESS', EPERM: 'ERR_ACCESS', EROFS: 'ERR_ACCESS' }[err.code] || 'ERR_IO';
    throw new VecvaultError(`cannot create ${JSON.stringify(parent)}, the parent of the save target: ${err.message}`, code, { cause: err });
  }
}

function checkTransferEnd(v, what) {
  const t = resolveTarget(v, `the ${what}`);
  return t.storage || t.dir;
}

function refreshing(what) {
  return new VecvaultError(`${what} while refresh() runs: its write would be lost with the generation being replaced; await refresh() first`, 'ERR_LOCKED');
}

function asyncRequired(what, instead) {
  return new VecvaultError(
    `${what} would wait for this session's storage, which is implemented in JavaScript and runs on this thread: use ${instead}`,
    'ERR_ASYNC_REQUIRED'
  );
}

function closedError() {
  return new VecvaultError('the database is closed', 'ERR_CLOSED');
}

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

/** Metadata as stored (JSON text, or undefined for none) back to a value.
 * vecvault only stores JSON.stringify output, but a hand-edited unencrypted
 * session or a C API caller can store anything: that is reported, not thrown
 * as a bare SyntaxError. */
function decodeMetadata(json, id) {
  if (json === undefined) return null;
  try {
    return JSON.parse(json);
  } catch (err) {
    throw new VecvaultError(`the metadata of id ${JSON.stringify(id)} is not valid JSON: ${err.message}`, 'ERR_METADATA_CORRUPT', { cause: err });
  }
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

/** Attribute records back to back, and where each starts (n + 1 offsets), as the engine takes a batch's. */
function packRecords(records) {
  const offsets = new Uint32Array(records.length + 1);
  let total = 0;
  for (let i = 0; i < records.length; i++) {
    offsets[i] = total;
    total += records[i] ? records[i].length : 0;
  }
  offsets[records.length] = total;
  const all = Buffer.allocUnsafe(total);
  for (let i = 0; i < records.length; i++) if (records[i]) records[i].copy(all, offsets[i]);
  return [all, offsets];
}

const ENTRIES_KEYS = ['filter', 'batchSize', 'includeVector', 'signal'];

/** Ends an entries() walk on an engine (closed meanwhile: nothing to end). */
function endWalk(nativeDb) {
  try {
    nativeDb.walk(-1);
  } catch {
    /* closed: the engine and its walks are gone */
  }
}
/* Walks whose iterator was dropped mid-way: ended when it is collected. */
const WALKS = new FinalizationRegistry(endWalk);

/** Turns the engine's compact per-query array into result objects. */
function toResults(raw) {
  const [ids, ds, metas, vectors] = raw;
  const out = new Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const r = { id: ids[i], distance: ds[2 * i], score: ds[2 * i + 1], metadata: decodeMetadata(metas[i], ids[i]) };
    if (vectors) r.vector = vectors[i];
    out[i] = r;
  }
  return out;
}

// Lets VectorDB.load hand a loaded engine to the constructor; not exported.
const ADOPT = Symbol('vecvault.adopt');
const PHASES = ['insert', 'chunks', 'index', 'commit', 'manifest'];
// `using db = ...` / `await using db = ...`: Node 18's early releases lack
// the well-known symbols; these are the registered ones Node itself uses.
const DISPOSE = Symbol.dispose || Symbol.for('nodejs.dispose');
const ASYNC_DISPOSE = Symbol.asyncDispose || Symbol.for('nodejs.asyncDispose');

/** db.loadStats (index.d.ts LoadStats, read-only) from the engine's load or refresh stats. */
function loadStatsOf(stats, cacheSizeMb, t0) {
  return Object.freeze({
    totalVectors: stats.totalVectors,
    chunkCount: stats.chunkCount,
    chunksLoaded: stats.chunksLoaded,
    cacheSizeMb,
    lazy: stats.lazy,
    generation: stats.generation,
    bytesRead: stats.bytesRead,
    loadTimeMs: performance.now() - t0,
  });
}

/** Passes a key or passphrase to the engine, wiping our temporary copy. */
function applySecret(nativeDb, encrypt, key, passphrase) {
  const pass = typeof passphrase === 'string' ? Buffer.from(passphrase, 'utf8') : passphrase;
  try {
    nativeDb.setSecret(encrypt ? 1 : 0, key, pass);
  } finally {
    if (typeof passphrase === 'string') pass.fill(0);
  }
}

// addEventListener options with a null prototype: it reads `signal` (and
// more) from them, and an inherited aborted one would drop the listener.
const ONCE = Object.freeze({ __proto__: null, once: true });

/**
 * `promise`, or AbortError as soon as `signal` aborts, for a native call
 * that may not stop at once (inspect; a lazy search stops before its next
 * chunk read when its abort flag is set). The call itself runs on to its
 * end in the background and its outcome is dropped; it cannot block
 * for long (a FIFO where a session file belongs is an error, not a wait:
 * docs/FORMAT.md section 1), and close() waits for it.
 */
function untilAborted(promise, signal) {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(abortError(signal));
    };
    signal.addEventListener('abort', onAbort, ONCE);
    const done = () => signal.removeEventListener('abort', onAbort);
    promise.then((v) => { done(); resolve(v); }, (e) => { done(); reject(e); });
  });
}

/**
 * Runs a native job with progress and abort wiring shared by every long
 * operation: `start(report, abortFlag)` must return the job's promise.
 * Reported values are made monotonic, the last call is (total, total), a
 * throwing callback rejects with its error, and an abort rejects with
 * AbortError.
 */
async function runJob(start, onProgress, signal, withInfo) {
  if (signal && signal.aborted) throw abortError(signal);
  const abortFlag = new Int32Array(new ArrayBuffer(4));
  let userError = null;
  let last = -1;
  const report = (done, total, phase, bytes) => {
    if (userError !== null || done <= last) return; // late, coalesced or repeated ticks
    last = done;
    try {
      if (withInfo) {
        onProgress(done, total, { phase: PHASES[phase] || 'unknown', bytes });
      } else {
        onProgress(done, total);
      }
    } catch (err) {
      userError = err;
      Atomics.store(abortFlag, 0, 1);
    }
  };
  const onAbort = () => Atomics.store(abortFlag, 0, 1);
  if (signal) signal.addEventListener('abort', onAbort, ONCE);
  let result;
  try {
    result = await start(onProgress ? report : null, abortFlag);
  } catch (err) {
    if (userError !== null) throw userError;
    if (err && err.code === 'ERR_ABORTED') throw abortError(signal);
    throw err;
  } finally {
    if (signal) signal.removeEventListener('abort', onAbort);
  }
  if (userError !== null) throw userError;
  return {
    result,
    /** The closing (total, total) call, from the job's own result: the
     * native side's last tick may still be queued, or coalesced away. */
    finish(total, phase, bytes) {
      if (onProgress && last < total) report(total, total, phase, bytes);
      if (userError !== null) throw userError;
    },
  };
}

class VectorDB {
  #native;
  #options;
  #closed = false;
  /** Where the session was last loaded from or saved to ({ storage, dir, retry }), for refresh() and export(). */
  #source = null;
  /** How it was loaded (refresh() loads the same way). */
  #loadOpts = null;
  /** The engine may read pages through a Storage implemented in JS (lazy, loaded from or saved to one). */
  #jsReads = false;
  /** The generation this database holds: loaded, refreshed to, or saved. */
  #generation = -1;
  /** A refresh() is in flight: writes would be lost with the engine it replaces. */
  #refreshing = false;
  /** Async calls in flight that may hold the engine's lock while they wait for JS storage. */
  #storageBusy = 0;
  /** The declared filterable field paths (frozen); a filter may name only these. */
  #fields;
  /** Set by VectorDB.load and refresh(): how the session was opened (frozen; see the loadStats getter). */
  #loadStats = null;

  /**
   * @param {object} options see index.d.ts (VectorDBOptions)
   */
  constructor(options, adopted) {
    if (options === ADOPT) {
      this.#native = adopted.native;
      this.#options = adopted.options;
      this.#fields = Object.freeze(adopted.native.filterable());
      return;
    }
    const o = parseDbOptions(options);
    this.#fields = parseFilterable(o.filterable);
    this.#options = o;
    this.#native = new native.NativeDB(
      o.dimension,
      METRICS[o.metric],
      INDEXES[o.index],
      o.hnsw.m,
      o.hnsw.efConstruction,
      o.hnsw.efSearch,
      o.threads,
      o.chunkSize
    );
    if (this.#fields.length) this.#native.setFilterable([...this.#fields]);
    applySecret(this.#native, o.encryptAtRest, o.key, o.passphrase);
    // The engine holds its own guarded copy; keep no reference to the secret.
    o.key = null;
    o.passphrase = null;
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
  /** How the session was opened (null for a database made in memory); read-only, as index.d.ts declares. */
  get loadStats() {
    return this.#loadStats;
  }
  /** The metadata paths filters may use, as declared when the database was created. */
  get filterable() {
    return this.#fields;
  }
  get size() {
    return this.#openForLock('size').size();
  }

  #open() {
    if (this.#closed) throw closedError();
    return this.#native;
  }

  /** A synchronous read: refused when it would read through JS storage. */
  #openForRead(what, instead) {
    const n = this.#open();
    if (this.#jsReads) throw asyncRequired(what, instead);
    return n;
  }

  /**
   * A synchronous call that takes the engine's lock without reading pages
   * (size, has, count). On JS storage, while an async call holds the read lock
   * waiting for a page only this thread can deliver, a writer queued behind it
   * (the lock prefers writers) would keep this thread waiting for ever: refused.
   */
  #openForLock(what) {
    const n = this.#open();
    if (this.#jsReads && this.#storageBusy > 0) throw asyncRequired(what, `it once the pending searchAsync(), getAsync(), updateMetadataAsync(), entries(), preload(), refresh() or save() has settled`);
    return n;
  }

  /** A synchronous write: refused while an async call may hold the lock it needs and wait for JS storage. */
  #openForWrite(what) {
    const n = this.#open();
    if (this.#refreshing) throw refreshing(what);
    if (this.#jsReads && this.#storageBusy > 0) throw asyncRequired(what, `addBatchAsync(), or await the pending searchAsync(), getAsync(), preload(), refresh() or save() first`);
    return n;
  }

  /**
   * Counts an async call that may wait for JS storage under the engine's lock.
   * A lazy read's error about the session's files names its directory.
   */
  async #busy(fn) {
    this.#storageBusy++;
    try {
      return await fn();
    } catch (err) {
      throw this.#source && this.#source.dir ? namingDir(err, this.#source.dir) : err;
    } finally {
      this.#storageBusy--;
    }
  }

  add(id, vector, metadata) {
    const n = this.#openForWrite('add()');
    checkId(id, '');
    const v = toVector(vector, this.#options.dimension, 'vector');
    const json = encodeMetadata(metadata, '');
    n.add(id, v, json, this.#attrs(json));
  }

  /** The attribute record of metadata stored as `json`: from what a reader will get back, not the
   * object given (a Date becomes a string, undefined members vanish). */
  #attrs(json) {
    if (!this.#fields.length) return null;
    return encodeAttrs(json === null ? null : JSON.parse(json), this.#fields);
  }

  /** Filter program bytes for the engine, or null (no filter, or one that matches everything). */
  #filter(filter, where) {
    if (filter === undefined) return null;
    return compileFilter(filter, this.#fields, where);
  }

  /** Packs items into the engine's batch layout, validating each. */
  #pack(items) {
    if (!Array.isArray(items)) throw invalid(`items must be an array, got ${describe(items)}`);
    const dim = this.#options.dimension;
    const n = items.length;
    const ids = new Array(n);
    const vectors = new Float32Array(n * dim);
    let metas = null;
    const records = this.#fields.length ? new Array(n) : null;
    for (let i = 0; i < n; i++) {
      const item = items[i];
      const where = `items[${i}].`;
      if (item === null || typeof item !== 'object') throw invalid(`items[${i}] must be an object with id and vector, got ${describe(item)}`);
      const it = ownFields(item, OPTION_KEYS.item);
      ids[i] = checkId(it.id, where);
      writeVector(it.vector, dim, vectors, i * dim, `items[${i}].vector`);
      const m = encodeMetadata(it.metadata, where);
      if (m !== null) {
        if (!metas) metas = new Array(n).fill(null);
        metas[i] = m;
      }
      if (records) records[i] = this.#attrs(m);
    }
    return { ids, vectors, metas, n, attrs: records && packRecords(records) };
  }

  addBatch(items) {
    const native = this.#openForWrite('addBatch()');
    const p = this.#pack(items);
    native.addBatch(p.ids, p.vectors, p.metas, this.#options.threads, p.attrs);
  }

  async addBatchAsync(items, options) {
    const native = this.#open();
    if (this.#refreshing) throw refreshing('addBatchAsync()');
    const { onProgress, signal } = parseAsyncOptions(options);
    if (signal && signal.aborted) throw abortError(signal);
    const p = this.#pack(items);
    const job = await runJob(
      (report, abortFlag) => native.addBatchAsync(p.ids, p.vectors, p.metas, this.#options.threads, report, abortFlag, p.attrs),
      onProgress,
      signal,
      false
    );
    job.finish(p.n, 0, 0);
  }

  /**
   * Saves the database as a chunked session in `dir` (see docs/FORMAT.md).
   * @returns {Promise<{generation, chunksWritten, chunksReused, indexSegmentsWritten, bytesWritten, full, timeMs}>}
   */
  async save(target, options) {
    const native = this.#open();
    const t = resolveTarget(target, 'the save target');
    const { onProgress, signal, pageBytes, retry, gcGraceMs, inflight } = parseSaveOptions(options);
    if (signal && signal.aborted) throw abortError(signal);
    const t0 = performance.now();
    if (t.dir) await makeParents(t.dir);
    const run = () =>
      withTarget(t, { retry, gcGraceMs, inflight }, signal, (where) =>
        runJob((report, abortFlag) => native.saveAsync(where, report, abortFlag, pageBytes), onProgress, signal, true)
      );
    // A store that cannot enforce the manifest's compare-and-swap gets a lease (lib/storage/lease.js).
    const leased = () => (t.storage && t.storage.conditionalWrites === false ? withLease(t.storage, run, { signal: signal || undefined }) : run());
    const job = await (this.#jsReads ? this.#busy(leased) : leased());
    const r = job.result;
    job.finish(r.chunksWritten + r.indexSegmentsWritten + 1, PHASES.indexOf('commit'), r.bytesWritten);
    // A lazy database now reads through what it saved to (and what it read before).
    if (this.#loadStats && this.#loadStats.lazy) this.#jsReads = this.#jsReads || t.storage !== null;
    this.#source = { storage: t.storage, dir: t.dir, retry };
    this.#generation = r.generation;
    return { ...r, timeMs: performance.now() - t0 };
  }

  /**
   * Opens a saved session. See index.d.ts (LoadOptions).
   * @returns {Promise<VectorDB>}
   */
  static async load(target, options) {
    const t = resolveTarget(target, 'the load source');
    const o = parseLoadOptions(options);
    const shared = sharedCache(o.cache);
    // With a shared cache, cacheSizeMb (if given) caps this session inside it; 0 = no cap of its own.
    const bytes = shared && !o.cacheSizeGiven ? 0 : cacheBytes(o.cacheSizeMb);
    const t0 = performance.now();
    const pass = typeof o.passphrase === 'string' ? Buffer.from(o.passphrase, 'utf8') : o.passphrase;
    let job;
    try {
      job = await withTarget(t, { retry: o.retry }, o.signal, (where) =>
        runJob(
          (report, abortFlag) =>
            native.loadAsync(where, o.key, pass, o.threads, o.lazy ? 1 : 0, bytes, report, abortFlag, o.minGeneration, shared),
          o.onProgress,
          o.signal,
          true
        )
      );
    } finally {
      if (typeof o.passphrase === 'string') pass.fill(0);
    }
    const [engine, stats] = job.result;
    const objects = stats.indexSegments + (stats.lazy ? 0 : stats.chunkCount);
    job.finish(objects, PHASES.indexOf(stats.lazy ? 'index' : 'chunks'), stats.bytesRead);
    const nativeDb = new native.NativeDB(engine);
    const [dimension, metric, index, m, efConstruction, efSearch, chunkSize, encrypted] = nativeDb.config();
    const db = new VectorDB(ADOPT, {
      native: nativeDb,
      options: {
        dimension,
        metric: Object.keys(METRICS)[metric],
        index: Object.keys(INDEXES)[index],
        hnsw: { m, efConstruction, efSearch },
        chunkSize,
        cacheSizeMb: o.cacheSizeMb,
        encryptAtRest: encrypted === 1,
        threads: o.threads,
      },
    });
    db.#adopt(t, o, stats);
    db.#loadStats = loadStatsOf(stats, o.cacheSizeMb, t0);
    return db;
  }

  /**
   * Reads a session's manifest (checksum verified; no key needed, and
   * therefore not authenticated: load() authenticates).
   */
  static async inspect(target, options) {
    const t = resolveTarget(target, 'the inspect source');
    const { signal } = parseSignalOptions(options, 'VectorDB.inspect');
    if (signal && signal.aborted) throw abortError(signal);
    const body = await withTarget(t, {}, signal, (where) => untilAborted(native.inspectAsync(where), signal));
    const m = JSON.parse(body);
    const objects = [...m.chunks, ...m.index.base, ...m.index.deltas];
    return {
      format: m.format,
      version: m.version,
      sessionId: m.sessionId,
      generation: m.generation,
      parent: m.parent,
      createdAt: m.createdAt,
      dimension: m.dimension,
      metric: m.metric,
      index: m.indexKind,
      hnsw: m.hnsw,
      chunkSize: m.chunkSize,
      totalVectors: m.totalVectors,
      chunkCount: m.chunks.length,
      chunks: m.chunks.map((c) => ({ id: c.seq, vectors: c.count, bytes: c.bytes })),
      indexSegmentCount: m.index.base.length + m.index.deltas.length,
      bytes: objects.reduce((sum, o) => sum + o.bytes, 0),
      encrypted: m.encryption !== null,
      kdf: m.encryption ? m.encryption.kdf : null,
    };
  }

  get(id) {
    const n = this.#openForRead('get()', 'getAsync()');
    checkId(id, '');
    const rec = n.get(id);
    if (rec === null) return null;
    return { id, vector: rec[0], metadata: decodeMetadata(rec[1], id) };
  }

  /** get() on a worker thread: a lazy session may read a page for it. */
  async getAsync(id, options) {
    const n = this.#open();
    checkId(id, '');
    const { signal } = parseSignalOptions(options, 'getAsync');
    if (signal && signal.aborted) throw abortError(signal);
    const rec = await untilAborted(this.#busy(() => n.getAsync(id)), signal);
    if (rec === null) return null;
    return { id, vector: rec[0], metadata: decodeMetadata(rec[1], id) };
  }

  has(id) {
    const n = this.#openForLock('has()');
    checkId(id, '');
    return n.has(id);
  }

  delete(id) {
    const n = this.#openForWrite('delete()');
    checkId(id, '');
    return n.delete(id);
  }

  /** How many live vectors match `filter` (all of them without one). Reads no vector. */
  count(filter) {
    const n = this.#openForLock('count()');
    return n.count(this.#filter(filter, 'filter'));
  }

  /**
   * Deletes many vectors at once: `deleteMany(['a', 'b'])` by id, or
   * `deleteMany({ filter })` every vector the filter matches (`{ filter: {} }`:
   * all of them). Returns how many were deleted.
   */
  deleteMany(what) {
    const n = this.#openForWrite('deleteMany()');
    if (Array.isArray(what)) {
      const ids = new Array(what.length);
      for (let i = 0; i < what.length; i++) ids[i] = checkId(what[i], `ids[${i}].`);
      return n.deleteMany(ids);
    }
    if (what === null || typeof what !== 'object' || !Object.hasOwn(what, 'filter')) {
      throw invalid(`deleteMany takes an array of ids or { filter }, got ${describe(what)}`);
    }
    const o = ownOptions(what, ['filter'], 'deleteMany');
    return n.deleteWhere(this.#filter(o.filter, 'filter'));
  }

  /** The arguments of an engine metadata update: id, JSON, attribute record. */
  #metaArgs(id, metadata) {
    checkId(id, '');
    const json = encodeMetadata(metadata, '');
    return [id, json, this.#attrs(json)];
  }

  /**
   * Replaces an id's metadata (null or undefined: none), keeping its vector.
   * Returns false, changing nothing, when the id is absent. The next save
   * rewrites only the chunk that holds the row and the index records that
   * name it.
   */
  updateMetadata(id, metadata) {
    // A lazy row's vector is read once (it is rewritten with the row): like get().
    const n = this.#openForWrite('updateMetadata()');
    if (this.#jsReads) throw asyncRequired('updateMetadata()', 'updateMetadataAsync()');
    return n.updateMetadata(...this.#metaArgs(id, metadata));
  }

  /** updateMetadata() on a worker thread: a lazy session may read the row's page for it.
   * `signal` is checked before the update starts: once started, it completes
   * and resolves (a rejection must not hide a write that happened). */
  async updateMetadataAsync(id, metadata, options) {
    const n = this.#open();
    if (this.#refreshing) throw refreshing('updateMetadataAsync()');
    const args = this.#metaArgs(id, metadata);
    const { signal } = parseSignalOptions(options, 'updateMetadataAsync');
    if (signal && signal.aborted) throw abortError(signal);
    return this.#busy(() => n.updateMetadataAsync(...args));
  }

  /**
   * Walks the live vectors (those `filter` matches) in batches of
   * `batchSize` (default 1000): `for await (const batch of db.entries())`.
   * Each batch is an array of { id, metadata, vector? }. Memory stays bounded
   * by one batch; a lazy session reads the pages of each batch's rows only.
   * An id live and untouched for the whole walk is seen exactly once; one
   * re-added meanwhile at least once and at most twice, the newer last; one
   * added or deleted meanwhile may or may not be.
   */
  async *entries(options) {
    this.#open();
    if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
      throw invalid(`entries options must be an object, got ${describe(options)}`);
    }
    const o = options === undefined ? Object.create(null) : ownOptions(options, ENTRIES_KEYS, 'entries');
    const batchSize = o.batchSize === undefined ? 1000 : intIn(o.batchSize, 'batchSize', 1, 100000);
    if (o.includeVector !== undefined && typeof o.includeVector !== 'boolean') {
      throw invalid(`includeVector must be a boolean, got ${describe(o.includeVector)}`);
    }
    const { signal } = parseSignalOptions(o.signal === undefined ? undefined : { signal: o.signal }, 'entries');
    const prog = this.#filter(o.filter, 'filter');
    /* While the walk is open the engine reuses no slot, so an id re-added
     * meanwhile lands past the cursor (vv_db_walk). A walk abandoned without
     * return() ends when the iterator is collected. */
    const native0 = this.#open();
    const walk = { native: native0, open: true };
    native0.walk(1);
    WALKS.register(walk, native0, walk);
    let cursor = 0;
    try {
      while (cursor !== -1) {
        if (signal && signal.aborted) throw abortError(signal);
        const n = this.#open();
        const [raw, next] = await this.#busy(() => n.scanAsync(prog, cursor, batchSize, o.includeVector ? 1 : 0));
        cursor = next;
        const hits = toResults(raw);
        if (hits.length === 0) continue;
        yield hits.map((h) => (h.vector ? { id: h.id, metadata: h.metadata, vector: h.vector } : { id: h.id, metadata: h.metadata }));
      }
    } finally {
      WALKS.unregister(walk);
      endWalk(native0);
    }
  }

  #searchArgs(query, k, opts) {
    const o = parseSearchOptions(opts);
    const kk = parseK(k);
    const q = toVector(query, this.#options.dimension, 'query');
    return [q, 1, kk, o.efSearch, o.includeVector, 0, o.rerank, null, ...this.#filterArgs(o)];
  }

  /** The engine's filter arguments of parsed search options: program, plan, bounds. */
  #filterArgs(o) {
    return [this.#filter(o.filter, 'filter'), o.plan, o.maxDistance, o.minScore];
  }

  search(query, k, opts) {
    const n = this.#openForRead('search()', 'searchAsync()');
    return toResults(n.search(...this.#searchArgs(query, k, opts)));
  }

  /** Runs a native search (`args` from #searchArgs or #batchArgs) that `signal` can cancel. */
  async #cancellable(call, args, signal) {
    if (signal && signal.aborted) throw abortError(signal); // before any chunk is read
    /* The flag stops a lazy search before its next chunk read; untilAborted
     * rejects at once, whatever the native call is doing. */
    const abortFlag = signal ? new Int32Array(new ArrayBuffer(4)) : null;
    const onAbort = () => Atomics.store(abortFlag, 0, 1);
    if (signal) signal.addEventListener('abort', onAbort, ONCE);
    try {
      args[7] = abortFlag;
      return await untilAborted(this.#busy(() => call(...args)), signal);
    } finally {
      if (signal) signal.removeEventListener('abort', onAbort);
    }
  }

  async searchAsync(query, k, opts) {
    const n = this.#open();
    const { search, signal } = parseSearchAsyncOptions(opts);
    const args = this.#searchArgs(query, k, search);
    return toResults(await this.#cancellable(n.searchAsync.bind(n), args, signal));
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
    return [flat, nq, kk, o.efSearch, o.includeVector, this.#options.threads, o.rerank, null, ...this.#filterArgs(o)];
  }

  searchBatch(queries, k, opts) {
    const n = this.#openForRead('searchBatch()', 'searchBatchAsync()');
    const args = this.#batchArgs(queries, k, opts);
    if (args[1] === 0) return [];
    return n.searchBatch(...args).map(toResults);
  }

  async searchBatchAsync(queries, k, opts) {
    const n = this.#open();
    const { search, signal } = parseSearchAsyncOptions(opts);
    const args = this.#batchArgs(queries, k, search);
    if (signal && signal.aborted) throw abortError(signal);
    if (args[1] === 0) return [];
    return (await this.#cancellable(n.searchBatchAsync.bind(n), args, signal)).map(toResults);
  }

  /** What load() and refresh() remember of how a session was opened (no secrets: the engine keeps those). */
  #adopt(t, o, stats) {
    this.#source = { storage: t.storage, dir: t.dir, retry: o.retry };
    // Not the Cache object: the engine's client of it moves to the refreshed
    // database (vv_db_refresh), and JS may collect the Cache meanwhile.
    this.#loadOpts = { threads: o.threads, lazy: o.lazy, cacheSizeMb: o.cacheSizeMb };
    this.#jsReads = stats.lazy && t.storage !== null;
    this.#generation = stats.generation;
  }

  /**
   * Adopts the newest generation of the session this database was loaded
   * from or last saved to. A lazy session reads the manifest and the index
   * of the new generation, and keeps the cached pages of every chunk the two
   * generations share. Resolves with { generation, changed }.
   */
  async refresh(options) {
    this.#open();
    const { onProgress, signal } = parseAsyncOptions(options);
    const src = this.#source;
    if (!src) throw invalid('refresh() needs a database that was loaded from, or saved to, a session');
    const target = src.storage || src.dir;
    const now = await VectorDB.inspect(target, signal ? { signal } : undefined);
    if (now.generation === this.#generation) return { generation: now.generation, changed: false };
    const lo = this.#loadOpts || { threads: this.#options.threads, lazy: false, cacheSizeMb: this.#options.cacheSizeMb };
    // A lazy refresh takes over this database's cache (shared or not) once loaded.
    const bytes = cacheBytes(lo.cacheSizeMb);
    const t = resolveTarget(target, 'the refresh source');
    const t0 = performance.now();
    if (this.#refreshing) throw refreshing('refresh()');
    const n = this.#open(); // (after the await: the engine this refresh moves on)
    this.#refreshing = true;
    let job;
    try {
      job = await this.#busy(() =>
        withTarget(t, { retry: src.retry }, signal, (where) =>
          runJob(
            (report, abortFlag) => n.refreshAsync(where, null, null, lo.threads, lo.lazy ? 1 : 0, bytes, report, abortFlag, undefined, undefined),
            onProgress,
            signal,
            true
          )
        )
      );
    } finally {
      this.#refreshing = false;
    }
    const [engine, stats] = job.result;
    job.finish(stats.indexSegments + (stats.lazy ? 0 : stats.chunkCount), PHASES.indexOf(stats.lazy ? 'index' : 'chunks'), stats.bytesRead);
    if (engine !== null) {
      if (this.#closed) {
        new native.NativeDB(engine).close(); // closed meanwhile: drop the new engine at once
        throw closedError();
      }
      // Calls in flight finish on the old engine, which is freed after them.
      const old = this.#native;
      this.#native = new native.NativeDB(engine);
      old.close();
    } // else the engine moved forward in place (new delta segments only)
    this.#jsReads = stats.lazy && t.storage !== null;
    this.#generation = stats.generation;
    this.#loadStats = loadStatsOf(stats, lo.cacheSizeMb, t0);
    return { generation: stats.generation, changed: true };
  }

  /**
   * Copies every retained generation of a session between storages
   * (directory paths or Storages), objects as they are: no key needed.
   */
  static async copy(source, target, options) {
    return transfer.copySession(checkTransferEnd(source, 'source'), checkTransferEnd(target, 'target'), options);
  }

  /** The session this database was last saved to or loaded from, as one file or stream (docs/EXPORT.md). */
  async export(out, options) {
    this.#open();
    const src = this.#source;
    if (!src) throw invalid('export() needs a database that was saved (or loaded): save it first');
    return transfer.exportSession(src.storage || src.dir, out, options);
  }

  /** Writes an export (a file path or a Readable) into `target` (a directory path or a Storage). */
  static async import(input, target, options) {
    return transfer.importSession(input, checkTransferEnd(target, 'target'), options);
  }

  /**
   * The chunk cache of a lazily loaded session (see docs/PERFORMANCE.md).
   * For a database held wholly in memory every count is 0 and `lazy` false.
   * @returns {{lazy, hits, misses, evictions, bytes, capacityBytes, entries, bytesRead}}
   */
  cacheStats() {
    return this.#open().cacheStats();
  }

  /** Changes the cache bound (MiB, parseCacheSize's rule); evicts at once if needed. */
  setCacheSize(mb) {
    const n = this.#openForWrite('setCacheSize()');
    const v = parseCacheSize(mb);
    n.setCacheSize(cacheBytes(v));
    this.#options.cacheSizeMb = v;
  }

  /**
   * Reads chunks into the cache ahead of queries: the given chunk ids (the
   * `seq` numbers `VectorDB.inspect(dir).chunks` lists), or with none as many
   * as fit, in session order. Resolves with the number of chunks read from
   * storage. A no-op for a database held in memory.
   */
  async preload(chunkIds, options) {
    const native = this.#open();
    let ids = null;
    if (chunkIds !== undefined && chunkIds !== null) {
      if (!Array.isArray(chunkIds)) throw invalid(`chunkIds must be an array of chunk ids, got ${describe(chunkIds)}`);
      ids = new Float64Array(chunkIds.length);
      chunkIds.forEach((c, i) => {
        if (!Number.isSafeInteger(c) || c < 0) throw invalid(`chunkIds[${i}] must be a non-negative integer, got ${describe(c)}`);
        ids[i] = c;
      });
    }
    const { onProgress, signal } = parseAsyncOptions(options);
    if (signal && signal.aborted) throw abortError(signal);
    const job = await this.#busy(() => runJob((report, abortFlag) => native.preloadAsync(ids, report, abortFlag), onProgress, signal, false));
    return job.result;
  }

  /** Frees native memory now, or as soon as in-flight async work settles.
   * Every later call throws ERR_CLOSED. Calling it again does nothing. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close();
  }

  /** `using db = ...`: close(). */
  [DISPOSE]() {
    this.close();
  }

  /** `await using db = ...`: close(); in-flight calls still settle (close() waits for them). */
  async [ASYNC_DISPOSE]() {
    this.close();
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    const o = this.#options;
    const size = this.#closed ? 'closed' : this.#native.size();
    return `VectorDB { dimension: ${o.dimension}, metric: '${o.metric}', index: '${o.index}', size: ${size} }`;
  }
}

/** new VectorDB.Cache({ maxMb }): one budget for many sessions (lib/cache.js). */
Object.defineProperty(VectorDB, 'Cache', { value: Cache, enumerable: true });

module.exports = { VectorDB };
