'use strict';
// vecvault verify <dir>: authenticate and decode every object of every
// retained generation of a session with bounded memory, and name what is
// damaged.
//
// The current generation is loaded from the directory as any reader loads
// it. Each older one (its history copy manifests/<G>.json) is loaded through
// the very same authenticated path, from a read-only view of the directory
// whose manifest is that copy. Generations are opened one at a time, newest
// first, and an object a newer generation already checked is not read again.
const { SECRET, usageError } = require('./args');
const { withSession } = require('./session');
const { withLocations } = require('./location');
const { progressFor } = require('./progress');
const { table } = require('./format');

/** Codes that mean the session's bytes are damaged, as opposed to a wrong key or an I/O failure. */
const DAMAGE = new Set(['ERR_CHUNK_CORRUPT', 'ERR_CHUNK_MISSING', 'ERR_METADATA_CORRUPT', 'ERR_MANIFEST_CORRUPT', 'ERR_MANIFEST_AUTH']);

/** Of those, the ones a load reports for the manifest itself. */
const MANIFEST_CODES = new Set(['ERR_MANIFEST_CORRUPT', 'ERR_MANIFEST_AUTH']);

const CURRENT = 'manifest.json';

// Chunks preloaded per call: the cache evicts between groups, so memory stays
// bounded by the cache, not by the session.
const GROUP = 8;

/**
 * What verify found: each damaged object once, with every generation that
 * references it ({ where, object, code, message, generations }).
 */
class Damage {
  list = [];
  #byObject = new Map();

  /** Records `err` (a damage code, else rethrown) for `object` of generation `gen`, found at `where`. */
  add(gen, where, object, err) {
    if (!err || !DAMAGE.has(err.code)) throw err;
    const name = object || (err.message.match(/\b[0-9a-f]{64}\b/) || [null])[0];
    const key = `${err.code} ${name || where}`;
    const seen = this.#byObject.get(key);
    if (seen) {
      this.also(gen, seen);
      return seen;
    }
    const d = { where, object: name, code: err.code, message: err.message, generations: gen === null ? [] : [gen] };
    this.list.push(d);
    this.#byObject.set(key, d);
    return d;
  }

  /** Generation `gen` references the damaged object `d` too. */
  also(gen, d) {
    if (gen !== null && !d.generations.includes(gen)) d.generations.push(gen);
  }

  of(gen) {
    return this.list.filter((d) => d.generations.includes(gen)).length;
  }
}

function corrupt(message) {
  const err = new Error(message);
  err.code = 'ERR_MANIFEST_CORRUPT';
  return err;
}

/** The manifest body's object lists, read from `data` (the loader checks sum and MAC). */
function objectsOf(data, file) {
  const { parseManifest } = require('../storage/transfer');
  const head = parseManifest(data, (why) => corrupt(`${file}: ${why}`));
  const body = JSON.parse(Buffer.from(data.buffer, data.byteOffset + 154, data.length - 156).toString('utf8'));
  const chunks = body.chunks.map((c) => {
    if (!Number.isSafeInteger(c.seq) || c.seq < 0) throw corrupt(`${file}: bad chunk seq`);
    return { seq: c.seq, name: c.name };
  });
  const segments = [...body.index.base, ...body.index.deltas].map((s) => s.name);
  return { sessionId: head.sessionId, generation: head.generation, chunks, segments };
}

/**
 * The generations to check, newest first: [{ generation, file, data,
 * chunks, segments }], the current one (manifest.json) first. History copies
 * newer than manifest.json are a save that never committed: listed in
 * `ignored`, not checked. A history copy that cannot be read as a manifest of
 * this session is damage.
 */
