/*
 * test/types/usage.ts: exercises the whole public API under `strict`, as a
 * CommonJS TypeScript user would write it. Type-checked only (noEmit); the
 * `@ts-expect-error` lines prove that misuse is rejected.
 */
import { ERROR_CODES, VectorDB, VecvaultError, simd } from 'vecvault';
import type {
  AbortSignalLike,
  AddBatchAsyncOptions,
  ErrorCode,
  HnswOptions,
  IndexKind,
  Item,
  JsonValue,
  LoadStats,
  SaveStats,
  SessionInfo,
  CacheStats,
  SharedCacheStats,
  SessionProgressInfo,
  Metric,
  SearchOptions,
  SearchResult,
  SearchResultWithVector,
  StoredItem,
  VectorDBOptions,
} from 'vecvault';

interface Doc {
  title: string;
  tags: string[];
}

const metric: Metric = 'cosine';
const index: IndexKind = 'hnsw';
const hnsw: HnswOptions = { m: 16, efConstruction: 200, efSearch: 64 };
const options: VectorDBOptions = {
  dimension: 4,
  metric,
  index,
  hnsw,
  chunkSize: 10000,
  cacheSizeMb: 150,
  encryptAtRest: true,
  key: new Uint8Array(32),
  threads: 2,
};

const db = new VectorDB<Doc>(options);
const loose = new VectorDB({ dimension: 4, passphrase: 'secret' });
const json = new VectorDB<JsonValue>({ dimension: 4, metric: 'dot', index: 'flat' });

db.add('a', new Float32Array([1, 2, 3, 4]), { title: 'A', tags: [] });
db.add('b', [1, 0, 0, 0]);
loose.add('c', [1, 2, 3, 4], new Date());
json.add('d', [1, 2, 3, 4], { nested: [1, 'two', null, true] });

const items: Item<Doc>[] = [
  { id: 'x', vector: [0, 1, 0, 0], metadata: { title: 'X', tags: ['t'] } },
  { id: 'y', vector: new Float32Array(4).fill(1) },
];
db.addBatch(items);

const rec: StoredItem<Doc> | null = db.get('a');
if (rec) {
  const v: Float32Array = rec.vector;
  const title: string | undefined = rec.metadata?.title;
  void v;
  void title;
}
const present: boolean = db.has('a');
const removed: boolean = db.delete('b');
void present;
void removed;

const searchOpts: SearchOptions = { efSearch: 128 };
const hits: SearchResult<Doc>[] = db.search([1, 2, 3, 4], 10, searchOpts);
for (const hit of hits) {
  const d: number = hit.distance;
  const s: number = hit.score;
  const maybe: Float32Array | undefined = hit.vector;
  void d;
  void s;
  void maybe;
}
const withVectors: SearchResultWithVector<Doc>[] = db.search([1, 2, 3, 4], 3, { includeVector: true });
const first: Float32Array | undefined = withVectors[0]?.vector;
void first;

const lists: SearchResult<Doc>[][] = db.searchBatch([[1, 2, 3, 4], new Float32Array(4).fill(2)], 5);
const flatLists = db.searchBatch(new Float32Array(8).fill(1), 5, { includeVector: true });
const fv: Float32Array = flatLists[0][0].vector;
void lists;
void fv;

const size: number = db.size;
const dim: number = db.dimension;
const m: Metric = db.metric;
const closed: boolean = db.closed;
const kind: IndexKind = db.index;
const codes: readonly ErrorCode[] = ERROR_CODES;
const isa: string = simd;
void kind;
void codes;
void isa;
void size;
void dim;
void m;
void closed;

async function asyncUse(): Promise<void> {
  const controller = new AbortController();
  const opts: AddBatchAsyncOptions = {
    signal: controller.signal,
    onProgress(done: number, total: number) {
      if (done === total) controller.abort();
    },
  };
  try {
    await db.addBatchAsync(items, opts);
  } catch (e) {
    if (e instanceof VecvaultError) {
      const code: ErrorCode = e.code;
      if (code === 'ERR_ABORTED' && e.name === 'AbortError') return;
    }
    throw e;
  }
  await db.addBatchAsync(items);
  const r: SearchResult<Doc>[] = await db.searchAsync([1, 2, 3, 4], 5);
  const rv: SearchResultWithVector<Doc>[] = await db.searchAsync([1, 2, 3, 4], 5, { includeVector: true, efSearch: 32 });
  const rb: SearchResult<Doc>[][] = await db.searchBatchAsync([[1, 2, 3, 4]], 5);
  const rbv: SearchResultWithVector<Doc>[][] = await db.searchBatchAsync(new Float32Array(4).fill(1), 5, { includeVector: true });
  // Every async method takes a signal, searches included.
  const rbs: SearchResult<Doc>[][] = await db.searchBatchAsync([[1, 2, 3, 4]], 5, { signal: controller.signal });
  const got = await db.getAsync('a', { signal: controller.signal });
  const updated: boolean = await db.updateMetadataAsync('a', null, { signal: controller.signal });
  void [rbs, got, updated];
  // using / await using close the database at the end of the scope.
  {
    using scoped = new VectorDB({ dimension: 4 });
    await using scopedAsync = new VectorDB({ dimension: 4 });
    void [scoped.size, scopedAsync.size];
  }
  // A signal is checked by shape: a polyfill's works.
  const polyfill: AbortSignalLike = { aborted: false, addEventListener() {}, removeEventListener() {} };
  await db.searchAsync([1, 2, 3, 4], 5, { signal: polyfill });
  await VectorDB.inspect('/tmp/x', { signal: polyfill });
  void r;
  void rv;
  void rb;
  void rbv;
}
void asyncUse();

