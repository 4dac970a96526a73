/*
 * index.d.ts: the public TypeScript API of vecvault (hand-written).
 *
 * Owns: the types of everything `require('vecvault')` and
 * `import ... from 'vecvault'` export. The runtime lives in lib/ (CommonJS
 * lib/index.js, ESM lib/index.mjs); both export the same classes.
 */

/* The well-known symbols of `using` (TypeScript's lib "esnext.disposable",
 * also declared by @types/node), for projects whose lib predates them.
 * `using` itself still needs a lib with `Disposable`. */
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
    readonly asyncDispose: unique symbol;
  }
}

/**
 * How distance is measured. Results are always sorted by ascending
 * `distance`; `score` is the matching similarity (larger is nearer).
 *
 * - `'cosine'`: `distance = 1 - cos(a, b)`, `score = cos(a, b)`. Vectors are
 *   normalised to unit length on insert, so a zero vector is rejected.
 * - `'l2'`: `distance` is the Euclidean distance (square root of the sum of
 *   squares, not squared), `score = -distance`.
 * - `'dot'`: `distance = -dot(a, b)`, `score = dot(a, b)`.
 */
export type Metric = 'cosine' | 'l2' | 'dot';

/**
 * The index structure.
 *
 * - `'hnsw'`: approximate nearest neighbours on a graph (the default).
 * - `'flat'`: exact search by scanning every vector.
 *
 * (`'ivf'` is planned and currently rejected with `ERR_INVALID_ARGUMENT`.)
 */
export type IndexKind = 'hnsw' | 'flat';

/** A vector: `dimension` finite numbers. Input is always copied. */
export type VectorLike = Float32Array | Float64Array | readonly number[];

/**
 * Many queries at once: an array of vectors, or one `Float32Array` holding
 * `n * dimension` floats back to back.
 */
export type QueriesLike = readonly VectorLike[] | Float32Array;

/**
 * Anything `JSON.stringify` accepts. Metadata is stored as JSON and every
 * read returns a freshly parsed copy, so values come back as JSON would
 * give them (a `Date` becomes an ISO string, `undefined` properties vanish).
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** HNSW graph parameters. All are integers. */
export interface HnswOptions {
  /** Links per node, 2..128. Larger: better recall, more memory. Default 16. */
  m?: number;
  /** Candidate list size while building, at least 1. Default 200. */
  efConstruction?: number;
  /** Default candidate list size while searching, at least 1. Default 64. */
  efSearch?: number;
}

/**
 * Options for `new VectorDB(options)`. Unknown keys are rejected. Like every
 * options object vecvault takes, only its own enumerable properties count
 * (each read once): a property inherited from a prototype, even a polluted
 * `Object.prototype`, is never an option.
 */
export interface VectorDBOptions {
  /** Length of every vector: an integer in 1..65536. Required. */
  dimension: number;
  /** Distance measure. Default `'cosine'`. */
  metric?: Metric;
  /** Index structure. Default `'hnsw'`. */
  index?: IndexKind;
  /** HNSW parameters; see {@link HnswOptions}. */
  hnsw?: HnswOptions;
  /** Vectors per session chunk, a positive integer. Default 10000. */
  chunkSize?: number;
  /** Upper bound of the chunk cache in MiB: a number above 0 and at most 1048576 (1 TiB), the same rule as `load()` and `setCacheSize()`. Default 150. Used once the database is saved and loaded lazily; see {@link LoadOptions}. */
  cacheSizeMb?: number;
  /**
   * Encrypt saved sessions (XChaCha20-Poly1305). Default `true`: saving
   * then needs `key` or `passphrase`, else it fails with `ERR_KEY_REQUIRED`.
   * `false` together with `key` or `passphrase` is refused (`ERR_INVALID_ARGUMENT`)
   * rather than ignoring the secret.
   */
  encryptAtRest?: boolean;
  /** Raw 32-byte encryption key (never written to disk; copied into guarded memory). */
  key?: Uint8Array;
  /** Passphrase the session key is wrapped with (Argon2id); a string is taken as UTF-8 and must not hold a lone UTF-16 surrogate (`ERR_INVALID_ARGUMENT`). */
  passphrase?: Uint8Array | string;
  /** Worker threads for batch work, a positive integer. Default: all cores. */
  threads?: number;
  /**
   * The metadata fields filters may use, as dotted paths (`['lang', 'year',
   * 'author.name']`): up to 64 distinct paths of 1..256 UTF-8 bytes, no
   * segment empty or starting with `$`. Their values are kept in memory,
   * columnar (about 8 bytes per vector per field, plus each distinct value
   * once: docs/FILTER.md), and saved encrypted with the session; a filter on
   * any other field is `ERR_INVALID_FILTER`. Fixed for the database's life;
   * a loaded session brings its own. Default none.
   */
  filterable?: readonly string[];
}

/** A scalar a filter compares with. */
export type FilterScalar = string | number | boolean | null;

/** The operators on one field (several in one object: all must hold). See docs/FILTER.md. */
export interface FieldOperators {
  $eq?: FilterScalar;
  $ne?: FilterScalar;
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  $in?: readonly FilterScalar[];
  $nin?: readonly FilterScalar[];
  $exists?: boolean;
  $not?: FieldOperators;
}

