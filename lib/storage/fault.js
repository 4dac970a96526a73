'use strict';
/*
 * lib/storage/fault.js: FaultStorage, a Storage that wraps another, counts
 * every call and byte, and injects the failures real stores have: resets,
 * throttling, permanent and access errors, missing objects, delays, calls
 * that never settle, torn reads and writes, and crashes before or after the
 * call took effect, and bit rot (a byte inverted on the way in or out).
 *
 * A plan is a function `faults(call)` that sees every call
 * `{ op, name, range, n, nOp }` (n: index among all calls, nOp: among calls
 * of that op, both from 0) and returns undefined (no fault) or
 * `{ kind, ... }`. The static helpers build the common plans. `faults` is a
 * public property: a test may change the plan between steps.
 */
const { VecvaultError } = require('../errors');
const c = require('./common');

const OPS = ['read', 'write', 'delete', 'list', 'readManifest', 'writeManifest'];
const KINDS = new Set(['transient', 'throttle', 'permanent', 'access', 'conflict', 'notfound', 'delay', 'hang', 'truncate', 'corrupt', 'crash']);

function transientFault(call, fault) {
  if (fault.s3) {
    // What @aws-sdk/client-s3 rejects with on a 503 SlowDown.
    const err = new Error(`injected fault: ${call.op} ${call.name}: Please reduce your request rate.`);
    err.name = 'SlowDown';
    err.Code = 'SlowDown';
    err.$metadata = { httpStatusCode: 503 };
    return err;
  }
  const err = new Error(`injected fault: ${call.op} ${call.name}: socket hang up`);
  err.code = fault.code || 'ECONNRESET';
  return err;
}

function faultError(call, fault) {
  const where = `${call.op} ${call.name}`;
  switch (fault.kind) {
    case 'transient':
      return transientFault(call, fault);
    case 'throttle': {
      const err = new Error(`injected fault: ${where}: too many requests`);
      err.name = 'ThrottlingException';
      err.statusCode = 429;
      err.$metadata = { httpStatusCode: 429 };
      return err;
    }
    case 'access':
      return new VecvaultError(`injected fault: ${where}: access denied`, 'ERR_ACCESS');
    case 'conflict':
      return new VecvaultError(`injected fault: ${where}: manifest changed concurrently`, 'ERR_CONFLICT');
    case 'crash':
      return new Error(`injected fault: ${where}: crashed ${fault.after === 'after' ? 'after' : 'before'} the call`);
    default:
      return new Error(`injected fault: ${where}: permanent failure`);
  }
}

/* Faults that let the call go through (and act on its bytes, or just wait). */
const PASS_THROUGH = new Set(['delay', 'truncate', 'corrupt']);

/* The bytes a truncate or corrupt fault lets through: the leading `bytes`,
 * or a copy with the byte at `at` (default: the middle) inverted. Never
 * changes the caller's or the store's buffer. */
function shape(bytes, fault) {
  if (!bytes || !fault) return bytes;
  if (fault.kind === 'truncate') return bytes.length > fault.bytes ? bytes.subarray(0, fault.bytes) : bytes;
  if (fault.kind === 'corrupt' && bytes.length > 0) {
    const out = new Uint8Array(bytes);
    const at = fault.at === undefined ? bytes.length >> 1 : Math.min(fault.at, bytes.length - 1);
    out[at] ^= 0xff;
    return out;
  }
  return bytes;
}

/* What a 'notfound' fault answers for each op, without calling the store. */
const NOT_FOUND = { read: null, readManifest: null, list: [], delete: undefined };

function checkFault(fault, call) {
  if (fault === undefined || fault === null) return null;
  if (typeof fault !== 'object' || !KINDS.has(fault.kind)) {
    throw c.invalid(`FaultStorage: the plan returned an unknown fault ${JSON.stringify(fault)} (kinds: ${[...KINDS].join(', ')})`);
  }
  if (fault.kind === 'notfound' && !(call.op in NOT_FOUND)) throw c.invalid(`FaultStorage: a notfound fault does not apply to ${call.op}`);
  if (fault.kind === 'truncate' && !(Number.isSafeInteger(fault.bytes) && fault.bytes >= 0)) throw c.invalid('FaultStorage: truncate needs { bytes: a non-negative integer }');
  if (fault.kind === 'corrupt' && fault.at !== undefined && !(Number.isSafeInteger(fault.at) && fault.at >= 0)) throw c.invalid('FaultStorage: corrupt takes { at: a non-negative byte index }');
  if (fault.kind === 'delay' && !(typeof fault.ms === 'number' && fault.ms >= 0)) throw c.invalid('FaultStorage: delay needs { ms: a non-negative number }');
  return fault;
}

class FaultStorage {
  #inner;
  #n = 0;
  #nOp = Object.fromEntries(OPS.map((op) => [op, 0]));

  /**
   * @param {object} inner any Storage
   * @param {{ faults?: (call: object) => (undefined | { kind: string }) }} [options]
   */
  constructor(inner, { faults } = {}) {
    if (inner === null || typeof inner !== 'object') throw c.invalid('FaultStorage: inner must be a Storage');
    for (const op of OPS) if (typeof inner[op] !== 'function') throw c.invalid(`FaultStorage: inner has no ${op}() method`);
    if (faults !== undefined && faults !== null && typeof faults !== 'function') throw c.invalid('FaultStorage: faults must be a function');
    this.#inner = inner;
    this.faults = faults || null;
    this.counts = { read: 0, readBytes: 0, write: 0, writeBytes: 0, delete: 0, list: 0, readManifest: 0, writeManifest: 0 };
    this.log = [];
  }

