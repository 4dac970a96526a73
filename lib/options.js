'use strict';
// Validation of every public option, with exact messages, before anything
// reaches C. Throws VecvaultError with code ERR_INVALID_ARGUMENT.
const os = require('os');
const { VecvaultError } = require('./errors');

const METRICS = { cosine: 0, l2: 1, dot: 2 };
const INDEXES = { hnsw: 0, flat: 1 };
const LIMITS = Object.freeze({
  maxDimension: 65536,
  maxIdBytes: 4096,
  maxMetadataBytes: 16 * 1024 * 1024,
  maxM: 128,
  maxEf: 65536,
  maxThreads: 256,
  maxChunkSize: 10_000_000,
  /* 1 TiB: far beyond any machine's memory, and 2^40 bytes fits uint64 and a double exactly. */
  maxCacheSizeMb: 1048576,
});

function invalid(message) {
  return new VecvaultError(message, 'ERR_INVALID_ARGUMENT');
}

function isPlainObject(v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * The options in `obj`: its own enumerable properties, each read exactly
 * once, in a null-prototype object. Nothing inherited (a polluted
 * Object.prototype.encryptAtRest) can pose as an option, and a getter cannot
 * pass validation with one value and be used with another. Unknown names
 * are refused. Every parser reads options through this and nothing else.
 */
function ownOptions(obj, allowed, what) {
  const out = Object.create(null);
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw invalid(`${what}: unknown option "${key}" (allowed: ${allowed.join(', ')})`);
    out[key] = obj[key];
  }
  return out;
}

/** The named fields of `obj` that are its own (of any object, e.g. a batch
 * item), each read once, in a null-prototype object. */
function ownFields(obj, names) {
  const out = Object.create(null);
  for (const key of names) if (Object.hasOwn(obj, key)) out[key] = obj[key];
  return out;
}

// String.prototype.isWellFormed is newer than some supported Node versions.
const isWellFormed =
  typeof String.prototype.isWellFormed === 'function'
    ? (s) => s.isWellFormed()
    : (s) => !/\p{Surrogate}/u.test(s);

function intIn(value, name, min, max) {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

/** The one rule for a cache size in MiB, for the constructor, load() and
 * setCacheSize(): a number above 0 and at most LIMITS.maxCacheSizeMb. */
function parseCacheSize(v) {
  if (v === undefined) return 150;
  if (typeof v !== 'number' || !(v > 0) || !(v <= LIMITS.maxCacheSizeMb)) {
    throw invalid(`cacheSizeMb must be a positive number of MiB up to ${LIMITS.maxCacheSizeMb} (1 TiB), got ${describe(v)}`);
  }
  return v;
}

/** `key` (32 bytes) or `passphrase` (non-empty string or bytes), not both. */
function parseSecret(o) {
  let key = null;
  if (o.key !== undefined) {
    if (!(o.key instanceof Uint8Array) || o.key.length !== 32) {
      throw invalid('key must be a Uint8Array (or Buffer) of exactly 32 bytes; strings are not accepted because they cannot be wiped');
    }
    key = o.key;
  }
  let passphrase = null;
  if (o.passphrase !== undefined) {
    const p = o.passphrase;
    if (!(p instanceof Uint8Array || typeof p === 'string') || p.length === 0) {
      throw invalid('passphrase must be a non-empty string or Uint8Array');
    }
    // UTF-8 would turn a lone surrogate into U+FFFD, so two different
    // passphrases would open the same session: refused, as for ids.
    if (typeof p === 'string' && !isWellFormed(p)) throw invalid('passphrase contains a lone UTF-16 surrogate');
    passphrase = p;
  }
  if (key && passphrase) throw invalid('pass either key or passphrase, not both');
  return { key, passphrase };
}

function defaultThreads() {
  const n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(n || 1, LIMITS.maxThreads));
}

const DB_KEYS = ['dimension', 'metric', 'index', 'hnsw', 'chunkSize', 'cacheSizeMb', 'encryptAtRest', 'key', 'passphrase', 'threads', 'filterable'];
const HNSW_KEYS = ['m', 'efConstruction', 'efSearch'];