/**
 * A MongoDB-style filter on the `filterable` fields: `{ lang: 'en', year:
 * { $gte: 2020 }, tags: { $in: ['a', 'b'] } }`, `$and`/`$or` of filters,
 * `$not` of a filter or of a field's operators. An array field matches when
 * any element does; `null` also matches a missing field. `{}` matches all.
 */
export interface Filter {
  $and?: readonly Filter[];
  $or?: readonly Filter[];
  $not?: Filter;
  [path: string]: FilterScalar | FieldOperators | readonly Filter[] | Filter | undefined;
}

/** One item to insert. */
export interface Item<M = unknown> {
  /** Non-empty string of at most 4096 UTF-8 bytes. An existing id is replaced (upsert). */
  id: string;
  /** `dimension` finite numbers; not all zero under `'cosine'`. */
  vector: VectorLike;
  /**
   * JSON-serialisable value, at most 16 MiB as JSON. Every JSON value comes
   * back exactly (`''`, `0`, `false`, `[]`, `{}` included). Missing,
   * `undefined` and `null` all mean "no metadata" and read back as `null`.
   * Only an own property of the item counts.
   */
  metadata?: M;
}

/** A stored item, as `get()` returns it. */
export interface StoredItem<M = unknown> {
  id: string;
  /** A copy of the stored vector (unit length under `'cosine'`). */
  vector: Float32Array;
  /** A fresh parse of the stored JSON; `null` if none was given. */
  metadata: M | null;
}

/** Options for `entries`. */
export interface EntriesOptions {
  filter?: Filter;
  /** Vectors per batch, 1..100000. Default 1000. */
  batchSize?: number;
  /** Include each vector. Default `false`. */
  includeVector?: boolean;
  /** Stops the walk before its next batch with `ERR_ABORTED`. */
  signal?: AbortSignalLike;
}

/** Options for `search`, `searchAsync`, `searchBatch` and `searchBatchAsync`. */
export interface SearchOptions {
  /** HNSW candidate list size for this search (an integer, at least 1); overrides `hnsw.efSearch`. */
  efSearch?: number;
  /** Include each hit's stored vector as `vector`. Default `false`. */
  includeVector?: boolean;
  /**
   * Lazily loaded HNSW sessions only: how many of the graph's candidates
   * (ranked on compact PQ codes) are re-ranked with full vectors. All of
   * them are, whatever is cached, so results never depend on the cache;
   * a query reads at most this many pages (those not cached). More gives
   * better recall and reads more. Default `max(4k, 2 × efSearch)`, the graph walk's whole beam; the
   * walk's beam is raised to it if smaller.
   */
  rerank?: number;
  /**
   * Removed: a search re-ranks every candidate, reading the pages it needs.
   * Passing it is `ERR_INVALID_ARGUMENT`.
   */
  maxChunkReads?: never;
  /**
   * Only vectors whose metadata matches: exactly min(k, matching live
   * vectors) results, every one matching. Evaluated by the engine on the
   * `filterable` fields' values in memory (no metadata is read).
   */
  filter?: Filter;
  /** Range search: only hits at most this `distance` away (still at most k). */
  maxDistance?: number;
  /** Range search: only hits with at least this `score` (still at most k). */
  minScore?: number;
  /**
   * How a filtered search finds its results. `'auto'` (default) decides per
   * query from the filter's estimated selectivity; `'scan'` measures every
   * matching vector (exact in memory; lazily on PQ codes, then the best
   * `rerank` by full vectors: exact when no more match), `'graph'` walks HNSW checking the filter in the
   * loop, `'acorn'` walks stepping over failing neighbours (ACORN-1). All
   * return exactly min(k, matching); they differ in speed and recall.
   */
  plan?: 'auto' | 'scan' | 'graph' | 'acorn';
}

/** {@link SearchOptions} that ask for vectors. */
export interface SearchOptionsWithVector extends SearchOptions {
  includeVector: true;
}

/** One search hit. */
export interface SearchResult<M = unknown> {
  id: string;
  /** Smaller is nearer; see {@link Metric}. */
  distance: number;
  /** Larger is nearer; see {@link Metric}. */
  score: number;
  /** A fresh parse of the stored JSON; `null` if none was given. */
  metadata: M | null;
  /** The stored vector, only when `includeVector: true` was asked for. */
  vector?: Float32Array;
}

/** A hit from a search made with `includeVector: true`. */
export interface SearchResultWithVector<M = unknown> extends SearchResult<M> {
  vector: Float32Array;
}

/**
 * The part of an `AbortSignal` vecvault uses. Pass `controller.signal` from
 * an `AbortController`; any object of this shape works too (checked by
 * shape, not class: a polyfill's, or another realm's).
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  /** Becomes the `cause` of the `ERR_ABORTED` error, when set. */
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * `{ signal }` of an async call that reports no progress: aborting rejects
 * it with `ERR_ABORTED` (name `'AbortError'`); an already-aborted signal
 * rejects before any work.
 */
export interface SignalOptions {
  signal?: AbortSignalLike;
}

/** Options for `addBatchAsync`. */
export interface AddBatchAsyncOptions {
  /**
   * Called on the JS thread as the batch proceeds. `done` never decreases;
   * on success the last call has `done === total` (`total` is the number of
   * items). If it throws, the promise rejects (with that error, or one
   * wrapping it).
   */
  onProgress?(done: number, total: number): void;
  /**
   * Aborts the insert. The promise then rejects with a `VecvaultError`
   * whose `name` is `'AbortError'` and `code` is `'ERR_ABORTED'`; items
   * inserted before the abort stay.
   */
  signal?: AbortSignalLike;
}