async function generationsOf(store, current, found, ignored, signal) {
  const { HISTORY_RE } = require('../storage/dir');
  const opts = signal ? { signal } : {};
  const now = await store.readManifest(opts);
  if (!now) throw corrupt(`${CURRENT} vanished while verify ran`);
  const head = objectsOf(now.data, CURRENT);
  const out = [{ generation: head.generation, file: CURRENT, data: null, ...head }];
  const names = (await store.list('manifests/', opts)).map((o) => o.name).filter((n) => HISTORY_RE.test(n));
  for (const file of names.sort().reverse()) {
    const generation = Number(file.slice('manifests/'.length, -'.json'.length));
    if (generation > head.generation) {
      ignored.push({ file, reason: `newer than ${CURRENT} (generation ${head.generation}): a save that did not commit` });
      continue;
    }
    const data = await store.read(file, null, opts);
    if (!data) continue;
    if (generation === head.generation) {
      if (Buffer.compare(Buffer.from(data), Buffer.from(now.data)) !== 0) {
        found.add(generation, 'manifest', file, corrupt(`${file} differs from ${CURRENT}, which is the same generation ${generation}`));
      }
      continue;
    }
    try {
      const h = objectsOf(data, file);
      if (h.generation !== generation) throw corrupt(`${file} holds generation ${h.generation}`);
      if (h.sessionId !== head.sessionId) throw corrupt(`${file} belongs to another session (${h.sessionId})`);
      out.push({ generation, file, data, ...h });
    } catch (err) {
      found.add(generation, 'manifest', file, err);
    }
  }
  if (current.generation !== head.generation) throw corrupt(`${CURRENT} changed while verify ran`);
  return out;
}

/** A read-only view of the storage `base` whose manifest is the history copy `data`: the engine loads it as it loads any session. */
function historyView(base, file, data) {
  const refuse = async () => {
    const { VecvaultError } = require('../errors');
    throw new VecvaultError(`verify opens ${file} read-only`, 'ERR_INVALID_ARGUMENT');
  };
  return {
    description: `${base.description} (${file})`,
    read: (name, range, o) => base.read(name, range, o),
    list: (prefix, o) => base.list(prefix, o),
    readManifest: async () => ({ data, version: file }),
    write: refuse,
    delete: refuse,
    writeManifest: refuse,
  };
}

/** Preloads `chunks` as one group; on failure, one by one, so each damaged chunk is named. */
async function checkChunks(db, chunks, gen, ctx) {
  try {
    await db.preload(chunks.map((c) => c.seq), ctx.opts);
    return;
  } catch (err) {
    if (chunks.length === 1) {
      ctx.checked.set(chunks[0].name, ctx.found.add(gen, `chunk ${chunks[0].seq}`, chunks[0].name, err));
      return;
    }
    if (!DAMAGE.has(err && err.code)) throw err;
  }
  for (const c of chunks) await checkChunks(db, [c], gen, ctx);
}

/** Every live row with its vector and metadata, counted: decodes every page the chunks hold. */
async function countRows(db, ctx) {
  let n = 0;
  for await (const batch of db.entries({ includeVector: true, batchSize: 1000, ...ctx.opts })) {
    n += batch.length;
    ctx.sample(db);
  }
  return n;
}

/**
 * Checks one generation `g` in its loaded database: the chunks no newer
 * generation checked, and for the current one every row against the
 * manifest's count. Fills `summary`.
 */
async function checkLoaded(db, g, summary, ctx) {
  const fresh = [];
  for (const c of g.chunks) {
    if (!ctx.checked.has(c.name)) {
      fresh.push(c);
      continue;
    }
    const d = ctx.checked.get(c.name);
    if (d) ctx.found.also(g.generation, d);
  }
  summary.chunksChecked = fresh.length;
  summary.chunksShared = g.chunks.length - fresh.length;
  for (let i = 0; i < fresh.length; i += GROUP) {
    const group = fresh.slice(i, i + GROUP);
    await checkChunks(db, group, g.generation, ctx);
    for (const c of group) if (!ctx.checked.has(c.name)) ctx.checked.set(c.name, null);
    ctx.sample(db);
    ctx.step(group.length);
  }
  if (g.file !== CURRENT || ctx.found.of(g.generation) > 0) return;
  try {
    summary.vectors = await countRows(db, ctx);
  } catch (err) {
    ctx.found.add(g.generation, 'rows', null, err);
    return;
  }
  if (summary.vectors !== ctx.totalVectors) {
    ctx.found.add(g.generation, 'rows', null, Object.assign(new Error(`the chunks hold ${summary.vectors} live vectors, ${CURRENT} says ${ctx.totalVectors}`), { code: 'ERR_CHUNK_CORRUPT' }));
  }
}

