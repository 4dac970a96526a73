'use strict';
/*
 * lib/storage/transfer.js: moving a whole session between storages, and in
 * and out of one export stream (docs/EXPORT.md).
 *
 * Owns: which objects a session consists of (every retained generation: the
 * current manifest, the history manifests under manifests/ and every object
 * any of them lists), the rules for a target (empty, or the same session at
 * an older or equal generation), the order of writes that keeps a target
 * valid at every moment (objects, then history manifests, then the manifest
 * by compare-and-swap), and the export container's writer and its
 * validating, streaming reader.
 *
 * Nothing here needs a key or decrypts anything: objects are copied byte for
 * byte, and a load authenticates them as usual. Manifests are parsed only for
 * the names, sizes, session id and generation they list (docs/FORMAT.md
 * section 3), without their sum or MAC, so every field read is checked
 * before it is used.
 */
const { VecvaultError, abortError } = require('../errors');
const { isAbortSignalLike } = require('../options');
const { DirStorage, OBJECT_RE, HISTORY_RE, MANIFEST_MAX_BYTES } = require('./dir');
const { classify, withRetry } = require('./retry');
const { withLease } = require('./lease');

const MANIFEST = 'manifest.json';
/* Objects copied at once: a few requests in flight for remote stores, memory bounded by a few objects. */
const COPY_CONCURRENCY = 4;

/* ------------------------------------------------------------ options */

function parseOptions(options, what) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw new VecvaultError(`${what}: options must be an object`, 'ERR_INVALID_ARGUMENT');
  const { onProgress, signal } = options;
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new VecvaultError(`${what}: onProgress must be a function`, 'ERR_INVALID_ARGUMENT');
  }
  if (signal !== undefined && !isAbortSignalLike(signal)) {
    throw new VecvaultError(`${what}: signal must be an AbortSignal (an object with a boolean aborted, addEventListener and removeEventListener)`, 'ERR_INVALID_ARGUMENT');
  }
  return { onProgress, signal };
}

/* A directory path or a Storage. */
function toStorage(x, what) {
  if (typeof x === 'string') return new DirStorage(x);
  const ok = x && typeof x === 'object' && ['read', 'write', 'delete', 'list', 'readManifest', 'writeManifest']
    .every((m) => typeof x[m] === 'function');
  if (!ok) throw new VecvaultError(`${what} must be a directory path or a Storage`, 'ERR_INVALID_ARGUMENT');
  return x;
}

function describe(storage) {
  return (storage && typeof storage.description === 'string' && storage.description) || 'storage';
}

function throwIfAborted(signal) {
  if (signal && signal.aborted) throw abortError(signal);
}

/* `promise`, or AbortError as soon as `signal` fires (the promise is left to settle on its own). */
function untilAborted(promise, signal) {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortError(signal));
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(abortError(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const done = () => signal.removeEventListener('abort', onAbort);
    promise.then((v) => { done(); resolve(v); }, (e) => { done(); reject(e); });
  });
}

/*
 * A Storage as transfers use it: every call retried while it fails
 * transiently (retry.js), abortable, with a per-attempt timeout that grows
 * with the bytes moved, and failing with a typed error naming the storage
 * and the object (ERR_ACCESS, ERR_CONFLICT, ERR_ABORTED, else ERR_IO).
 */
class Reliable {
  constructor(storage, signal) {
    this.storage = storage;
    this.signal = signal;
    this.where = describe(storage);
  }