/** The stable `code` of every {@link VecvaultError}. */
export type ErrorCode =
  /** Wrong type, unknown option key, value out of range, bad k, bad items or options. */
  | 'ERR_INVALID_ARGUMENT'
  /** A vector or query whose length is not the database's dimension. */
  | 'ERR_DIMENSION_MISMATCH'
  /** A NaN or infinite component, a non-numeric entry, or a zero vector under cosine. */
  | 'ERR_INVALID_VECTOR'
  /** An id that is not a string, is empty, or is longer than 4096 UTF-8 bytes. */
  | 'ERR_INVALID_ID'
  /** Metadata that is not JSON-serialisable or is longer than 16 MiB as JSON. */
  | 'ERR_INVALID_METADATA'
  /** The database was closed. */
  | 'ERR_CLOSED'
  | 'ERR_NOT_BUILT'
  /** The operation was aborted through its `signal` (`name` is `'AbortError'`). */
  | 'ERR_ABORTED'
  /** Memory could not be allocated. */
  | 'ERR_NO_MEMORY'
  /** The database cannot hold more vectors. */
  | 'ERR_CAPACITY'
  /** A broken internal invariant: a bug in vecvault. */
  | 'ERR_INTERNAL'
  /** Saving with `encryptAtRest` and no key or passphrase; loading an encrypted session without one. */
  | 'ERR_KEY_REQUIRED'
  /** The key or passphrase does not open this session (detected before any chunk is read). */
  | 'ERR_WRONG_KEY'
  /** `manifest.json` is damaged, truncated or not a vecvault manifest. */
  | 'ERR_MANIFEST_CORRUPT'
  /** `manifest.json` of an encrypted session was modified, or a key was given for an unencrypted one. */
  | 'ERR_MANIFEST_AUTH'
  /** An object the manifest lists is missing (the message names it). */
  | 'ERR_CHUNK_MISSING'
  /** An object is damaged, truncated, or from another session or slot (the message names it). */
  | 'ERR_CHUNK_CORRUPT'
  /** A record's stored metadata is not JSON (a hand-edited unencrypted session, or written through the C API); `get()` or `search()` names the id. */
  | 'ERR_METADATA_CORRUPT'
  /** The session was written by a newer format version. */
  | 'ERR_UNSUPPORTED_VERSION'
  /** Another process is saving into the same directory. */
  | 'ERR_LOCKED'
  /** The file system failed. */
  | 'ERR_IO'
  /** No space left on the device; the previous generation is intact. */
  | 'ERR_NOSPC'
  /** No session at that path. */
  | 'ERR_NOT_FOUND'
  /** `save()` into a directory that is neither empty nor a vecvault session; nothing was written. */
  | 'ERR_NOT_A_SESSION'
  /** `load()` with `minGeneration` found an older generation: the directory was rolled back. Nothing was read but the manifest. */
  | 'ERR_ROLLBACK'
  /** Another writer committed to the same storage while this save was writing (its compare-and-swap on the manifest lost). */
  | 'ERR_CONFLICT'
  /** The storage refused the caller's credentials or permissions; never retried. */
  | 'ERR_ACCESS'
  /** A synchronous call on a lazy session whose storage is implemented in JavaScript: use the async variant. */
  | 'ERR_ASYNC_REQUIRED'
  | 'ERR_INVALID_FILTER'
  /** An export file or stream given to `VectorDB.import` is damaged, truncated or not an export. */
  | 'ERR_EXPORT_CORRUPT'
  /** A storage's failure worth retrying (vecvault retries it; `ERR_IO` if it persists). */
  | 'ERR_STORAGE_TRANSIENT';

/** One object in a {@link Storage} listing. */
export interface StorageObjectInfo {
  /** Relative to the storage's root, e.g. `objects/<64 hex>`. */
  name: string;
  size: number;
  /** Milliseconds since the epoch, if the store knows it (garbage collection then spares young objects). */
  lastModified?: number;
}

/** `options` of every {@link Storage} call. */
export interface StorageCallOptions {
  signal?: AbortSignalLike;
}

/**
 * Where a session lives: anything with these six methods (docs/STORAGE.md).
 * Names are relative keys: `objects/<64 hex>` (immutable, content-addressed)
 * and `manifests/<20 digits>.json` (immutable history copies); the manifest,
 * the only mutable object, is reached only through `readManifest` and
 * `writeManifest`. Throw an error with `code: 'ERR_CONFLICT'` for a failed
 * precondition, `code: 'ERR_ACCESS'` for refused credentials, and set
 * `retryable: true` (or throw a 5xx/429-like error) for failures worth a retry.
 */
