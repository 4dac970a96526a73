'use strict';
/*
 * lib/storage/lease.js: withLease(), mutual exclusion of writers on a store
 * that cannot enforce writeManifest's precondition (conditionalWrites ===
 * false), through a `lease` object `{ owner, expires }`.
 *
 * LIMITS — a lease is advisory and weaker than a compare-and-swap:
 * - Taking it is check, write, read back. Two writers that both find no live
 *   lease and write within one round trip of each other can both read back
 *   their own lease (a store that is not read-after-write consistent makes
 *   the window wider). The read back catches only the writer that lost by
 *   more than that.
 * - A writer stalled longer than the TTL (a paused process, a long GC, a
 *   partition) has lost exclusivity without knowing it until its next
 *   renewal: another writer may take the expired lease and both may write.
 *   Renewal notices this and aborts fn's signal, but what fn already wrote
 *   stays written.
 * - `expires` is wall-clock time of the writer's host: hosts whose clocks
 *   differ by a large part of the TTL see leases expire early or late.
 * Use a store with conditional writes where exclusivity matters.
 */
const crypto = require('node:crypto');
const { VecvaultError } = require('../errors');
const c = require('./common');
const { withRetry } = require('./retry');

const LEASE = 'lease';
const warned = new WeakSet();

function warnOnce(storage) {
  if (warned.has(storage)) return;
  warned.add(storage);
  const where = storage.description ? ` (${storage.description})` : '';
  process.emitWarning(
    `vecvault: the storage${where} cannot enforce conditional writes; saves take a lease object instead, ` +
      'which does not fully protect against concurrent writers (see docs/STORAGE.md)',
    { code: 'VECVAULT_NO_CONDITIONAL_WRITES' },
  );
}

/* Every lease call is retried when it fails transiently and times out when
 * it hangs (withRetry), like the engine's own calls to the store. */
function retried(retry, signal, call) {
  return withRetry(({ signal: s }) => call(s), { ...retry, signal: signal || undefined });
}

/* The lease in the store: { owner, expires } or null (absent, torn or not ours to parse). */
async function readLease(storage, retry, signal) {
  const bytes = await retried(retry, signal, (s) => storage.read(LEASE, null, { signal: s }));
  if (!bytes) return null;
  try {
    const v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    return v && typeof v.owner === 'string' && typeof v.expires === 'number' ? v : null;
  } catch {
    return null; // a torn lease from a crashed writer: no lease
  }
}

function writeLease(storage, retry, owner, expires, signal) {
  const data = new Uint8Array(Buffer.from(JSON.stringify({ owner, expires })));
  return retried(retry, signal, (s) => storage.write(LEASE, data, { signal: s }));
}

/* Deletes the lease if it is still `owner`'s. Never throws: a lease left
 * behind expires by itself, and failing a finished job over it would be worse. */
async function release(storage, retry, owner) {
  try {
    const seen = await readLease(storage, retry, null);
    if (seen && seen.owner === owner) await retried(retry, null, (s) => storage.delete(LEASE, { signal: s }));
  } catch {
    /* see above */
  }
}

function lockedError(storage, lease) {
  const where = storage.description || 'storage';
  return new VecvaultError(
    `${where}: another writer holds the lease until ${new Date(lease.expires).toISOString()} (owner ${lease.owner})`,
    'ERR_LOCKED',
  );
}

/**
 * Runs `fn({ signal })` while holding the storage's lease, renewing it every
 * ttlMs / 3, and deletes the lease afterwards. Rejects with ERR_LOCKED if
 * another owner holds a live lease, or if the lease is lost while fn runs
 * (then fn's signal is aborted first).
 *
 * @template T
 * @param {object} storage a Storage
 * @param {(o: { signal: AbortSignal }) => Promise<T>} fn
 * @param {{ ttlMs?: number, signal?: AbortSignal, now?: () => number,
 *           retry?: { retries?: number, baseMs?: number, capMs?: number, timeoutMs?: number } }} [options]
 *   retry: withRetry's options for the lease's own storage calls.
 * @returns {Promise<T>}
 */
async function withLease(storage, fn, options = {}) {
  if (storage === null || typeof storage !== 'object') throw c.invalid('withLease: storage must be a Storage');
  if (typeof fn !== 'function') throw c.invalid('withLease: fn must be a function');
  const { ttlMs = 60000, now = Date.now, retry = {} } = options;
  if (retry === null || typeof retry !== 'object') throw c.invalid('withLease: retry must be an object of withRetry options');
  const signal = c.signalOf(options);
  if (typeof ttlMs !== 'number' || !(ttlMs >= 3) || !Number.isFinite(ttlMs)) throw c.invalid('withLease: ttlMs must be a finite number of at least 3');
  if (storage.conditionalWrites === false) warnOnce(storage);
  c.throwIfAborted(signal);

  const owner = crypto.randomBytes(16).toString('hex');
  const current = await readLease(storage, retry, signal);
  if (current && current.owner !== owner && current.expires > now()) throw lockedError(storage, current);
  let expires = now() + ttlMs;
  try {
    await writeLease(storage, retry, owner, expires, signal);
    const back = await readLease(storage, retry, signal);
    if (!back || back.owner !== owner) throw lockedError(storage, back || { owner: 'unknown', expires: now() });
  } catch (err) {
    await release(storage, retry, owner); // an abort after our write must not leave our lease for a TTL
    throw err;
  }

  // fn's signal: the caller's abort, or the loss of the lease.
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal.reason);
  if (signal) signal.addEventListener('abort', onAbort, { once: true });
  let lost = null;
  let timer = null;
  let renewing = Promise.resolve();
  let stopped = false;

  const renew = async () => {
    try {
      const seen = await readLease(storage, retry, ac.signal);
      if (seen && seen.owner !== owner) {
        lost = lockedError(storage, seen);
      } else {
        const next = now() + ttlMs;
        await writeLease(storage, retry, owner, next, ac.signal);
        expires = next;
      }
    } catch {
      // A failed renewal is retried next time; the lease is lost only once it expires.
      if (now() >= expires && !ac.signal.aborted) lost = new VecvaultError(`${storage.description || 'storage'}: the lease expired: it could not be renewed`, 'ERR_LOCKED');
    }
    if (lost) ac.abort(lost);
    else schedule();
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      renewing = renew();
    }, ttlMs / 3);
    if (typeof timer.unref === 'function') timer.unref();
  };
  schedule();

  let result;
  let failure = null;
  try {
    result = await fn({ signal: ac.signal });
  } catch (err) {
    failure = err;
  }
  stopped = true;
  clearTimeout(timer);
  if (signal) signal.removeEventListener('abort', onAbort);
  await renewing; // never delete the lease while a renewal could still rewrite it
  if (lost) throw lost;
  await release(storage, retry, owner);
  if (failure) throw failure;
  return result;
}

module.exports = { withLease, LEASE };