  #call(op, name, fn, bytes = 0) {
    const timeoutMs = 30000 + Math.ceil(bytes / (1024 * 1024)) * 1000;
    return withRetry((o) => fn(o), { signal: this.signal, timeoutMs }).catch((err) => {
      throw this.#typed(err, op, name);
    });
  }

  #typed(err, op, name) {
    if (err instanceof VecvaultError) return err;
    const kind = classify(err);
    if (kind === 'aborted') return abortError(this.signal);
    const code = kind === 'access' ? 'ERR_ACCESS' : kind === 'conflict' ? 'ERR_CONFLICT' : 'ERR_IO';
    return new VecvaultError(`${this.where}: ${op} ${name}: ${err && err.message}`, code, { cause: err });
  }

  list(prefix) {
    return this.#call('list', prefix || '(all)', (o) => this.storage.list(prefix, o));
  }

  readManifest() {
    return this.#call('read', MANIFEST, (o) => this.storage.readManifest(o));
  }

  /* The whole object or history manifest, or null. */
  read(name, size = 0) {
    return this.#call('read', name, (o) => this.storage.read(name, null, o), size);
  }

  /* An object of `size` bytes (from a manifest): missing or of another size fails. */
  async readObject(name, size) {
    const data = await this.read(name, size);
    if (!data) throw new VecvaultError(`${this.where}: ${name} is missing`, 'ERR_CHUNK_MISSING');
    if (data.length !== size) throw new VecvaultError(`${this.where}: ${name} has ${data.length} bytes, expected ${size}`, 'ERR_CHUNK_CORRUPT');
    return data;
  }

  write(name, data) {
    return this.#call('write', name, (o) => this.storage.write(name, data, o), data.length);
  }

  delete(name) {
    return this.#call('delete', name, (o) => this.storage.delete(name, o));
  }

  /*
   * A retried compare-and-swap can lose to itself: the first attempt took
   * effect but its answer was lost, so the retry finds a newer version. A
   * conflict after more than one attempt is therefore a success when the
   * manifest now holds exactly these bytes.
   */
  async writeManifest(data, expected) {
    try {
      return await this.#call('write', MANIFEST, (o) => this.storage.writeManifest(data, expected, o), data.length);
    } catch (err) {
      if (err.code !== 'ERR_CONFLICT' || !(err.attempts > 1)) throw err;
      const now = await this.readManifest();
      if (now && Buffer.compare(Buffer.from(now.data), Buffer.from(data)) === 0) return { version: now.version };
      throw err;
    }
  }
}

/*
 * Runs fn(signal) as the target's only writer: directly on a store with
 * conditional writes (the manifest's compare-and-swap decides), under its
 * lease on one without (lease.js; fn's signal then also fires when the lease
 * is lost, and the call fails with ERR_LOCKED).
 */
function asWriter(target, signal, fn) {
  if (target.conditionalWrites !== false) return fn(signal);
  return withLease(target, (o) => fn(o.signal), signal ? { signal } : {});
}

/* Progress that never goes backwards, and whose throwing callback fails the operation. */
function progress(onProgress, total) {
  let done = 0;
  const report = (n) => {
    done += n;
    if (onProgress) onProgress(Math.min(done, total), total);
  };
  report(0);
  return report;
}

/* ---------------------------------------------------------- manifests */

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const FRAME_HEAD = '{"sum":"';

/* True when `data` begins with the manifest frame (docs/FORMAT.md section 1, case 3a). */
function hasManifestFrame(data) {
  return data.length >= FRAME_HEAD.length && Buffer.from(data.buffer, data.byteOffset, FRAME_HEAD.length).toString('latin1') === FRAME_HEAD;
}

/*
 * What a copy needs from a manifest: { sessionId, generation, objects: Map
 * of 'objects/<name>' -> bytes }. Throws `fail(message)` on anything that
 * does not follow docs/FORMAT.md section 3 closely enough to trust those
 * fields (sum and MAC are left to the loader).
 */
function parseManifest(data, fail) {
  if (!(data instanceof Uint8Array) || data.length > MANIFEST_MAX_BYTES || data.length < 157) throw fail('bad size');
  const text = Buffer.from(data.buffer, data.byteOffset, data.length).toString('latin1');
  const frameOk = text.startsWith(FRAME_HEAD) && text.slice(72, 81) === '","mac":"' && text.slice(145, 154) === '","body":' &&
    text.endsWith('}\n') && HEX64.test(text.slice(8, 72)) && HEX64.test(text.slice(81, 145));
  if (!frameOk) throw fail('bad frame');
  let body;
  try {
    body = JSON.parse(Buffer.from(data.buffer, data.byteOffset + 154, data.length - 156).toString('utf8'));
  } catch (_) {
    throw fail('body is not JSON');
  }
  if (!body || typeof body !== 'object' || body.format !== 'vecvault-session') throw fail('not a vecvault session');
  if (typeof body.sessionId !== 'string' || !HEX32.test(body.sessionId)) throw fail('bad sessionId');
  if (!Number.isSafeInteger(body.generation) || body.generation < 1) throw fail('bad generation');
  const index = body.index;
  if (!Array.isArray(body.chunks) || !index || typeof index !== 'object' || !Array.isArray(index.base) || !Array.isArray(index.deltas)) {
    throw fail('bad object lists');
  }
  const objects = new Map();
  for (const ref of [...body.chunks, ...index.base, ...index.deltas]) {
    if (!ref || typeof ref.name !== 'string' || !HEX64.test(ref.name) || !Number.isSafeInteger(ref.bytes) || ref.bytes < 0) {
      throw fail('bad object reference');
    }
    const name = `objects/${ref.name}`;
    if (objects.has(name) && objects.get(name) !== ref.bytes) throw fail(`two sizes for ${name}`);
    objects.set(name, ref.bytes);
  }
  return { sessionId: body.sessionId, generation: body.generation, objects };
}