export interface Storage {
  /** For messages, e.g. `'s3://bucket/prefix/'`. */
  readonly description?: string;
  /** Default `true`. `false`: `writeManifest` cannot enforce its precondition, and saves take a lease object first. */
  readonly conditionalWrites?: boolean;
  /** The whole object, or `[offset, offset + length)` (fewer bytes at its end); `null` if it does not exist. */
  read(name: string, range?: { offset: number; length: number } | null, options?: StorageCallOptions): Promise<Uint8Array | null>;
  /** Stores the whole object. */
  write(name: string, data: Uint8Array, options?: StorageCallOptions): Promise<void>;
  /** Deletes it; a missing object is not an error. */
  delete(name: string, options?: StorageCallOptions): Promise<void>;
  /** Every object whose name starts with `prefix` (`''`: all). */
  list(prefix: string, options?: StorageCallOptions): Promise<StorageObjectInfo[]>;
  /** The manifest and its version (an opaque string that changes on every write), or `null`. */
  readManifest(options?: StorageCallOptions): Promise<{ data: Uint8Array; version: string } | null>;
  /** Atomic replace: only if no manifest exists (`expectedVersion === null`) or its version is still `expectedVersion`; else throws `ERR_CONFLICT`. */
  writeManifest(data: Uint8Array, expectedVersion: string | null, options?: StorageCallOptions): Promise<{ version: string }>;
}

/** A directory path, or a {@link Storage}. */
export type SessionTarget = string | Storage;

/** How vecvault retries a Storage's transient failures (capped exponential backoff, full jitter). */
export interface RetryOptions {
  /** Retries after the first attempt. Default 5. */
  retries?: number;
  /** First backoff bound in ms. Default 100. */
  baseMs?: number;
  /** Largest backoff in ms. Default 5000. */
  capMs?: number;
  /** An attempt that has not settled after this many ms counts as a transient failure. Default 30000. */
  timeoutMs?: number;
}

/** Sessions kept in memory: for tests, and for the browser build to come. */
export declare class MemoryStorage {
  constructor();
  /** How many objects are stored, the manifest included. */
  readonly objectCount: number;
  /** Every stored name, sorted. */
  names(): string[];
  /** A copy of every object, by name. */
  snapshot(): Map<string, Uint8Array>;
}
export interface MemoryStorage extends Storage {}

/** A session directory seen as a Storage (copy, export and import use it; save and load take the path directly). */
export declare class DirStorage {
  constructor(dir: string);
}
export interface DirStorage extends Storage {}

/** A fault to inject into one call of a {@link FaultStorage}. */
export interface StorageFault {
  kind: StorageFaultKind;
  /** `delay`: how long to wait before the call goes through. */
  ms?: number;
  /** `truncate`: the leading bytes let through. */
  bytes?: number;
  /** `corrupt`: the byte inverted (default: the middle one). */
  at?: number;
  /** `crash`: whether the call happened before the failure. */
  after?: 'before' | 'after';
  /** `transient`: fail as the AWS SDK does on a 503 SlowDown, rather than with a socket error. */
  s3?: boolean;
  /** `transient`: the socket error's `code` (default `'ECONNRESET'`). */
  code?: string;
}

/** What a {@link StorageFault} does ({@link FaultStorage.KINDS}). */
export type StorageFaultKind = 'transient' | 'throttle' | 'permanent' | 'access' | 'conflict' | 'notfound' | 'delay' | 'hang' | 'truncate' | 'corrupt' | 'crash';

/** A Storage operation ({@link FaultStorage.OPS}). */
export type StorageOp = 'read' | 'write' | 'delete' | 'list' | 'readManifest' | 'writeManifest';

/** One call as a {@link FaultPlan} sees it: `n` counts every call, `nOp` those of its op. */
export interface StorageCall {
  op: StorageOp;
  name?: string;
  range?: { offset: number; length: number } | null;
  n: number;
  nOp: number;
}

/** Decides each call's fault (`undefined`: none). */
export type FaultPlan = (call: StorageCall) => StorageFault | undefined;

/** Wraps a Storage, counts its calls and bytes, and injects faults (for tests of your own storage code). */
export declare class FaultStorage {
  constructor(inner: Storage, options?: { faults?: FaultPlan | null });
  /** The wrapped Storage. */
  readonly inner: Storage;
  /** The plan in force; may be replaced between calls. */
  faults: FaultPlan | null;
  readonly counts: { read: number; readBytes: number; write: number; writeBytes: number; delete: number; list: number; readManifest: number; writeManifest: number };
  /** Every call since the last {@link FaultStorage.resetCounts}, in order. */
  readonly log: Array<{ op: StorageOp; name?: string; range: { offset: number; length: number } | null }>;
  /** How many calls were made so far, of every op: the next call's `n`. */
  readonly calls: number;
  /** Sets every count to 0 and empties the log; call indexes go on. */
  resetCounts(): void;
  static readonly OPS: readonly StorageOp[];
  static readonly KINDS: readonly StorageFaultKind[];
  /** The call with index `n` among calls of `op` (`'*'`: among all calls) fails with `kind`. */
  static failNth(op: StorageOp | '*', n: number, kind: StorageFaultKind, extra?: Omit<StorageFault, 'kind'>): FaultPlan;
  /** The first `count` calls of `op` (`'*'`: any op) fail with `kind`. */
  static failFirst(op: StorageOp | '*', count: number, kind: StorageFaultKind, extra?: Omit<StorageFault, 'kind'>): FaultPlan;
  /** Every call of `op` (`'*'`: any op) fails with `kind`. */
  static failAll(op: StorageOp | '*', kind: StorageFaultKind, extra?: Omit<StorageFault, 'kind'>): FaultPlan;
  /** The calls whose name matches `test` fail with `kind`. */
  static failNamed(test: RegExp | ((name: string | undefined) => boolean), kind: StorageFaultKind, extra?: Omit<StorageFault, 'kind'>): FaultPlan;
  /** Each call of `ops` fails with probability `rate`, a kind drawn from `kinds`, using `random` (seed it for repeatable runs). */
  static randomly(options: { random: () => number; rate?: number; kinds?: ReadonlyArray<StorageFaultKind | StorageFault>; ops?: readonly StorageOp[] }): FaultPlan;
  /** The first plan that returns a fault for a call decides it. */
  static combine(...plans: Array<FaultPlan | null | undefined>): FaultPlan;
}
export interface FaultStorage extends Storage {}

