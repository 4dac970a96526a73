'use strict';
/*
 * lib/storage/export.js: a whole session as one stream, and back
 * (the container is specified in docs/EXPORT.md).
 *
 * Owns: the container's writer (one object in memory at a time, written in
 * slices that wait for the destination's 'drain'), and its reader, which
 * streams too and trusts nothing: every header field, name and length is
 * checked before it is used, lengths are capped before any byte is kept, and
 * the target's manifest is written only after the trailer's record count and
 * SHA-256 have been verified. A failed import removes the objects it added,
 * so the target is as it was.
 *
 * Which objects a session consists of, and the rules for a target, are
 * transfer.js's, shared with copy.
 */
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const path = require('node:path');
const crypto = require('node:crypto');
const { Writable, Readable } = require('node:stream');
const { VecvaultError, abortError } = require('../errors');
const { OBJECT_RE, HISTORY_RE, MANIFEST_MAX_BYTES } = require('./dir');
const t = require('./transfer');

const MAGIC = Buffer.from('VVEXPORT', 'latin1');
const VERSION = 1;
const HEADER_BYTES = 48;
const RECORD_HEADER_BYTES = 12;
const HASH_BYTES = 32;
const KIND = { END: 0, OBJECT: 1, HISTORY: 2, MANIFEST: 3 };
/* Caps the reader enforces before keeping any byte (docs/EXPORT.md section 4). */
const MAX_OBJECT_BYTES = 2 ** 32 - 1;
const MAX_HISTORY_RECORDS = 16;
const MAX_MANIFEST_BYTES_TOTAL = 4 * MANIFEST_MAX_BYTES;
const MAX_RECORDS = 2 ** 32 - 1;
/* Slices an object is written in, so a destination never holds more than its highWaterMark plus one slice. */
const SLICE_BYTES = 64 * 1024;

/* ------------------------------------------------------------- writing */