  get inner() {
    return this.#inner;
  }

  get description() {
    return `fault:${this.#inner.description || 'storage'}`;
  }

  get conditionalWrites() {
    return this.#inner.conditionalWrites !== false;
  }

  /** How many calls were made so far, of every op: the next call's `n`.
   * Run a scenario once without faults to learn how many steps it has,
   * then fail each in turn with failNth('*', n, kind). */
  get calls() {
    return this.#n;
  }

  /** Sets every count to 0 and empties the log; call indexes go on. */
  resetCounts() {
    for (const k of Object.keys(this.counts)) this.counts[k] = 0;
    this.log.length = 0;
  }

  /*
   * One call: count and log it, ask the plan, then either answer with the
   * fault or run `perform(options, shape)` on the inner store, where
   * shape(bytes) is what a truncate or corrupt fault makes of the bytes
   * going in or out (the identity otherwise).
   */
  async #call(op, name, range, options, perform) {
    const call = { op, name, range: range || null, n: this.#n++, nOp: this.#nOp[op]++ };
    this.counts[op]++;
    this.log.push({ op, name, range: call.range });
    const signal = c.signalOf(options);
    c.throwIfAborted(signal);
    const fault = checkFault(this.faults ? this.faults(call) : undefined, call);
    const kind = fault && fault.kind;
    if (kind === 'delay') await c.sleep(fault.ms, signal);
    if (kind === 'hang') await c.untilAborted(signal);
    if (kind === 'notfound') return NOT_FOUND[op];
    if (fault && !PASS_THROUGH.has(kind) && !(kind === 'crash' && fault.after === 'after')) {
      throw faultError(call, fault);
    }
    const result = await perform(signal ? { signal } : undefined, (bytes) => shape(bytes, fault));
    if (kind === 'crash') throw faultError(call, fault);
    return result;
  }

  async read(name, range, options) {
    return this.#call('read', name, range, options, async (opts, shaped) => {
      const out = shaped(await this.#inner.read(name, range, opts));
      if (out) this.counts.readBytes += out.length;
      return out;
    });
  }

  async write(name, data, options) {
    c.checkData(data);
    return this.#call('write', name, null, options, async (opts, shaped) => {
      const stored = shaped(data);
      await this.#inner.write(name, stored, opts);
      this.counts.writeBytes += stored.length;
    });
  }

  async delete(name, options) {
    return this.#call('delete', name, null, options, (opts) => this.#inner.delete(name, opts));
  }

  async list(prefix, options) {
    return this.#call('list', prefix, null, options, (opts) => this.#inner.list(prefix, opts));
  }

  async readManifest(options) {
    return this.#call('readManifest', 'manifest.json', null, options, async (opts, shaped) => {
      const m = await this.#inner.readManifest(opts);
      return m && { data: shaped(m.data), version: m.version };
    });
  }

  async writeManifest(data, expectedVersion, options) {
    c.checkData(data);
    return this.#call('writeManifest', 'manifest.json', null, options, (opts, shaped) =>
      this.#inner.writeManifest(shaped(data), expectedVersion, opts),
    );
  }

  /* ------------------------------------------------------------ plans */

  /** The call with index `n` among calls of `op` ('*': among all calls) fails with `kind`. */
  static failNth(op, n, kind, extra = {}) {
    return (call) => ((op === '*' ? call.n : call.op === op ? call.nOp : -1) === n ? { kind, ...extra } : undefined);
  }

  /** The first `count` calls of `op` ('*': any op) fail with `kind`. */
  static failFirst(op, count, kind, extra = {}) {
    return (call) => ((op === '*' ? call.n : call.op === op ? call.nOp : Infinity) < count ? { kind, ...extra } : undefined);
  }

  /** Every call of `op` ('*': any op) fails with `kind`. */
  static failAll(op, kind, extra = {}) {
    return (call) => (op === '*' || call.op === op ? { kind, ...extra } : undefined);
  }

  /** The calls whose name matches `test` (a RegExp or a predicate) fail with `kind`. */
  static failNamed(test, kind, extra = {}) {
    const match = typeof test === 'function' ? test : (name) => test.test(name);
    return (call) => (match(call.name) ? { kind, ...extra } : undefined);
  }

  /**
   * Each call of `ops` fails with probability `rate`, with a kind drawn from
   * `kinds` (names or fault objects), using `random` (() => [0, 1)): give it
   * a seeded generator and the same calls get the same faults on every run.
   */
  static randomly({ random, rate = 0.1, kinds = ['transient'], ops = OPS } = {}) {
    if (typeof random !== 'function') throw c.invalid('FaultStorage.randomly: random must be a function returning [0, 1)');
    return (call) => {
      if (!ops.includes(call.op) || random() >= rate) return undefined;
      const k = kinds[Math.floor(random() * kinds.length)];
      return typeof k === 'string' ? { kind: k } : k;
    };
  }

  /** The first plan that returns a fault for a call decides it. */
  static combine(...plans) {
    return (call) => {
      for (const plan of plans) {
        const f = plan && plan(call);
        if (f) return f;
      }
      return undefined;
    };
  }
}

FaultStorage.OPS = Object.freeze(OPS.slice());
FaultStorage.KINDS = Object.freeze([...KINDS]);

module.exports = { FaultStorage };