/** Opens generation `g` (authenticating its manifest, decoding its index segments) and checks it. */
async function checkGeneration(where, g, values, io, ctx) {
  const summary = {
    generation: g.generation,
    manifest: g.file,
    chunks: g.chunks.length,
    chunksChecked: 0,
    chunksShared: 0,
    indexSegments: g.segments.length,
    vectors: null,
    opened: false,
    damaged: 0,
  };
  const target = g.file === CURRENT ? where.target : historyView(where.store, g.file, g.data);
  try {
    await withSession(target, values, io, async (db) => {
      summary.opened = true;
      if (db.loadStats.generation !== g.generation) {
        const { VecvaultError } = require('../errors');
        throw new VecvaultError(`${where.label} changed while verify ran (generation ${db.loadStats.generation} was committed); run verify again`, 'ERR_CONFLICT');
      }
      ctx.sample(db);
      ctx.step(1);
      await checkLoaded(db, g, summary, ctx);
    }, { load: ctx.load });
  } catch (err) {
    if (summary.opened) throw err;
    const manifest = err && MANIFEST_CODES.has(err.code);
    ctx.found.add(g.generation, manifest ? 'manifest' : 'index', manifest ? g.file : null, err);
  }
  for (const s of g.segments) ctx.segments.add(s);
  summary.damaged = ctx.found.of(g.generation);
  return summary;
}

function describeDamage(found) {
  return found.map((d) => `  ${d.generations.length ? `generation ${d.generations.join(', ')}, ` : ''}${d.where}: ${d.code}: ${d.message}\n`).join('');
}

function describeGeneration(s) {
  const chunks = s.opened
    ? `${s.chunks} chunks (${s.chunksChecked} checked${s.chunksShared ? `, ${s.chunksShared} shared with a newer generation` : ''})`
    : `${s.chunks} chunks (not checked: the generation could not be opened)`;
  const rows = s.vectors === null ? '' : `, ${s.vectors} vectors`;
  return [`generation ${s.generation}`, `${s.manifest}: ${chunks}, ${s.indexSegments} index segments${rows}: ${s.damaged ? `DAMAGED (${s.damaged})` : 'OK'}`];
}

function cacheMb(values) {
  if (values['cache-mb'] === undefined) return {};
  const mb = Number(values['cache-mb']);
  if (!(mb > 0) || !Number.isFinite(mb)) throw usageError(`--cache-mb must be a positive number of MiB, got ${JSON.stringify(values['cache-mb'])}`);
  return { cacheSizeMb: mb };
}

async function run({ dir }, values, io) {
  return withLocations([dir], io, (target) => {
    const { DirStorage } = require('../storage/dir');
    return verify({ target, label: dir, store: typeof target === 'string' ? new DirStorage(target) : target }, values, io);
  });
}