/* A file path (written to a temporary file beside it, renamed into place when complete) or a Node Writable. */
async function openSink(out, signal) {
  if (typeof out === 'string') {
    const dest = path.resolve(out);
    const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${crypto.randomBytes(8).toString('hex')}`);
    let fh;
    try {
      fh = await fsp.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    } catch (err) {
      throw new VecvaultError(`export: cannot create ${dest}: ${err.message}`, 'ERR_IO', { cause: err });
    }
    const ioFail = (err) => new VecvaultError(`export: cannot write ${dest}: ${err.message}`, err.code === 'ENOSPC' ? 'ERR_NOSPC' : 'ERR_IO', { cause: err });
    return {
      async write(buf) {
        try {
          let off = 0;
          while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
        } catch (err) {
          throw ioFail(err);
        }
      },
      async finish() {
        try {
          await fh.sync();
          await fh.close();
          fh = null;
          await fsp.rename(tmp, dest);
        } catch (err) {
          throw ioFail(err);
        }
      },
      async fail() {
        if (fh) await fh.close().catch(() => {});
        await fsp.unlink(tmp).catch(() => {});
      },
    };
  }
  if (!(out instanceof Writable) && !(out && typeof out.write === 'function' && typeof out.once === 'function')) {
    throw new VecvaultError('export: the destination must be a file path or a Writable stream', 'ERR_INVALID_ARGUMENT');
  }
  const settle = (events) => new Promise((resolve, reject) => {
    const handlers = {};
    const off = () => {
      for (const [ev, fn] of Object.entries(handlers)) out.removeListener(ev, fn);
      if (signal) signal.removeEventListener('abort', onAbort);
    };
    const onAbort = () => { off(); reject(abortError(signal)); };
    handlers[events] = () => { off(); resolve(); };
    handlers.error = (err) => { off(); reject(new VecvaultError(`export: the destination failed: ${err && err.message}`, 'ERR_IO', { cause: err })); };
    handlers.close = () => { off(); reject(new VecvaultError('export: the destination closed before the export was complete', 'ERR_IO')); };
    for (const [ev, fn] of Object.entries(handlers)) out.on(ev, fn);
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
  });
  return {
    async write(buf) {
      if (out.destroyed || out.writableEnded) throw new VecvaultError('export: the destination is closed', 'ERR_IO');
      if (!out.write(buf)) await settle('drain');
    },
    async finish() {
      const done = settle('finish');
      out.end();
      await done;
    },
    async fail() {
      /* A reader at the other end sees a premature close, not a clean end of a short stream. Destroyed
       * without the error: one more 'error' event on a stream the caller gave no listener would crash. */
      if (!out.destroyed && typeof out.destroy === 'function') out.destroy();
    },
  };
}

function recordHeader(kind, name, length) {
  const b = Buffer.alloc(RECORD_HEADER_BYTES + name.length);
  b.writeUInt8(kind, 0);
  b.writeUInt8(name.length, 1);
  b.writeBigUInt64LE(BigInt(length), 4);
  b.write(name, RECORD_HEADER_BYTES, 'latin1');
  return b;
}

/**
 * Writes every retained generation of the session in `source` (a Storage or
 * directory path) to `out` (a file path or a Writable, which is ended when
 * the export is complete and destroyed if it fails).
 * @returns {Promise<{ records, bytes, generation }>}
 */
async function exportSession(source, out, options) {
  const { onProgress, signal } = t.parseOptions(options, 'export');
  const from = new t.Reliable(t.toStorage(source, 'export: source'), signal);
  t.throwIfAborted(signal);
  const sink = await openSink(out, signal);
  try {
    const result = await writeContainer(from, sink, signal, onProgress);
    await sink.finish();
    return result;
  } catch (err) {
    await sink.fail(err);
    throw err;
  }
}

async function writeContainer(from, sink, signal, onProgress) {
  const plan = await t.planSession(from);
  const { parsed, data: manifest } = plan.manifest;
  const payload = plan.objects.reduce((n, o) => n + o.size, 0) + plan.history.reduce((n, m) => n + m.data.length, 0) + manifest.length;
  const report = t.progress(onProgress, payload);
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  const emit = async (buf) => {
    hash.update(buf);
    bytes += buf.length;
    for (let off = 0; off < buf.length; off += SLICE_BYTES) {
      t.throwIfAborted(signal);
      await sink.write(buf.subarray(off, Math.min(buf.length, off + SLICE_BYTES)));
    }
  };

  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt16LE(VERSION, 8);
  Buffer.from(parsed.sessionId, 'hex').copy(header, 16);
  header.writeBigUInt64LE(BigInt(parsed.generation), 32);
  header.writeBigUInt64LE(BigInt(payload), 40);
  await emit(header);

  let records = 0;
  const record = async (kind, name, data) => {
    await emit(recordHeader(kind, name, data.length));
    await emit(Buffer.from(data.buffer, data.byteOffset, data.length));
    records++;
    report(data.length);
  };
  for (const { name, size } of plan.objects) await record(KIND.OBJECT, name, await from.readObject(name, size));
  for (const { name, data } of plan.history) await record(KIND.HISTORY, name, data);
  await record(KIND.MANIFEST, t.MANIFEST, manifest);

  const trailer = recordHeader(KIND.END, '', records);
  hash.update(trailer);
  await sink.write(trailer);
  await sink.write(hash.digest());
  bytes += trailer.length + HASH_BYTES;
  return { records, bytes, generation: parsed.generation };
}

/* ------------------------------------------------------------- reading */

function corrupt(message) {
  return new VecvaultError(`import: not a valid vecvault export: ${message}`, 'ERR_EXPORT_CORRUPT');
}

/*
 * Pulls exact byte counts from an async iterable of buffers, hashing what it
 * hands out, keeping no more than what was asked for plus one incoming chunk.
 */
class Pull {
  constructor(iterable, signal) {
    this.it = iterable[Symbol.asyncIterator]();
    this.signal = signal;
    this.queue = [];
    this.queued = 0;
    this.ended = false;
    this.hash = crypto.createHash('sha256');
  }

  async #more() {
    const { value, done } = await t.untilAborted(this.it.next(), this.signal);
    if (done) {
      this.ended = true;
      return;
    }
    if (!(value instanceof Uint8Array)) throw new VecvaultError('import: the stream must yield bytes (Buffer or Uint8Array)', 'ERR_INVALID_ARGUMENT');
    if (value.length) {
      this.queue.push(Buffer.from(value.buffer, value.byteOffset, value.length));
      this.queued += value.length;
    }
  }

  /* Exactly n bytes (hashed unless told not to), gathered as they arrive: a declared length is never allocated up front. */
  async take(n, what, hashed = true) {
    const parts = [];
    let need = n;
    while (need > 0) {
      if (this.queued === 0) {
        if (this.ended) throw corrupt(`the stream ends inside ${what}`);
        await this.#more();
        continue;
      }
      const head = this.queue[0];
      const part = head.length <= need ? this.queue.shift() : head.subarray(0, need);
      if (part !== head) this.queue[0] = head.subarray(need);
      this.queued -= part.length;
      need -= part.length;
      parts.push(part);
    }
    const out = parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
    if (hashed) this.hash.update(out);
    return out;
  }

  async atEnd() {
    while (this.queued === 0 && !this.ended) await this.#more();
    return this.queued === 0;
  }

  close() {
    if (typeof this.it.return === 'function') Promise.resolve(this.it.return()).catch(() => {});
  }
}

/* A function that opens `input` (checked now, opened only when called). */
function sourceOpener(input) {
  if (typeof input === 'string') return () => fs.createReadStream(path.resolve(input), { highWaterMark: SLICE_BYTES });
  if (input instanceof Readable || (input && typeof input[Symbol.asyncIterator] === 'function')) return () => input;
  throw new VecvaultError('import: the source must be a file path or a Readable stream', 'ERR_INVALID_ARGUMENT');
}

function readHeader(buf) {
  if (!buf.subarray(0, 8).equals(MAGIC)) throw corrupt('bad magic (not an export file)');
  const version = buf.readUInt16LE(8);
  if (version !== VERSION) throw new VecvaultError(`import: export version ${version} is not supported (this vecvault reads ${VERSION})`, 'ERR_UNSUPPORTED_VERSION');
  if (buf.readUInt16LE(10) !== 0 || buf.readUInt32LE(12) !== 0) throw corrupt('unknown flags in the header');
  const generation = buf.readBigUInt64LE(32);
  const payload = buf.readBigUInt64LE(40);
  if (generation < 1n || generation > BigInt(Number.MAX_SAFE_INTEGER) || payload > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw corrupt('header field out of range');
  }
  return { sessionId: buf.subarray(16, 32).toString('hex'), generation: Number(generation), payload: Number(payload) };
}

/* The kind, name and length of the next record, each checked against the container's rules. */
function readRecordHeader(buf, lastKind) {
  const kind = buf.readUInt8(0);
  const nameLength = buf.readUInt8(1);
  if (buf.readUInt16LE(2) !== 0) throw corrupt('reserved bytes of a record are not zero');
  const length = buf.readBigUInt64LE(4);
  if (kind > KIND.MANIFEST) throw corrupt(`unknown record kind ${kind}`);
  if (kind !== KIND.END && kind < lastKind) throw corrupt('records out of order (objects, then history manifests, then the manifest)');
  if (lastKind === KIND.MANIFEST && kind !== KIND.END) throw corrupt('a record after the manifest');
  if (kind === KIND.END && nameLength !== 0) throw corrupt('bad trailer');
  const cap = kind === KIND.OBJECT ? MAX_OBJECT_BYTES : kind === KIND.END ? MAX_RECORDS : MANIFEST_MAX_BYTES;
  if (length > BigInt(cap)) throw corrupt(`a record declares ${length} bytes (at most ${cap})`);
  return { kind, nameLength, length: Number(length) };
}

function checkName(kind, name) {
  const ok = kind === KIND.OBJECT ? OBJECT_RE.test(name) : kind === KIND.HISTORY ? HISTORY_RE.test(name) : name === t.MANIFEST;
  if (!ok) throw corrupt(`bad record name ${JSON.stringify(name)}`);
}

/**
 * Imports an export (a file path or a Readable) into `target` (a Storage or
 * directory path), under the same target rules as copy.
 * @returns {Promise<{ objectsWritten, objectsSkipped, generation }>}
 */
async function importSession(input, target, options) {
  const { onProgress, signal } = t.parseOptions(options, 'import');
  const dst = t.toStorage(target, 'import: target');
  t.throwIfAborted(signal);
  const open = sourceOpener(input);
  /* a directory this import creates is removed again if the import fails (once empty) */
  const newDir = typeof target === 'string' && !fs.existsSync(target) ? path.resolve(target) : null;
  return t.asWriter(dst, signal, (sig) => importInto(open, new t.Reliable(dst, sig), sig, onProgress, input, newDir));
}

async function importInto(open, to, signal, onProgress, input, newDir) {
  const pull = new Pull(open(), signal);
  const added = [];
  let committed = false;
  try {
    const result = await readContainer(pull, to, signal, onProgress, added);
    committed = true;
    return result;
  } catch (err) {
    if (err && err.code === 'ENOENT' && typeof input === 'string') {
      throw new VecvaultError(`import: ${input} does not exist`, 'ERR_NOT_FOUND', { cause: err });
    }
    if (err && !(err instanceof VecvaultError)) throw new VecvaultError(`import: ${err.message}`, 'ERR_IO', { cause: err });
    throw err;
  } finally {
    pull.close();
    /* Put the target back as it was: remove what this import added (no signal: this must run after an abort too). */
    if (!committed) {
      const cleanup = new t.Reliable(to.storage, undefined);
      for (const name of added.reverse()) await cleanup.delete(name).catch(() => {});
      if (newDir) for (const d of ['objects', 'manifests', '.']) await fsp.rmdir(path.join(newDir, d)).catch(() => {});
    }
  }
}

async function readContainer(pull, to, signal, onProgress, added) {
  const header = readHeader(await pull.take(HEADER_BYTES, 'the header'));
  /* Refuse a wrong target before writing anything; checked again with the real manifest at the end. */
  let state = await t.checkTarget(to, header);
  const report = t.progress(onProgress, header.payload);
  const seen = new Map();
  const history = [];
  let manifest = null;
  let records = 0;
  let manifestBytes = 0;
  let lastKind = KIND.OBJECT;
  let skipped = 0;
  for (;;) {
    t.throwIfAborted(signal);
    const rh = readRecordHeader(await pull.take(RECORD_HEADER_BYTES, 'a record header'), lastKind);
    if (rh.kind === KIND.END) {
      if (rh.length !== records) throw corrupt(`the trailer counts ${rh.length} records, the file has ${records}`);
      break;
    }
    lastKind = rh.kind;
    const name = (await pull.take(rh.nameLength, 'a record name')).toString('latin1');
    checkName(rh.kind, name);
    if (seen.has(name)) throw corrupt(`${name} appears twice`);
    if (rh.kind !== KIND.OBJECT) {
      manifestBytes += rh.length;
      if (manifestBytes > MAX_MANIFEST_BYTES_TOTAL || (rh.kind === KIND.HISTORY && history.length >= MAX_HISTORY_RECORDS)) {
        throw corrupt('too many or too large manifests');
      }
    }
    const data = await pull.take(rh.length, name);
    seen.set(name, rh.length);
    records++;
    if (rh.kind === KIND.OBJECT) {
      /* Never replace an object the target holds: the import is not trusted yet, and a failed one must leave the target as it was. */
      if (state.sizes.has(name)) {
        skipped++;
      } else {
        added.push(name);
        await to.write(name, data);
      }
    } else if (rh.kind === KIND.HISTORY) {
      history.push({ name, data });
    } else {
      manifest = data;
    }
    report(rh.length);
  }
  const expected = pull.hash.digest();
  const sum = await pull.take(HASH_BYTES, 'the trailer', false);
  if (!crypto.timingSafeEqual(sum, expected)) throw corrupt('the trailer\'s SHA-256 does not match the contents');
  if (!(await pull.atEnd())) throw corrupt('bytes after the trailer');
  if (!manifest) throw corrupt('no manifest');

  const parsed = parseChecked(manifest, 'the manifest');
  if (parsed.sessionId !== header.sessionId || parsed.generation !== header.generation) throw corrupt('the manifest does not match the header');
  /* An object counts where the target will hold it: its own copy if it had one, else the record's. */
  const present = (n, b) => (state.sizes.has(n) ? state.sizes.get(n) : seen.get(n)) === b;
  const complete = (p) => [...p.objects].every(([n, b]) => present(n, b));
  if (!complete(parsed)) throw corrupt('the manifest lists an object that neither the export nor the target holds at its size');
  const listed = new Set(parsed.objects.keys());
  for (const h of history) {
    const p = parseChecked(h.data, h.name);
    if (p.sessionId !== parsed.sessionId || p.generation > parsed.generation || t.historyName(p.generation) !== h.name || !complete(p)) {
      throw corrupt(`${h.name} is not a retained generation of this session`);
    }
    for (const n of p.objects.keys()) listed.add(n);
  }
  /* an exporter writes only what the manifests list: anything else would stay behind in the target, unreferenced */
  const stray = [...seen.keys()].find((n) => OBJECT_RE.test(n) && !listed.has(n));
  if (stray) throw corrupt(`${stray} is not listed by any manifest in the export`);
  if (header.payload !== [...seen.values()].reduce((n, b) => n + b, 0)) throw corrupt('the header\'s byte count does not match the records');

  state = await t.checkTarget(to, { ...parsed, data: manifest });
  await t.writeHistory(to, history, () => {}, added);
  t.throwIfAborted(signal);
  if (!state.same) await to.writeManifest(manifest, state.version);
  return { objectsWritten: added.filter((n) => OBJECT_RE.test(n)).length, objectsSkipped: skipped, generation: parsed.generation };
}

function parseChecked(data, what) {
  return t.parseManifest(data, (why) => corrupt(`${what}: ${why}`));
}

module.exports = { exportSession, importSession, MAGIC, VERSION };