/** Where `db.export` writes: a Node Writable, or anything with these. */
export interface WritableLike {
  write(chunk: Uint8Array, callback?: (err?: Error | null) => void): boolean;
  end(callback?: () => void): unknown;
  once(event: string, listener: (...args: any[]) => void): unknown;
}

/** Progress of a save or load: objects done of total, with the phase and bytes so far. */
export interface SessionProgressInfo {
  phase: 'chunks' | 'index' | 'commit';
  bytes: number;
}

/** Options for {@link VectorDB.save}. */
export interface SaveOptions {
  /** Called on the JS thread, coalesced; `done` never decreases and the last call has `done === total`. */
  onProgress?: (done: number, total: number, info: SessionProgressInfo) => void;
  /** Aborts the save; the previous generation stays intact. Rejects with `AbortError`. */
  signal?: AbortSignalLike;
  /**
   * Row bytes per page of the chunks this save writes, in KiB (1..1024, default 4): a lazy search reads
   * one page per re-ranked candidate that is not cached. Smaller pages read less from local disks;
   * larger ones suit storage that charges per request. Chunks written earlier keep their pages.
   */
  pageKb?: number;
  /** Storage only: how transient failures are retried. */
  retry?: RetryOptions;
  /**
   * Storage only: an unreferenced object younger than this (ms) is not
   * collected, since it may be a concurrent writer's upload. Default 900000
   * (15 minutes); 0 collects at once (a single writer).
   */
  gcGraceMs?: number;
  /** Storage only: object uploads in flight at once (1..64, default 8). */
  uploadsInFlight?: number;
}

/** What a save did. */
export interface SaveStats {
  /** The generation now committed. */
  generation: number;
  chunksWritten: number;
  /** Chunks kept from the previous generation without any I/O. */
  chunksReused: number;
  indexSegmentsWritten: number;
  /** Object and manifest bytes written. */
  bytesWritten: number;
  /** `true` when everything was rewritten (first save, or a directory this database did not come from). */
  full: boolean;
  timeMs: number;
}

/** Options for {@link VectorDB.load}. Unknown keys are rejected. */
export interface LoadOptions {
  /** The session's 32-byte key. */
  key?: Uint8Array;
  /** Or its passphrase (a string must not hold a lone UTF-16 surrogate). */
  passphrase?: Uint8Array | string;
  /** Chunk cache bound in MiB (decoded bytes; never exceeded): above 0 and at most 1048576 (1 TiB). Default 150. With `cache`: this session's cap inside the shared budget (default: none, only the shared bound). */
  cacheSizeMb?: number;
  /** A budget shared with other sessions instead of a cache of the session's own (README, "Many sessions, one cache budget"). */
  cache?: VectorDB.Cache;
  /**
   * Default `true`: read only the manifest and the index (graph, ids, PQ
   * codes); vector chunks are read on demand into the cache. `false` reads
   * everything into memory. Sessions written by format 1 always load eagerly.
   * Synchronous calls on a lazy database (`search`, `searchBatch`, `get`)
   * read and decrypt the pages they need on the JS thread; `searchAsync`,
   * `searchBatchAsync` and `getAsync` do it on the thread pool. On storage
   * implemented in JavaScript only the async calls read (the sync ones throw
   * `ERR_ASYNC_REQUIRED`: docs/STORAGE.md).
   */
  lazy?: boolean;
  /** Threads for loading and for later batch work. Default: all cores. */
  threads?: number;
  /**
   * Rollback detection: the generation this service saw last (`loadStats.generation`
   * or `inspect().generation`, remembered outside the directory). A session older
   * than this rejects with `ERR_ROLLBACK` right after its manifest is authenticated,
   * before any object is read. A non-negative safe integer, or a bigint below 2^64.
   * Default: any generation opens.
   */
  minGeneration?: number | bigint;
  onProgress?: (done: number, total: number, info: SessionProgressInfo) => void;
  signal?: AbortSignalLike;
  /** Storage only: how transient failures are retried (also for the lazy reads that follow). */
  retry?: RetryOptions;
}

/** Progress and cancellation of copy, export and import. */
export interface TransferOptions {
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignalLike;
}

/** `db.cacheStats()`. */
export interface CacheStats {
  /** `true` when vectors are read from chunks on demand. */
  lazy: boolean;
  /** Page requests served from memory. */
  hits: number;
  /** Reads from storage: one per page (or chunk page table) not cached. */
  misses: number;
  evictions: number;
  /** Decoded bytes cached now; never above `capacityBytes`. */
  bytes: number;
  capacityBytes: number;
  /** Pages and page tables cached now. */
  entries: number;
  /** Bytes of chunk objects read from storage so far. */
  bytesRead: number;
}

