'use strict';
// The engine's requests to a Storage implemented in JavaScript.
//
// The engine (csrc/session/objio.c) runs on worker threads and sees an object
// store with six requests. The binding (csrc/napi/storage.cc) hands each one
// to dispatch() below on the JS thread, and the engine thread waits until
// `done` is called. So dispatch must call `done` exactly once, whatever the
// Storage does: every call goes through withRetry, whose per-attempt
// timeout turns a promise that never settles into a transient failure, and
// whose last failure is reported, never swallowed.
//
// At most `maxInFlight` requests of one handle run at once; the rest wait
// here in order (the engine bounds its own uploads too: backpressure reaches
// the save's thread).

const { withRetry, classify } = require('./retry');
const native = require('../native');

const OP = { GET: 1, PUT: 2, DELETE: 3, LIST: 4, GET_MANIFEST: 5, PUT_MANIFEST: 6 };
const OP_NAMES = ['', 'read', 'write', 'delete', 'list', 'readManifest', 'writeManifest'];
/** Defaults: uploads in flight from one save, and the grace period within
 * which an unreferenced object may be a concurrent writer's (docs/STORAGE.md). */
const DEFAULT_INFLIGHT = 8;
const DEFAULT_GRACE_MS = 15 * 60 * 1000;

function isBytes(v) {
  return v instanceof Uint8Array;
}

/** A listing as the engine reads it: "<name>\0<mtime ms or ->\0" records. */
function encodeList(items) {
  if (!Array.isArray(items)) throw new TypeError('list() must resolve to an array');
  const parts = [];
  for (const it of items) {
    const name = it && typeof it === 'object' ? it.name : it;
    if (typeof name !== 'string' || name.includes('\0')) throw new TypeError('list() returned an entry without a valid name');
    const t = it && Number.isFinite(it.lastModified) ? String(Math.trunc(it.lastModified)) : '-';
    parts.push(name, '\0', t, '\0');
  }
  return Buffer.from(parts.join(''), 'utf8');
}

/** The error the engine sees: one of its codes, and words naming the call. */
function engineError(err, op) {
  const kind = classify(err);
  const code = kind === 'conflict' ? 'ERR_CONFLICT' : kind === 'access' ? 'ERR_ACCESS' : kind === 'aborted' ? 'ERR_ABORTED' : 'ERR_IO';
  let why = err && err.message ? String(err.message) : String(err);
  if (err && err.attempts > 1) why += ` (after ${err.attempts} attempts)`;
  return { code, message: `${OP_NAMES[op]}: ${why}` };
}

function sameBytes(a, b) {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

function conflict(message) {
  const err = new Error(message);
  err.code = 'ERR_CONFLICT';
  return err;
}

/**
 * writeManifest, retried safely. A failed attempt may still have landed
 * (a timeout, a reset after the store committed), and a blind retry would
 * then conflict with itself. So after a transient failure the manifest is
 * read back: our bytes there = done; the version we expected still there =
 * try again; anything else = another writer won.
 */
async function swapManifest(storage, data, expected, retry, signal) {
  const tries = (retry.retries === undefined ? 5 : retry.retries) + 1;
  for (let k = 0; ; k++) {
    try {
      return await withRetry(({ signal: s }) => Promise.resolve(storage.writeManifest(data, expected, { signal: s })), {
        ...retry,
        retries: 0,
        signal,
      });
    } catch (err) {
      const kind = classify(err);
      // A conflict after an earlier attempt failed may be that attempt
      // itself, landed late (a timed-out write still completes): read back.
      if (!(kind === 'transient' || (kind === 'conflict' && k > 0)) || (kind === 'transient' && k + 1 >= tries)) throw err;
      const now = await withRetry(({ signal: s }) => Promise.resolve(storage.readManifest({ signal: s })), { ...retry, signal });
      if (now && isBytes(now.data) && sameBytes(now.data, data)) return { version: now.version };
      if (kind === 'conflict') throw err;
      const still = expected === null ? now === null : now !== null && now.version === expected;
      if (!still) throw conflict('the manifest was replaced by another writer while this one was retrying its commit');
    }
  }
}

class Semaphore {
  constructor(n) {
    this.free = n;
    this.waiting = [];
  }
  async acquire() {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise((resolve) => this.waiting.push(resolve));
  }
  release() {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/**
 * A native storage handle over `storage`, for one save, load or inspect
 * (and the lazy reads of the database it loads or saves).
 * @param {object} storage a Storage (index.d.ts)
 * @param {{ retry?: object, maxInFlight?: number, inflight?: number, gcGraceMs?: number }} [options]
 * @returns {{ handle: unknown, state: { signal: AbortSignal | undefined }, stats: () => object }}
 */
function openNative(storage, options = {}) {
  const state = { signal: undefined };
  const retry = options.retry || {};
  const sem = new Semaphore(options.maxInFlight || 16);
  const call = (op, key, offset, length, data, expected, signal) => {
    switch (op) {
      case OP.GET:
        return storage.read(key, length < 0 ? null : { offset, length }, { signal });
      case OP.PUT:
        return storage.write(key, data, { signal });
      case OP.DELETE:
        return storage.delete(key, { signal });
      case OP.LIST:
        return storage.list(key, { signal });
      case OP.GET_MANIFEST:
        return storage.readManifest({ signal });
      default:
        throw new Error(`unknown storage request ${op}`);
    }
  };
  const dispatch = (op, key, offset, length, data, expected, done) => {
    const run = async () => {
      await sem.acquire();
      try {
        if (op === OP.PUT_MANIFEST) return await swapManifest(storage, data, expected === '' ? null : expected, retry, state.signal);
        return await withRetry(({ signal }) => Promise.resolve(call(op, key, offset, length, data, expected, signal)), {
          ...retry,
          signal: state.signal,
        });
      } finally {
        sem.release();
      }
    };
    run().then(
      (r) => {
        if (op === OP.GET) {
          if (r !== null && !isBytes(r)) throw new TypeError('read() must resolve to a Uint8Array or null');
          done(null, r, undefined);
        } else if (op === OP.LIST) {
          done(null, encodeList(r), undefined);
        } else if (op === OP.GET_MANIFEST) {
          if (r === null) return done(null, null, undefined);
          if (!r || !isBytes(r.data) || typeof r.version !== 'string')
            throw new TypeError('readManifest() must resolve to { data: Uint8Array, version: string } or null');
          done(null, r.data, r.version);
        } else if (op === OP.PUT_MANIFEST) {
          if (!r || typeof r.version !== 'string') throw new TypeError('writeManifest() must resolve to { version: string }');
          done(null, null, r.version);
        } else {
          done(null, null, undefined);
        }
      },
      (err) => done(engineError(err, op), null, undefined)
    ).catch((err) => done(engineError(err, op), null, undefined)); // a malformed answer
  };
  const label = typeof storage.description === 'string' && storage.description ? storage.description : 'storage:';
  const handle = native.openStorage(
    dispatch,
    label,
    options.inflight || DEFAULT_INFLIGHT,
    options.gcGraceMs === undefined ? DEFAULT_GRACE_MS : options.gcGraceMs
  );
  return { handle, state, stats: () => native.storageStats(handle) };
}

/** Is `v` something a session can live in other than a directory path? */
function isStorage(v) {
  return (
    v !== null &&
    typeof v === 'object' &&
    typeof v.read === 'function' &&
    typeof v.write === 'function' &&
    typeof v.delete === 'function' &&
    typeof v.list === 'function' &&
    typeof v.readManifest === 'function' &&
    typeof v.writeManifest === 'function'
  );
}

module.exports = { openNative, isStorage };