/** Normalises `new VectorDB(options)`; every field present in the result. */
function parseDbOptions(given) {
  if (!isPlainObject(given)) throw invalid(`VectorDB options must be an object, got ${describe(given)}`);
  const options = ownOptions(given, DB_KEYS, 'VectorDB');
  if (options.dimension === undefined) throw invalid('VectorDB: "dimension" is required');
  const dimension = intIn(options.dimension, 'dimension', 1, LIMITS.maxDimension);

  const metric = options.metric === undefined ? 'cosine' : options.metric;
  if (!Object.hasOwn(METRICS, metric)) throw invalid(`metric must be 'cosine', 'l2' or 'dot', got ${describe(metric)}`);

  const index = options.index === undefined ? 'hnsw' : options.index;
  if (index === 'ivf') throw invalid("index 'ivf' is not available yet; use 'hnsw' or 'flat'");
  if (!Object.hasOwn(INDEXES, index)) throw invalid(`index must be 'hnsw' or 'flat', got ${describe(index)}`);

  if (options.hnsw !== undefined && !isPlainObject(options.hnsw)) throw invalid(`hnsw must be an object, got ${describe(options.hnsw)}`);
  const h = options.hnsw === undefined ? Object.create(null) : ownOptions(options.hnsw, HNSW_KEYS, 'hnsw');
  const hnsw = {
    m: h.m === undefined ? 16 : intIn(h.m, 'hnsw.m', 2, LIMITS.maxM),
    efConstruction: h.efConstruction === undefined ? 200 : intIn(h.efConstruction, 'hnsw.efConstruction', 1, LIMITS.maxEf),
    efSearch: h.efSearch === undefined ? 64 : intIn(h.efSearch, 'hnsw.efSearch', 1, LIMITS.maxEf),
  };

  const chunkSize = options.chunkSize === undefined ? 10000 : intIn(options.chunkSize, 'chunkSize', 1, LIMITS.maxChunkSize);
  const cacheSizeMb = parseCacheSize(options.cacheSizeMb);
  const encryptAtRest = options.encryptAtRest === undefined ? true : options.encryptAtRest;
  if (typeof encryptAtRest !== 'boolean') throw invalid(`encryptAtRest must be a boolean, got ${describe(encryptAtRest)}`);

  const { key, passphrase } = parseSecret(options);
  if (!encryptAtRest && (key || passphrase)) {
    throw invalid(`${key ? 'key' : 'passphrase'} given with encryptAtRest: false; pass a secret to encrypt, or encryptAtRest: false without one`);
  }
  const threads = options.threads === undefined ? defaultThreads() : intIn(options.threads, 'threads', 1, LIMITS.maxThreads);
  // Checked by lib/filter.js (parseFilterable), which needs this module.
  return { dimension, metric, index, hnsw, chunkSize, cacheSizeMb, encryptAtRest, key, passphrase, threads, filterable: options.filterable };
}

const SEARCH_KEYS = ['efSearch', 'includeVector', 'rerank', 'maxChunkReads', 'filter', 'maxDistance', 'minScore', 'plan'];
/** How a filtered search finds its results (docs/FILTER.md); the engine's VV_PLAN_* numbers. */
const PLANS = Object.freeze({ auto: 0, scan: 1, graph: 2, acorn: 3 });

function finiteOr(v, name) {
  if (v === undefined) return NaN; // none (the engine's convention)
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`${name} must be a finite number, got ${describe(v)}`);
  return v;
}

/** The search options; `filter` is returned as given, for lib/filter.js to compile against the database's fields. */
function parseSearchOptions(given) {
  if (given === undefined) return { efSearch: 0, includeVector: 0, rerank: 0, filter: undefined, maxDistance: NaN, minScore: NaN, plan: 0 };
  if (!isPlainObject(given)) throw invalid(`search options must be an object, got ${describe(given)}`);
  const opts = ownOptions(given, SEARCH_KEYS, 'search');
  const efSearch = opts.efSearch === undefined ? 0 : intIn(opts.efSearch, 'efSearch', 1, LIMITS.maxEf);
  if (opts.includeVector !== undefined && typeof opts.includeVector !== 'boolean') {
    throw invalid(`includeVector must be a boolean, got ${describe(opts.includeVector)}`);
  }
  const rerank = opts.rerank === undefined ? 0 : intIn(opts.rerank, 'rerank', 1, LIMITS.maxEf);
  // A budget that dropped candidates made results depend on the cache; a
  // lazy search now reads every page its candidates need (at most `rerank`).
  if (opts.maxChunkReads !== undefined) {
    throw invalid('maxChunkReads was removed: a lazy search reads only the pages of its re-ranked candidates ' +
      '(at most `rerank` pages); lower `rerank` to read less');
  }
  const maxDistance = finiteOr(opts.maxDistance, 'maxDistance');
  const minScore = finiteOr(opts.minScore, 'minScore');
  const plan = opts.plan === undefined ? 'auto' : opts.plan;
  if (!Object.hasOwn(PLANS, plan)) throw invalid(`plan must be one of ${Object.keys(PLANS).map((p) => `'${p}'`).join(', ')}, got ${describe(plan)}`);
  return { efSearch, includeVector: opts.includeVector ? 1 : 0, rerank, filter: opts.filter, maxDistance, minScore, plan: PLANS[plan] };
}