function handle(e: unknown): string {
  if (e instanceof VecvaultError) {
    switch (e.code) {
      case 'ERR_INVALID_ARGUMENT':
      case 'ERR_DIMENSION_MISMATCH':
      case 'ERR_INVALID_VECTOR':
      case 'ERR_INVALID_ID':
      case 'ERR_INVALID_METADATA':
      case 'ERR_CLOSED':
      case 'ERR_ABORTED':
      case 'ERR_NO_MEMORY':
      case 'ERR_CAPACITY':
      case 'ERR_INTERNAL':
        return e.code;
    }
  }
  return e instanceof Error ? e.message : String(e);
}
void handle;

db.close();
loose.close();
json.close();

/* misuse the declarations must reject */
// @ts-expect-error dimension is required
void new VectorDB({});
// @ts-expect-error unknown metric
void new VectorDB({ dimension: 4, metric: 'euclidean' });
// @ts-expect-error 'ivf' is not available yet
void new VectorDB({ dimension: 4, index: 'ivf' });
// @ts-expect-error unknown option key
void new VectorDB({ dimension: 4, foo: 1 });
// @ts-expect-error id must be a string
db.add(1, [1, 2, 3, 4]);
// @ts-expect-error metadata must match Doc
db.add('z', [1, 2, 3, 4], { title: 5 });
// @ts-expect-error vector must be numbers
db.add('z', ['1', '2', '3', '4']);
// @ts-expect-error size is read-only
db.size = 3;
// @ts-expect-error vector is optional without includeVector: true
const noVector: Float32Array = db.search([1, 2, 3, 4], 1)[0].vector;
void noVector;
// @ts-expect-error not an ErrorCode
const badCode: ErrorCode = 'ERR_NOPE';
void badCode;

// Sessions
async function sessions(): Promise<void> {
  const key = new Uint8Array(32);
  const db = new VectorDB<{ title: string }>({ dimension: 3, key, chunkSize: 100 });
  const stats: SaveStats = await db.save('/tmp/x', {
    onProgress: (done: number, total: number, info: SessionProgressInfo) => void [done, total, info.phase, info.bytes],
    pageKb: 16,
  });
  const gen: number = stats.generation;
  const db2 = await VectorDB.load<{ title: string }>('/tmp/x', { key, lazy: false, threads: 2 });
  const ls: LoadStats | null = db2.loadStats;
  const info: SessionInfo = await VectorDB.inspect('/tmp/x');
  const enc: boolean = info.encrypted;
  const lazy = await VectorDB.load('/tmp/x', { key, lazy: true, cacheSizeMb: 64 });
  const cs: CacheStats = lazy.cacheStats();
  const cached: number = cs.bytes + cs.capacityBytes + cs.entries + cs.misses;
  lazy.setCacheSize(32);
  const read: number = await lazy.preload([info.chunks[0].id]);
  const wanted: readonly number[] = info.chunks.map((c) => c.id);
  await lazy.preload(wanted);
  // @ts-expect-error loadStats is read-only
  lazy.loadStats = null;
  if (ls) {
    // @ts-expect-error LoadStats fields are read-only
    ls.lazy = true;
  }
  lazy.search(new Float64Array([0.1, 0.2]), 5);
  lazy.search([0.1, 0.2], 5, { efSearch: 128, rerank: 64 });
  // @ts-expect-error maxChunkReads was removed
  lazy.search([0.1, 0.2], 5, { maxChunkReads: 4 });
  // @ts-expect-error rerank is a number
  lazy.search([0.1, 0.2], 5, { rerank: '64' });
  const budget = new VectorDB.Cache({ maxMb: 512 });
  const tenant = await VectorDB.load('/tmp/x', { key, cache: budget, cacheSizeMb: 64 });
  const whole: SharedCacheStats = budget.stats();
  const shared: number = whole.bytes + whole.capacityBytes + whole.sessions + whole.evictions + tenant.cacheStats().bytes;
  budget.setMaxMb(256);
  const mb: number = budget.maxMb;
  // @ts-expect-error maxMb is required
  new VectorDB.Cache({});
  // @ts-expect-error cache must be a VectorDB.Cache
  void VectorDB.load('/tmp/x', { cache: { maxMb: 1 } });
  void [gen, ls, enc, cached, read, shared, mb];
}
void sessions;