function historyName(generation) {
  return `manifests/${String(generation).padStart(20, '0')}.json`;
}

/*
 * Everything a copy or export of `source` carries: the current manifest
 * ({ data, parsed }), the history manifests of the same session at or below
 * its generation whose objects are all there ([{ name, data }], oldest first),
 * and the objects any of them lists ([{ name, size }]). A history manifest
 * that cannot be parsed, belongs elsewhere, is newer than the current one (an
 * uncommitted save's copy) or lists an object the source lacks is not a
 * retained generation and is left out; an object of the current one that is
 * missing or of the wrong size fails the copy.
 */
async function planSession(source) {
  const where = source.where;
  const current = await source.readManifest();
  if (!current) throw new VecvaultError(`${where} holds no session (no ${MANIFEST})`, 'ERR_NOT_A_SESSION');
  const parsed = parseManifest(current.data, (why) => new VecvaultError(`${where}: ${MANIFEST}: ${why}`, 'ERR_MANIFEST_CORRUPT'));
  const listed = await source.list('');
  const sizes = new Map(listed.map((o) => [o.name, o.size]));
  for (const [name, bytes] of parsed.objects) {
    if (!sizes.has(name)) throw new VecvaultError(`${where}: ${name} is missing`, 'ERR_CHUNK_MISSING');
    if (sizes.get(name) !== bytes) throw new VecvaultError(`${where}: ${name} has ${sizes.get(name)} bytes, the manifest says ${bytes}`, 'ERR_CHUNK_CORRUPT');
  }
  const objects = new Map(parsed.objects);
  const history = [];
  for (const name of listed.map((o) => o.name).filter((n) => HISTORY_RE.test(n)).sort()) {
    const data = await source.read(name);
    if (!data) continue;
    let h;
    try {
      h = parseManifest(data, (why) => new Error(why));
    } catch (_) {
      continue;
    }
    const complete = [...h.objects].every(([n, b]) => sizes.get(n) === b && (!objects.has(n) || objects.get(n) === b));
    if (h.sessionId !== parsed.sessionId || h.generation > parsed.generation || historyName(h.generation) !== name || !complete) continue;
    for (const [n, b] of h.objects) objects.set(n, b);
    history.push({ name, data });
  }
  return {
    manifest: { data: current.data, parsed },
    history,
    objects: [...objects].map(([name, size]) => ({ name, size })).sort((a, b) => (a.name < b.name ? -1 : 1)),
  };
}

/*
 * The target rules shared by copy and import: `target` must hold no manifest
 * and nothing but the format's names (an interrupted copy's objects are
 * fine), or the same session (`sessionId`) at a generation at most
 * `generation`; at the same generation only the very same manifest bytes
 * (`data`, when known). Resolves { version, same, sizes }: the version to
 * compare-and-swap against, whether the target already holds exactly this
 * manifest, and the sizes of the objects the target holds.
 */