/** How a session was opened (`db.loadStats`). */
export interface LoadStats {
  readonly totalVectors: number;
  readonly chunkCount: number;
  readonly chunksLoaded: number;
  readonly cacheSizeMb: number;
  readonly lazy: boolean;
  /** The generation opened: remember it and pass it as `minGeneration` next time to detect a rollback. */
  readonly generation: number;
  readonly bytesRead: number;
  readonly loadTimeMs: number;
}

/** A session's manifest summary (`VectorDB.inspect`): checksum-verified, not authenticated. */
export interface SessionInfo {
  format: 'vecvault-session';
  version: number;
  sessionId: string;
  /** The current generation (unauthenticated here: `load()` with `minGeneration` checks it authenticated). */
  generation: number;
  parent: string | null;
  createdAt: string;
  dimension: number;
  metric: Metric;
  index: IndexKind;
  hnsw: { m: number; efConstruction: number; efSearch: number };
  chunkSize: number;
  totalVectors: number;
  chunkCount: number;
  indexSegmentCount: number;
  /** Bytes of all objects of this generation. */
  bytes: number;
  /** Each vector chunk: its id (for {@link VectorDB.preload}), vector count and bytes on disk. */
  chunks: { id: number; vectors: number; bytes: number }[];
  encrypted: boolean;
  kdf: 'raw' | 'argon2id13' | null;
}

/**
 * Every error vecvault throws or rejects with. Branch on `code`, which is
 * stable, rather than on `message`, which is not.
 *
 * @example
 * try { db.add(id, v); } catch (e) {
 *   if (e instanceof VecvaultError && e.code === 'ERR_DIMENSION_MISMATCH') { ... }
 * }
 */
export declare class VecvaultError extends Error {
  /** Made by vecvault itself; exported for `instanceof` checks. */
  constructor(message: string, code: ErrorCode, options?: { cause?: unknown });
  /** The stable error code. */
  readonly code: ErrorCode;
  /** `'AbortError'` for `ERR_ABORTED`. */
  name: string;
}

/**
 * An in-memory vector database backed by the native engine.
 *
 * Sync methods throw a {@link VecvaultError}; async methods return a promise
 * that rejects with one and never throw synchronously. After `close()` every
 * method fails with `ERR_CLOSED`. A database that becomes garbage without
 * `close()` still frees its native memory.
 *
 * @typeParam M - the metadata type you store (it comes back through JSON).
 *
 * @example
 * const db = new VectorDB<{ title: string }>({ dimension: 384, metric: 'cosine' });
 * db.add('doc-1', embedding, { title: 'Hello' });
 * const hits = db.search(query, 10);
 * db.close();
 */
export declare class VectorDB<M = unknown> {
  /** @throws {VecvaultError} `ERR_INVALID_ARGUMENT` for a bad or unknown option. */
  constructor(options: VectorDBOptions);

  /** Number of live (not deleted) vectors. */
  readonly size: number;
  /** The vector length given at construction. */
  readonly dimension: number;
  /** The distance measure in use. */
  readonly metric: Metric;
  /** The index structure in use. */
  readonly index: IndexKind;
  /** `true` once `close()` has been called. */
  readonly closed: boolean;
  /** The declared filterable field paths (frozen). */
  readonly filterable: readonly string[];

  /**
   * Insert a vector, or replace the vector and metadata of an existing id.
   * @throws {VecvaultError} `ERR_INVALID_ID`, `ERR_DIMENSION_MISMATCH`,
   *   `ERR_INVALID_VECTOR`, `ERR_INVALID_METADATA`, `ERR_INVALID_ARGUMENT`, `ERR_CLOSED`.
   */
  add(id: string, vector: VectorLike, metadata?: M): void;

  /** Insert or replace many items, using the worker threads; a later duplicate id in the batch wins. */
  addBatch(items: readonly Item<M>[]): void;

  /**
   * `addBatch` off the JS thread, with progress and cancellation.
   * Rejects (never throws) with the same codes as `addBatch`, or `ERR_ABORTED`.
   */
  addBatchAsync(items: readonly Item<M>[], options?: AddBatchAsyncOptions): Promise<void>;

  /**
   * The stored item, or `null` if the id is absent.
   * On a lazily loaded database this may read, authenticate and decrypt
   * the item's page on the JS thread, blocking the event loop meanwhile,
   * if the page is not cached; {@link VectorDB.getAsync} reads on the thread
   * pool instead (and is the only way on storage implemented in JavaScript).
   * @throws {VecvaultError} `ERR_METADATA_CORRUPT` if its stored metadata is not JSON (as do the searches, for a hit).
   */
  get(id: string): StoredItem<M> | null;

  /** `get` on the thread pool: a lazy session may read a page for it. The one to use on storage implemented in JavaScript. */
  getAsync(id: string, options?: SignalOptions): Promise<StoredItem<M> | null>;

  /** Whether the id is present. */
  has(id: string): boolean;

  /** Remove an id; `false` if it was absent. */
  delete(id: string): boolean;

  /** Live vectors matching `filter` (all of them without one). Reads no vector or page. */
  count(filter?: Filter): number;