// Sessions on any storage.
import { MemoryStorage, DirStorage, FaultStorage } from 'vecvault';
import type { Storage, StorageObjectInfo, SessionTarget } from 'vecvault';
import { S3Storage } from 'vecvault/s3';

class MapStorage implements Storage {
  readonly description = 'map:';
  private objects = new Map<string, Uint8Array>();
  private manifest: { data: Uint8Array; version: string } | null = null;
  async read(name: string, range?: { offset: number; length: number } | null): Promise<Uint8Array | null> {
    const b = this.objects.get(name);
    return b === undefined ? null : range ? b.subarray(range.offset, range.offset + range.length) : b;
  }
  async write(name: string, data: Uint8Array): Promise<void> {
    this.objects.set(name, data.slice());
  }
  async delete(name: string): Promise<void> {
    this.objects.delete(name);
  }
  async list(prefix: string): Promise<StorageObjectInfo[]> {
    return [...this.objects].filter(([n]) => n.startsWith(prefix)).map(([name, b]) => ({ name, size: b.length }));
  }
  async readManifest() {
    return this.manifest;
  }
  async writeManifest(data: Uint8Array, expected: string | null) {
    if ((this.manifest ? this.manifest.version : null) !== expected) throw Object.assign(new Error('conflict'), { code: 'ERR_CONFLICT' });
    this.manifest = { data, version: String(Date.now()) };
    return { version: this.manifest.version };
  }
}

async function storages(db: VectorDB, client: { send(c: unknown): Promise<unknown> }): Promise<void> {
  const targets: SessionTarget[] = [new MapStorage(), new MemoryStorage(), new DirStorage('/tmp/x'), '/tmp/y',
    new FaultStorage(new MemoryStorage(), { faults: (c) => (c.n === 0 ? { kind: 'transient' } : undefined) }),
    new S3Storage({ client, bucket: 'b', prefix: 'p/', conditionalWrites: true })];
  const plan = FaultStorage.combine(FaultStorage.failNth('write', 2, 'transient', { s3: true }), FaultStorage.failNamed(/manifest/, 'corrupt', { at: 3 }));
  const fault = new FaultStorage(new MemoryStorage(), { faults: plan });
  const mem = new MemoryStorage();
  void [fault.calls, fault.log.length, FaultStorage.OPS, FaultStorage.KINDS, mem.objectCount, mem.names(), mem.snapshot().size];
  fault.resetCounts();
  for (const t of targets) {
    const s: SaveStats = await db.save(t, { retry: { retries: 3, timeoutMs: 1000 }, gcGraceMs: 0, uploadsInFlight: 4 });
    const r = await VectorDB.load(t, { retry: { baseMs: 10 } });
    const one = await r.getAsync('a');
    const { generation, changed }: { generation: number; changed: boolean } = await r.refresh();
    void [s, one, generation, changed];
  }
  await VectorDB.copy('/tmp/a', new MemoryStorage(), { onProgress: (d: number, t: number) => void [d, t] });
  await db.export('/tmp/a.vvx');
  await VectorDB.import('/tmp/a.vvx', '/tmp/b');
  // @ts-expect-error a Storage needs all six methods
  void db.save({ read: async () => null });
}
void storages;

// Filtered search and the data API.
async function filtered(): Promise<void> {
  const f = new VectorDB<{ lang: string; year: number; tags: string[] }>({ dimension: 3, filterable: ['lang', 'year', 'tags'] });
  const paths: readonly string[] = f.filterable;
  f.add('a', [1, 2, 3], { lang: 'en', year: 2021, tags: ['x'] });
  const hits = f.search([1, 2, 3], 5, { filter: { lang: 'en', year: { $gte: 2020 }, tags: { $in: ['x', 'y'] } }, plan: 'auto' });
  const near = await f.searchAsync([1, 2, 3], 100, { maxDistance: 0.25, filter: { $or: [{ lang: 'de' }, { year: { $not: { $lt: 2000 } } }] } });
  const n: number = f.count({ lang: { $ne: null } }) + f.count();
  const deleted: number = f.deleteMany(['a']) + f.deleteMany({ filter: { tags: { $exists: false } } });
  const existed: boolean = f.updateMetadata('a', { lang: 'de', year: 1999, tags: [] });
  const existed2: boolean = await f.updateMetadataAsync('a', null);
  for await (const batch of f.entries({ filter: { lang: 'en' }, batchSize: 100, includeVector: true })) {
    const v: Float32Array = batch[0].vector;
    void v;
  }
  for await (const batch of f.entries()) void batch[0].id;
  void [paths, hits, near, n, deleted, existed, existed2];
}
void filtered;