/** Verifies the session at `where`: { target (a directory or a Storage), label, store (a Storage on it) }. */
async function verify(where, values, io) {
  const { VectorDB } = require('../vector-db');
  const load = cacheMb(values);
  const found = new Damage();
  const opts = io.signal ? { signal: io.signal } : {};
  const report = { generation: null, chunks: null, indexSegments: null, vectors: null, generations: [], objectsChecked: 0, ignored: [], cache: null, damaged: found.list };
  const finish = () => {
    const rows = [
      ['generation', report.generation === null ? 'unknown' : `${report.generation} (current)`],
      ['chunks', report.chunks === null ? 'unknown' : report.chunks],
      ['index segments', report.indexSegments === null ? 'unknown' : report.indexSegments],
      ['vectors', report.vectors === null ? 'not counted' : report.vectors],
      ...report.generations.map(describeGeneration),
      ...report.ignored.map((i) => ['ignored', `${i.file}: ${i.reason}`]),
      ...(report.cache ? [['cache', `at most ${report.cache.peakBytes} of ${report.cache.capacityBytes} bytes held`]] : []),
      ['result', found.list.length === 0 ? `OK: every object of ${report.generations.length} generation${report.generations.length === 1 ? '' : 's'} authenticated and decoded` : `DAMAGED: ${found.list.length} problem${found.list.length === 1 ? '' : 's'}`],
    ];
    return { json: { verify: report }, text: table(rows) + describeDamage(found.list), failed: found.list.length > 0 };
  };
  let manifest;
  try {
    manifest = await VectorDB.inspect(where.target, opts);
  } catch (err) {
    found.add(null, 'manifest', CURRENT, err);
    return finish();
  }
  Object.assign(report, { generation: manifest.generation, chunks: manifest.chunkCount, indexSegments: manifest.indexSegmentCount });
  let gens;
  try {
    gens = await generationsOf(where.store, manifest, found, report.ignored, io.signal);
  } catch (err) {
    found.add(manifest.generation, 'manifest', CURRENT, err);
    return finish();
  }
  const ctx = {
    found,
    load,
    opts,
    checked: new Map(), // chunk object name -> null (intact) or its damage entry
    segments: new Set(),
    totalVectors: manifest.totalVectors,
    cache: { capacityBytes: 0, peakBytes: 0 },
    sample(db) {
      const c = db.cacheStats();
      this.cache.capacityBytes = Math.max(this.cache.capacityBytes, c.capacityBytes);
      this.cache.peakBytes = Math.max(this.cache.peakBytes, c.bytes);
    },
    step: null,
  };
  const total = new Set(gens.flatMap((g) => g.chunks.map((c) => c.name))).size + gens.length;
  const progress = progressFor('verify', io, { unit: 'objects' });
  let done = 0;
  ctx.step = (n) => progress.onProgress((done += n), total);
  try {
    progress.onProgress(0, total);
    for (const g of gens) {
      const s = await checkGeneration(where, g, values, io, ctx);
      if (g.file === CURRENT) report.vectors = s.vectors;
      report.generations.push(s);
    }
  } finally {
    progress.stop();
  }
  report.objectsChecked = ctx.checked.size + ctx.segments.size;
  report.cache = ctx.cache;
  return finish();
}

module.exports = {
  summary: 'authenticate and decode every object of every retained generation; exit 1 if anything is damaged',
  usage: '<dir> [--key-file <path> | --passphrase-file <path>] [--cache-mb <n>] [--json]',
  help:
    'Checks the current generation (manifest.json) and every older one the session\n' +
    'retains (manifests/<G>.json), newest first, one at a time. Each is opened lazily\n' +
    'through the authenticated load (its manifest authenticated, every index segment\n' +
    'decoded), then every chunk not already checked for a newer generation is read\n' +
    'through the cache a few at a time: memory stays bounded by the cache (--cache-mb,\n' +
    'default 150), not by the session. For the current generation every row is then\n' +
    'walked with its vector and metadata and counted against the manifest.\n' +
    'Each damaged object is reported once, with its error code, the message naming it\n' +
    'and the generations that reference it. History copies newer than manifest.json\n' +
    '(a save that did not commit) are listed as ignored.\n' +
    '<dir> may be s3://bucket[/prefix] (docs/CLI.md).\n' +
    'Exit 0: intact; exit 1: damage found (or the session could not be opened);\n' +
    'exit 130: interrupted (Ctrl-C).\n',
  options: { ...SECRET, 'cache-mb': { type: 'string' } },
  positionals: ['dir'],
  run,
};
