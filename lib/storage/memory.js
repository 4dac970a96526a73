'use strict';
/*
 * lib/storage/memory.js: MemoryStorage, the Storage interface over a Map.
 *
 * For tests and for hosts without a file system. It behaves like a real
 * store where that matters to a caller: every call completes on a later
 * turn of the event loop (never synchronously), honours its AbortSignal, and
 * writeManifest is a true compare-and-swap. Bytes are copied in and out, so
 * no caller can change a stored object through a buffer it holds.
 *
 * The manifest lives in the same Map under 'manifest.json' (so list('')
 * shows it, as on S3); every write of any object gets a new version from one
 * counter, so a version never repeats within a storage.
 */
const { VecvaultError, abortError } = require('../errors');
const c = require('./common');

const MANIFEST = 'manifest.json';

/* A later turn of the event loop, then the abort check: an operation whose
 * signal fired before it ran has not happened. */
function nextTurn(signal) {
  return new Promise((resolve, reject) => {
    setImmediate(() => (signal && signal.aborted ? reject(abortError(signal)) : resolve()));
  });
}

class MemoryStorage {
  #objects = new Map(); // name -> { data: Uint8Array, lastModified: number, version: string }
  #counter = 0;

  get description() {
    return 'memory:';
  }

  get conditionalWrites() {
    return true;
  }

  /** How many objects are stored, the manifest included. */
  get objectCount() {
    return this.#objects.size;
  }

  /** Every stored name, sorted. */
  names() {
    return [...this.#objects.keys()].sort();
  }

  /** A copy of every object: Map name -> Uint8Array. */
  snapshot() {
    const out = new Map();
    for (const name of this.names()) out.set(name, this.#objects.get(name).data.slice());
    return out;
  }

  #put(name, data) {
    const version = String(++this.#counter);
    this.#objects.set(name, { data, lastModified: Date.now(), version });
    return version;
  }

  async read(name, range, options) {
    c.checkName(name);
    const r = c.checkRange(range);
    const signal = c.signalOf(options);
    c.throwIfAborted(signal);
    await nextTurn(signal);
    const entry = this.#objects.get(name);
    if (!entry) return null;
    if (!r) return entry.data.slice();
    const start = Math.min(r.offset, entry.data.length);
    return entry.data.slice(start, Math.min(entry.data.length, start + r.length));
  }

  async write(name, data, options) {
    c.checkName(name);
    c.checkData(data);
    const signal = c.signalOf(options);
    c.throwIfAborted(signal);
    const copy = new Uint8Array(data); // a copy (a Buffer's slice() would be a view), taken now
    await nextTurn(signal);
    this.#put(name, copy);
  }

  async delete(name, options) {
    c.checkName(name);
    const signal = c.signalOf(options);
    c.throwIfAborted(signal);
    await nextTurn(signal);
    this.#objects.delete(name);
  }

  async list(prefix, options) {
    c.checkPrefix(prefix);
    const signal = c.signalOf(options);
    c.throwIfAborted(signal);
    await nextTurn(signal);
    const out = [];
    for (const name of this.names()) {
      if (!name.startsWith(prefix)) continue;
      const e = this.#objects.get(name);
      out.push({ name, size: e.data.length, lastModified: e.lastModified });
    }
    return out;
  }

  async readManifest(options) {
    const signal = c.signalOf(options);
    c.throwIfAborted(signal);
    await nextTurn(signal);
    const entry = this.#objects.get(MANIFEST);
    return entry ? { data: entry.data.slice(), version: entry.version } : null;
  }

  async writeManifest(data, expectedVersion, options) {
    c.checkData(data);
    c.checkExpectedVersion(expectedVersion);
    const signal = c.signalOf(options);
    c.throwIfAborted(signal);
    const copy = new Uint8Array(data);
    await nextTurn(signal);
    // Check and swap in the same turn: nothing can run between them.
    const current = this.#objects.get(MANIFEST);
    if (expectedVersion === null ? current : !current || current.version !== expectedVersion) {
      const seen = current ? `version ${current.version}` : 'no manifest';
      const want = expectedVersion === null ? 'no manifest' : `version ${expectedVersion}`;
      throw new VecvaultError(`memory: manifest changed concurrently (expected ${want}, found ${seen})`, 'ERR_CONFLICT');
    }
    return { version: this.#put(MANIFEST, copy) };
  }
}

module.exports = { MemoryStorage };