  /**
   * Delete the listed ids (absent ones are skipped), or every vector a
   * filter matches (`{ filter: {} }`: all). Returns how many were deleted.
   */
  deleteMany(what: readonly string[] | { filter: Filter }): number;

  /**
   * Replace an id's metadata (`null`/`undefined`: none), keeping its vector
   * and graph links; `false` (nothing changed) if the id is absent. The next
   * save rewrites only the chunk holding the row. On a lazy session whose
   * storage is JavaScript it throws `ERR_ASYNC_REQUIRED`: use `updateMetadataAsync`.
   */
  updateMetadata(id: string, metadata: M | null | undefined): boolean;
  /**
   * `updateMetadata` on a worker thread (a lazy session may read the row's page).
   * `signal` is checked before the update starts (`ERR_ABORTED`, nothing
   * changed); once started, the update completes and the promise resolves.
   */
  updateMetadataAsync(id: string, metadata: M | null | undefined, options?: SignalOptions): Promise<boolean>;

  /**
   * The live vectors (those `filter` matches), in batches of `batchSize`
   * (default 1000, at most 100000), with bounded memory; a lazy session reads
   * only each batch's pages. An id live and untouched for the whole walk is
   * seen exactly once; one re-added meanwhile at least once and at most twice,
   * the newer last; one added or deleted meanwhile may or may not be.
   */
  entries(options: EntriesOptions & { includeVector: true }): AsyncIterableIterator<StoredItem<M>[]>;
  entries(options?: EntriesOptions): AsyncIterableIterator<Array<{ id: string; metadata: M | null; vector?: Float32Array }>>;

  /**
   * The `k` nearest live vectors (fewer only if the database holds fewer),
   * sorted by ascending distance.
   *
   * On a lazily loaded database, pages this search needs that are not
   * cached (at most `rerank` for HNSW, every page for `'flat'`) are
   * read, authenticated and decrypted on the JS thread, blocking the event
   * loop (a few µs to tens of µs per 4 KiB page). Use {@link VectorDB.searchAsync} to do
   * that on the thread pool.
   * @param k - a positive integer.
   */
  search(query: VectorLike, k: number, options: SearchOptionsWithVector): SearchResultWithVector<M>[];
  search(query: VectorLike, k: number, options?: SearchOptions): SearchResult<M>[];

  /**
   * `search` off the JS thread: chunk reads and decryption of a lazily
   * loaded database happen on the thread pool. With `signal`, rejects with `ERR_ABORTED`
   * (name AbortError) as soon as it aborts, and a lazily loaded database's
   * search reads no further chunk; an already-aborted signal reads nothing.
   */
  searchAsync(query: VectorLike, k: number, options: SearchOptionsWithVector & SignalOptions): Promise<SearchResultWithVector<M>[]>;
  searchAsync(query: VectorLike, k: number, options?: SearchOptions & SignalOptions): Promise<SearchResult<M>[]>;

  /**
   * One `search` per query, in parallel on the worker threads; results in
   * query order. The call still blocks the JS thread until every query is
   * done, including, on a lazily loaded database, reading and decrypting
   * the chunks they need: use {@link VectorDB.searchBatchAsync} to keep the
   * event loop free.
   */
  searchBatch(queries: QueriesLike, k: number, options: SearchOptionsWithVector): SearchResultWithVector<M>[][];
  searchBatch(queries: QueriesLike, k: number, options?: SearchOptions): SearchResult<M>[][];

  /**
   * `searchBatch` off the JS thread: chunk reads of a lazily loaded database
   * happen on the thread pool. `signal` as for {@link VectorDB.searchAsync}.
   */
  searchBatchAsync(queries: QueriesLike, k: number, options: SearchOptionsWithVector & SignalOptions): Promise<SearchResultWithVector<M>[][]>;
  searchBatchAsync(queries: QueriesLike, k: number, options?: SearchOptions & SignalOptions): Promise<SearchResult<M>[][]>;

  /**
   * Free the native memory. Work already in flight still settles; later
   * calls fail with `ERR_CLOSED`. Calling it again does nothing.
   */
  close(): void;

  /** `using db = ...`: {@link VectorDB.close} at the end of the scope. */
  [Symbol.dispose](): void;

  /** `await using db = ...`: {@link VectorDB.close}; work in flight still settles. */
  [Symbol.asyncDispose](): Promise<void>;

  /** Set by {@link VectorDB.load}; `null` for a database made with `new`. */
  readonly loadStats: LoadStats | null;

  /** The chunk cache of a lazily loaded session; all counts 0 (and `lazy` false) otherwise. */
  cacheStats(): CacheStats;

  /** Change the cache bound (MiB, above 0 and at most 1048576, as in the constructor), evicting at once if needed. */
  setCacheSize(mb: number): void;

  /**
   * Read chunks into the cache ahead of queries: the given chunk ids (see
   * {@link SessionInfo.chunks}), or with none as many as fit, in session
   * order. Resolves with the number of chunks read from storage.
   * @throws {VecvaultError} (rejects) `ERR_INVALID_ARGUMENT` for an unknown chunk id,
   *   `ERR_CHUNK_MISSING`, `ERR_CHUNK_CORRUPT`, `ERR_ABORTED`, `ERR_CLOSED`.
   */
  preload(chunkIds?: readonly number[] | null, options?: AddBatchAsyncOptions): Promise<number>;