async function checkTarget(target, { sessionId, generation, data }) {
  const where = target.where;
  const current = await target.readManifest();
  const listed = await target.list('');
  const sizes = new Map(listed.filter((o) => OBJECT_RE.test(o.name)).map((o) => [o.name, o.size]));
  if (!current) {
    const foreign = listed.map((o) => o.name).filter((n) => !OBJECT_RE.test(n) && !HISTORY_RE.test(n) && n !== 'lease' && n !== 'lock');
    if (foreign.length) {
      throw new VecvaultError(`${where} is not empty and holds no session (it has ${JSON.stringify(foreign[0])})`, 'ERR_NOT_A_SESSION');
    }
    return { version: null, same: false, sizes };
  }
  if (!hasManifestFrame(current.data)) throw new VecvaultError(`${where}: ${MANIFEST} is not a session manifest`, 'ERR_NOT_A_SESSION');
  if (data && Buffer.compare(Buffer.from(current.data), Buffer.from(data)) === 0) return { version: current.version, same: true, sizes };
  const theirs = parseManifest(current.data, (why) =>
    new VecvaultError(`${where} holds a damaged session (${MANIFEST}: ${why}); refusing to replace it`, 'ERR_CONFLICT'));
  if (theirs.sessionId !== sessionId) {
    throw new VecvaultError(`${where} holds another session (${theirs.sessionId}, not ${sessionId})`, 'ERR_CONFLICT');
  }
  if (theirs.generation > generation) {
    throw new VecvaultError(`${where} holds a newer generation of this session (${theirs.generation} > ${generation})`, 'ERR_CONFLICT');
  }
  if (theirs.generation === generation && data) {
    throw new VecvaultError(`${where} holds a different generation ${generation} of this session (a fork)`, 'ERR_CONFLICT');
  }
  return { version: current.version, same: false, sizes };
}

/* Writes the history manifests the target does not already hold byte for byte, adding to `created` each name it creates as it goes. */
async function writeHistory(target, history, report, created = []) {
  for (const { name, data } of history) {
    const have = await target.read(name, data.length);
    if (!have || Buffer.compare(Buffer.from(have), Buffer.from(data)) !== 0) {
      if (!have) created.push(name);
      await target.write(name, data);
    }
    report(data.length);
  }
}

/* --------------------------------------------------------------- copy */

/**
 * Copies every retained generation of the session in `source` to `target`
 * (Storages or directory paths), objects as they are. Objects the target
 * already holds (same name and size) are skipped. The target's manifest is
 * written last, by compare-and-swap, so a reader of the target never sees a
 * manifest whose objects are missing. A copy that fails or is aborted leaves
 * the target's manifest as it was; objects it already copied stay (they are
 * unreferenced, a retried copy skips them, and a save there collects them).
 * @returns {Promise<{ objectsCopied, objectsSkipped, bytesCopied, generation }>}
 */
async function copySession(source, target, options) {
  const { onProgress, signal } = parseOptions(options, 'copy');
  const src = toStorage(source, 'copy: source');
  const dst = toStorage(target, 'copy: target');
  throwIfAborted(signal);
  return asWriter(dst, signal, (sig) => copyInto(new Reliable(src, sig), new Reliable(dst, sig), sig, onProgress));
}

async function copyInto(from, to, signal, onProgress) {
  const plan = await planSession(from);
  const { parsed, data } = plan.manifest;
  const state = await checkTarget(to, { sessionId: parsed.sessionId, generation: parsed.generation, data });
  const todo = plan.objects.filter((o) => state.sizes.get(o.name) !== o.size);
  const total = todo.reduce((n, o) => n + o.size, 0) + plan.history.reduce((n, m) => n + m.data.length, 0) + data.length;
  const report = progress(onProgress, total);

  let next = 0;
  let failed = false;
  const worker = async () => {
    try {
      while (next < todo.length && !failed) {
        const { name, size } = todo[next++];
        await to.write(name, await from.readObject(name, size));
        report(size);
      }
    } catch (err) {
      failed = true; /* the other workers stop after the object in hand */
      throw err;
    }
  };
  await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, todo.length) }, worker));
  await writeHistory(to, plan.history, report);
  throwIfAborted(signal);
  if (!state.same) await to.writeManifest(data, state.version);
  report(data.length);
  return {
    objectsCopied: todo.length,
    objectsSkipped: plan.objects.length - todo.length,
    bytesCopied: todo.reduce((n, o) => n + o.size, 0),
    generation: parsed.generation,
  };
}

module.exports = {
  copySession,
  /* export.js needs the helpers below, so it is required when first used */
  exportSession: (...args) => require('./export').exportSession(...args),
  importSession: (...args) => require('./export').importSession(...args),
  /* for the export container (export.js) */
  parseOptions,
  toStorage,
  Reliable,
  asWriter,
  throwIfAborted,
  untilAborted,
  progress,
  parseManifest,
  historyName,
  planSession,
  checkTarget,
  writeHistory,
  MANIFEST,
};