function parseK(k) {
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) throw invalid(`k must be a positive integer, got ${describe(k)}`);
  // The engine counts results in 32 bits; asking for more is asking for all.
  return Math.min(k, 0x7fffffff);
}

const ASYNC_KEYS = ['onProgress', 'signal'];

function parseAsyncOptions(given) {
  if (given === undefined) return { onProgress: null, signal: null };
  if (!isPlainObject(given)) throw invalid(`options must be an object, got ${describe(given)}`);
  return checkAsync(ownOptions(given, ASYNC_KEYS, 'options'));
}

const SAVE_KEYS = [...ASYNC_KEYS, 'pageKb', 'retry', 'gcGraceMs', 'uploadsInFlight'];

/** save(dir, { onProgress, signal, pageKb }): pageKb, the row bytes of a chunk page, in KiB (1..1024). */
function parseSaveOptions(given) {
  if (given === undefined) return { onProgress: null, signal: null, pageBytes: 0 };
  if (!isPlainObject(given)) throw invalid(`options must be an object, got ${describe(given)}`);
  const opts = ownOptions(given, SAVE_KEYS, 'save');
  const pageBytes = opts.pageKb === undefined ? 0 : intIn(opts.pageKb, 'pageKb', 1, 1024) * 1024;
  const gcGraceMs = opts.gcGraceMs === undefined ? undefined : intIn(opts.gcGraceMs, 'gcGraceMs', 0, 2 ** 40);
  const inflight = opts.uploadsInFlight === undefined ? undefined : intIn(opts.uploadsInFlight, 'uploadsInFlight', 1, 64);
  return { ...checkAsync(opts), pageBytes, retry: parseRetry(opts.retry), gcGraceMs, inflight };
}

const RETRY_KEYS = ['retries', 'baseMs', 'capMs', 'timeoutMs'];

/** How requests to a Storage are retried (lib/storage/retry.js). */
function parseRetry(given) {
  if (given === undefined) return {};
  if (!isPlainObject(given)) throw invalid(`retry must be an object, got ${describe(given)}`);
  const o = ownOptions(given, RETRY_KEYS, 'retry');
  const out = {};
  if (o.retries !== undefined) out.retries = intIn(o.retries, 'retry.retries', 0, 100);
  if (o.baseMs !== undefined) out.baseMs = intIn(o.baseMs, 'retry.baseMs', 0, 600000);
  if (o.capMs !== undefined) out.capMs = intIn(o.capMs, 'retry.capMs', 0, 600000);
  if (o.timeoutMs !== undefined) out.timeoutMs = intIn(o.timeoutMs, 'retry.timeoutMs', 1, 3600000);
  return out;
}

/** An AbortSignal by shape (index.d.ts AbortSignalLike), not by class: one
 * from another realm or a polyfill works as well as a native one. */
function isAbortSignalLike(v) {
  return v !== null && typeof v === 'object' && typeof v.aborted === 'boolean' &&
    typeof v.addEventListener === 'function' && typeof v.removeEventListener === 'function';
}

/** onProgress and signal of options already read by ownOptions. */
function checkAsync({ onProgress, signal }) {
  if (onProgress !== undefined && typeof onProgress !== 'function') throw invalid('onProgress must be a function');
  if (signal !== undefined && !isAbortSignalLike(signal)) {
    throw invalid(`signal must be an AbortSignal (an object with a boolean aborted, addEventListener and removeEventListener), got ${describe(signal)}`);
  }
  return { onProgress: onProgress || null, signal: signal || null };
}

const SIGNAL_KEYS = ['signal'];

/** `{ signal }` alone, for a method that reports no progress (inspect). */
function parseSignalOptions(given, what) {
  if (given === undefined) return { signal: null };
  if (!isPlainObject(given)) throw invalid(`${what} options must be an object, got ${describe(given)}`);
  return { signal: checkAsync(ownOptions(given, SIGNAL_KEYS, what)).signal };
}

