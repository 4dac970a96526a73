'use strict';
/*
 * lib/storage/retry.js: which storage errors are worth another attempt, and
 * the loop that makes those attempts.
 *
 * classify() is the one place that decides (the rules are those of the
 * Storage interface in docs/STORAGE.md). withRetry() runs an operation with
 * a per-attempt timeout and capped exponential backoff with full jitter;
 * only transient failures are retried, and an abort ends it at once.
 */
const { VecvaultError, abortError } = require('../errors');
const c = require('./common');

const TRANSIENT_CODES = new Set(['ETIMEDOUT', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'EAI_AGAIN', 'ERR_STORAGE_TRANSIENT']);
const TRANSIENT_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
]);
const ACCESS_NAMES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
]);

function httpStatus(err) {
  const s = (err.$metadata && err.$metadata.httpStatusCode) || err.statusCode;
  return typeof s === 'number' ? s : 0;
}

/* The S3 error name: the SDK sets both `name` and `Code`. */
function namesOf(err) {
  return [err.name, err.Code].filter((n) => typeof n === 'string');
}

function classifyOne(err) {
  if (err === null || typeof err !== 'object') return 'permanent';
  const names = namesOf(err);
  const status = httpStatus(err);
  if (err.code === 'ERR_CONFLICT') return 'conflict';
  if (err.code === 'ERR_ACCESS' || status === 401 || status === 403 || names.some((n) => ACCESS_NAMES.has(n))) return 'access';
  if (names.includes('AbortError') || err.code === 'ERR_ABORTED' || err.code === 'ABORT_ERR') return 'aborted';
  if (err.retryable === true || TRANSIENT_CODES.has(err.code)) return 'transient';
  if (status === 429 || (status >= 500 && status <= 599)) return 'transient';
  if (names.some((n) => TRANSIENT_NAMES.has(n))) return 'transient';
  return 'permanent';
}

/**
 * 'conflict' | 'access' | 'aborted' | 'transient' | 'permanent'.
 * An error that is permanent by itself but wraps a `cause` takes the class
 * of its cause (a few levels deep): `fetch()` reports a reset connection as
 * a TypeError whose cause has code ECONNRESET.
 */
function classify(err) {
  let e = err;
  for (let depth = 0; depth < 4; depth++) {
    const kind = classifyOne(e);
    if (kind !== 'permanent' || e === null || typeof e !== 'object' || e.cause === undefined) return kind;
    e = e.cause;
  }
  return 'permanent';
}

function timeoutError(ms) {
  const err = new Error(`storage call did not settle within ${ms} ms`);
  err.name = 'TimeoutError';
  err.code = 'ETIMEDOUT';
  err.retryable = true;
  return err;
}

/* One attempt: fn({ signal }) where that signal fires when the caller's
 * does or the attempt times out. The returned promise settles on the first
 * of: fn settling, the timeout, the caller's abort; what fn does later is
 * ignored. */
function attempt(fn, signal, timeoutMs) {
  return new Promise((resolve, reject) => {
    const ac = new AbortController();
    let done = false;
    let timer = null;
    const finish = (settle, value) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', onAbort);
      settle(value);
    };
    const onAbort = () => {
      finish(reject, abortError(signal));
      ac.abort(signal.reason);
    };
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    if (Number.isFinite(timeoutMs)) {
      timer = setTimeout(() => {
        const err = timeoutError(timeoutMs);
        finish(reject, err);
        ac.abort(err);
      }, Math.min(timeoutMs, 2 ** 31 - 1));
    }
    let p;
    try {
      p = Promise.resolve(fn({ signal: ac.signal }));
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then((v) => finish(resolve, v), (e) => finish(reject, e));
  });
}

function markAttempts(err, n) {
  if (err !== null && typeof err === 'object' && Object.isExtensible(err)) {
    try {
      err.attempts = n;
    } catch {
      /* a getter-only or frozen property: the count is lost, the error is not */
    }
  }
  return err;
}

function nonNegative(v, name, allowInfinity) {
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0 || (!allowInfinity && !Number.isFinite(v))) {
    throw c.invalid(`${name} must be a non-negative number`);
  }
  return v;
}

/**
 * Runs `fn({ signal })` until it succeeds, fails with an error that is not
 * transient, or has failed transiently `retries + 1` times. The error thrown
 * at the end carries `attempts`. Before attempt k+1 it waits
 * `random() * min(capMs, baseMs * 2**k)` ms (full jitter; k from 0), and
 * calls `onRetry({ attempt: k + 1, delayMs, error })` first.
 *
 * @param {(o: { signal: AbortSignal }) => Promise<any>} fn
 * @param {{ retries?: number, baseMs?: number, capMs?: number, timeoutMs?: number,
 *           signal?: AbortSignal, random?: () => number,
 *           sleep?: (ms: number, signal?: AbortSignal) => Promise<void>,
 *           onRetry?: (info: { attempt: number, delayMs: number, error: unknown }) => void }} [options]
 */
async function withRetry(fn, options = {}) {
  if (typeof fn !== 'function') throw c.invalid('withRetry: fn must be a function');
  const { retries = 5, baseMs = 100, capMs = 5000, timeoutMs = 30000, random = Math.random, sleep = c.sleep, onRetry } = options;
  const signal = c.signalOf(options);
  if (!Number.isSafeInteger(retries) || retries < 0) throw c.invalid('withRetry: retries must be a non-negative integer');
  nonNegative(baseMs, 'withRetry: baseMs', false);
  nonNegative(capMs, 'withRetry: capMs', false);
  if (!(nonNegative(timeoutMs, 'withRetry: timeoutMs', true) > 0)) throw c.invalid('withRetry: timeoutMs must be above 0');
  if (typeof random !== 'function' || typeof sleep !== 'function') throw c.invalid('withRetry: random and sleep must be functions');
  if (onRetry !== undefined && typeof onRetry !== 'function') throw c.invalid('withRetry: onRetry must be a function');

  for (let k = 0; ; k++) {
    c.throwIfAborted(signal);
    let error;
    try {
      return await attempt(fn, signal, timeoutMs);
    } catch (err) {
      error = err;
    }
    if (signal && signal.aborted) throw abortError(signal);
    if (classify(error) !== 'transient' || k >= retries) throw markAttempts(error, k + 1);
    const delayMs = random() * Math.min(capMs, baseMs * 2 ** k);
    if (onRetry) onRetry({ attempt: k + 1, delayMs, error });
    await sleep(delayMs, signal || undefined);
  }
}

/* A transient error a Storage can throw when nothing more specific fits
 * (e.g. a body that broke off); classify() retries it. */
function transientError(message, cause) {
  const err = new VecvaultError(message, 'ERR_STORAGE_TRANSIENT', cause !== undefined ? { cause } : undefined);
  err.retryable = true;
  return err;
}

module.exports = { classify, withRetry, transientError };