  /**
   * Save as a chunked session in a directory (created if missing, with its
   * missing parents: an error names a parent that cannot be created) or a
   * {@link Storage}: encrypted unless `encryptAtRest: false`, crash-safe,
   * incremental when the target holds the generation this database last
   * saved or loaded. On a Storage the manifest is replaced by
   * compare-and-swap: of two overlapping saves, one rejects with
   * `ERR_CONFLICT` (docs/STORAGE.md). The saved generation is
   * the database at the save's capture (before the first object is written);
   * searches, adds and deletes keep running while it writes, and go into the
   * next save. A batch in flight contributes a prefix of its items.
   * @throws {VecvaultError} (rejects) `ERR_KEY_REQUIRED`, `ERR_LOCKED`, `ERR_CONFLICT`, `ERR_ACCESS`, `ERR_NOT_A_SESSION`,
   *   `ERR_IO`, `ERR_NOSPC`, `ERR_ABORTED`, `ERR_CLOSED`.
   */
  save(target: SessionTarget, options?: SaveOptions): Promise<SaveStats>;

  /**
   * Adopt the newest generation of the session this database was loaded
   * from or last saved to. A lazy session whose new generation only adds
   * delta index segments reads just those and the manifest, in place;
   * otherwise it reads the new index whole, keeping its cached pages of the
   * chunks both generations share (docs/STORAGE.md).
   * @throws {VecvaultError} (rejects) `ERR_INVALID_ARGUMENT` if the database holds unsaved changes or never
   *   saved or loaded a session; `ERR_LOCKED` if a refresh is already running; the load errors.
   */
  refresh(options?: AddBatchAsyncOptions): Promise<{ generation: number; changed: boolean }>;

  /** The session this database last saved to or loaded from, as one file (a path) or stream (docs/EXPORT.md). */
  export(out: string | WritableLike, options?: TransferOptions): Promise<{ records: number; bytes: number; generation: number }>;

  /** Copy every retained generation of a session, objects as they are (no key needed). */
  static copy(source: SessionTarget, target: SessionTarget, options?: TransferOptions): Promise<{ objectsCopied: number; objectsSkipped: number; bytesCopied: number; generation: number }>;

  /** Write an export (a file path or a stream) into a directory or Storage. */
  static import(input: string | AsyncIterable<Uint8Array>, target: SessionTarget, options?: TransferOptions): Promise<{ objectsWritten: number; objectsSkipped: number; generation: number }>;

  /**
   * Open a saved session.
   * @throws {VecvaultError} (rejects) `ERR_NOT_FOUND`, `ERR_KEY_REQUIRED`, `ERR_WRONG_KEY`,
   *   `ERR_MANIFEST_CORRUPT`, `ERR_MANIFEST_AUTH`, `ERR_CHUNK_MISSING`, `ERR_CHUNK_CORRUPT`,
   *   `ERR_UNSUPPORTED_VERSION`, `ERR_ROLLBACK`, `ERR_IO`, `ERR_ABORTED`.
   */
  static load<M = unknown>(source: SessionTarget, options?: LoadOptions): Promise<VectorDB<M>>;

  /**
   * Read a session's manifest without a key. With `signal`, rejects with
   * `ERR_ABORTED` as soon as it aborts; an already-aborted signal reads nothing.
   * @throws {VecvaultError} (rejects) `ERR_NOT_FOUND`, `ERR_MANIFEST_CORRUPT`, `ERR_IO`, `ERR_ABORTED`.
   */
  static inspect(source: SessionTarget, options?: SignalOptions): Promise<SessionInfo>;
}

/** Options for `new VectorDB.Cache()`. Unknown keys are rejected. */
export interface CacheOptions {
  /** The budget in MiB over every session loaded with the cache: above 0 and at most 1048576 (1 TiB). Required. */
  maxMb: number;
}

/** `cache.stats()`: the whole budget; each session's share is its `cacheStats()`. */
export interface SharedCacheStats {
  /** Decoded bytes cached now over every session; never above `capacityBytes`. */
  bytes: number;
  capacityBytes: number;
  /** Summed over the sessions that used the cache, closed ones included. */
  hits: number;
  misses: number;
  evictions: number;
  /** Values served uncached because pinned ones left no room. */
  bypasses: number;
  /** Values cached now. */
  entries: number;
  /** Sessions using the cache now. */
  sessions: number;
}

export declare namespace VectorDB {
  /**
   * One cache budget shared by the sessions loaded with it (`load(dir, { cache })`).
   * One least-recently-used order spans every session; a session over its own
   * `cacheSizeMb` cap recycles its own values first. The cache lives while
   * any session loaded with it does, whatever happens to this object.
   * @throws {VecvaultError} `ERR_INVALID_ARGUMENT` for bad options.
   */
  class Cache {
    constructor(options: CacheOptions);
    /** The budget in MiB. */
    readonly maxMb: number;
    stats(): SharedCacheStats;
    /** Change the budget (MiB, the `maxMb` rule), evicting at once if needed. */
    setMaxMb(mb: number): void;
  }
}

/** Every {@link ErrorCode}, in a fixed order. */
export declare const ERROR_CODES: readonly ErrorCode[];

/** The SIMD kernels the engine picked for this CPU at load time, e.g. `'avx2'`, `'neon'` or `'scalar'`. */
export declare const simd: string;