/** searchAsync: the search options (for parseSearchOptions) and a `signal`. */
function parseSearchAsyncOptions(given) {
  if (given === undefined) return { search: undefined, signal: null };
  if (!isPlainObject(given)) throw invalid(`search options must be an object, got ${describe(given)}`);
  const search = ownOptions(given, [...SEARCH_KEYS, 'signal'], 'search');
  const { signal } = checkAsync(search);
  delete search.signal;
  return { search, signal };
}

const LOAD_KEYS = ['key', 'passphrase', 'cacheSizeMb', 'cache', 'lazy', 'onProgress', 'signal', 'threads', 'minGeneration', 'retry'];

function parseLoadOptions(given) {
  if (given !== undefined && !isPlainObject(given)) throw invalid(`load options must be an object, got ${describe(given)}`);
  const opts = given === undefined ? Object.create(null) : ownOptions(given, LOAD_KEYS, 'VectorDB.load');
  const { onProgress, signal } = checkAsync(opts);
  const { key, passphrase } = parseSecret(opts);
  const cacheSizeMb = parseCacheSize(opts.cacheSizeMb);
  if (opts.lazy !== undefined && typeof opts.lazy !== 'boolean') throw invalid(`lazy must be a boolean, got ${describe(opts.lazy)}`);
  const threads = opts.threads === undefined ? defaultThreads() : intIn(opts.threads, 'threads', 1, LIMITS.maxThreads);
  const minGeneration = parseMinGeneration(opts.minGeneration);
  // `cache` is checked by lib/cache.js (sharedCache); with one, a cacheSizeMb
  // left out means no cap of the session's own inside the shared budget.
  const cacheSizeGiven = opts.cacheSizeMb !== undefined;
  return { key, passphrase, cacheSizeMb, cacheSizeGiven, cache: opts.cache, lazy: opts.lazy !== false, onProgress, signal, threads, minGeneration, retry: parseRetry(opts.retry) };
}

const CACHE_KEYS = ['maxMb'];

/** A shared cache's budget in MiB: the cacheSizeMb range, and required. */
function parseMaxMb(v) {
  if (typeof v !== 'number' || !(v > 0) || !(v <= LIMITS.maxCacheSizeMb)) {
    throw invalid(`maxMb must be a positive number of MiB up to ${LIMITS.maxCacheSizeMb} (1 TiB), got ${describe(v)}`);
  }
  return v;
}

/** new VectorDB.Cache({ maxMb }) */
function parseCacheOptions(given) {
  if (!isPlainObject(given)) throw invalid(`VectorDB.Cache options must be an object, got ${describe(given)}`);
  const opts = ownOptions(given, CACHE_KEYS, 'VectorDB.Cache');
  if (opts.maxMb === undefined) throw invalid('VectorDB.Cache: "maxMb" is required');
  return { maxMb: parseMaxMb(opts.maxMb) };
}

// A generation the caller saw before (loadStats.generation, inspect().generation):
// a non-negative safe integer, or a bigint up to 2^64-1 (generations are 64-bit
// in the format). Returned as a bigint for the engine; undefined means any.
function parseMinGeneration(v) {
  if (v === undefined) return undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'bigint' && v >= 0n && v <= 0xffffffffffffffffn) return v;
  throw invalid(`minGeneration must be a non-negative safe integer or a bigint below 2^64, got ${describe(v)}`);
}

/** Cache bound in bytes (at least one byte) for the engine. */
function cacheBytes(mb) {
  return Math.max(1, Math.round(mb * 1048576));
}

const ITEM_KEYS = ['id', 'vector', 'metadata'];

/** Every option name of every method, by group; test/18 pollutes each one. */
const OPTION_KEYS = Object.freeze({
  VectorDB: DB_KEYS,
  hnsw: HNSW_KEYS,
  search: SEARCH_KEYS,
  async: ASYNC_KEYS,
  save: SAVE_KEYS,
  load: LOAD_KEYS,
  Cache: CACHE_KEYS,
  item: ITEM_KEYS,
});

module.exports = {
  parseRetry,
  OPTION_KEYS,
  ownOptions,
  intIn,
  ownFields,
  isWellFormed,
  isPlainObject,
  isAbortSignalLike,
  parseCacheSize, cacheBytes, defaultThreads, parseLoadOptions, parseCacheOptions, parseMaxMb, METRICS, INDEXES, LIMITS, parseDbOptions, parseSearchOptions, parseAsyncOptions, parseSaveOptions, parseSignalOptions, parseSearchAsyncOptions, parseK, invalid, describe };
