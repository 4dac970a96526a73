'use strict';
/*
 * lib/storage/common.js: what every built-in Storage shares — checks of the
 * arguments of the interface's methods (typed errors, never a crash), the
 * abort check, and an abortable sleep.
 *
 * The interface itself is documented in docs/STORAGE.md and index.d.ts.
 */
const { VecvaultError, abortError } = require('../errors');

function invalid(message) {
  return new VecvaultError(message, 'ERR_INVALID_ARGUMENT');
}

/* Object names are keys relative to the storage's root: non-empty, no
 * leading '/', no NUL, at most 1024 bytes (S3's key limit, minus nothing:
 * a prefix is checked separately by the stores that add one). */
function checkName(name) {
  if (typeof name !== 'string' || name.length === 0) throw invalid('storage object name must be a non-empty string');
  if (name.startsWith('/') || name.includes('\0')) throw invalid(`storage object name must not start with "/" or contain NUL: ${JSON.stringify(name)}`);
  if (Buffer.byteLength(name) > 1024) throw invalid('storage object name is longer than 1024 bytes');
  return name;
}

function checkPrefix(prefix) {
  if (typeof prefix !== 'string') throw invalid('list prefix must be a string');
  return prefix;
}

/* null/undefined (the whole object) or { offset, length } of non-negative safe integers. */
function checkRange(range) {
  if (range === undefined || range === null) return null;
  if (typeof range !== 'object') throw invalid('range must be null or { offset, length }');
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0) throw invalid('range.offset must be a non-negative integer');
  if (!Number.isSafeInteger(length) || length < 0) throw invalid('range.length must be a non-negative integer');
  return { offset, length };
}

function checkData(data, what = 'data') {
  if (!(data instanceof Uint8Array)) throw invalid(`${what} must be a Uint8Array`);
  return data;
}

function checkExpectedVersion(v) {
  if (v !== null && (typeof v !== 'string' || v.length === 0)) throw invalid('expectedVersion must be null or a non-empty string');
  return v;
}

/* The signal in a method's last `options` argument, or null. */
function signalOf(options) {
  if (options === undefined || options === null) return null;
  if (typeof options !== 'object') throw invalid('storage options must be an object');
  const { signal } = options;
  if (signal === undefined || signal === null) return null;
  if (!(signal instanceof AbortSignal)) throw invalid('signal must be an AbortSignal');
  return signal;
}

function throwIfAborted(signal) {
  if (signal && signal.aborted) throw abortError(signal);
}

/* Resolves after `ms`, or rejects with an AbortError as soon as `signal`
 * fires; the timer never outlives an abort. */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      if (signal) signal.removeEventListener('abort', onAbort);
      resolve();
    }, Math.min(Math.max(0, ms), 2 ** 31 - 1));
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
  });
}

/* A promise that settles only when `signal` aborts (never, without one). */
function untilAborted(signal) {
  return new Promise((resolve, reject) => {
    if (!signal) return;
    if (signal.aborted) return reject(abortError(signal));
    signal.addEventListener('abort', () => reject(abortError(signal)), { once: true });
  });
}

module.exports = {
  invalid,
  checkName,
  checkPrefix,
  checkRange,
  checkData,
  checkExpectedVersion,
  signalOf,
  throwIfAborted,
  sleep,
  untilAborted,
};
