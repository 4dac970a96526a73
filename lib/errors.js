'use strict';
// The one error class vecvault throws and rejects with. `code` is stable
// and documented in the README; messages may improve over time.

/** Every code vecvault can report: the engine's (csrc/common/status.c,
 * except those csrc/vecvault.h calls engine-internal) and the ones lib/ and
 * the binding throw themselves. test/26.errors.codes.js checks this list
 * against those files, index.d.ts's ErrorCode and the README's table. */
const ERROR_CODES = Object.freeze([
  'ERR_INVALID_ARGUMENT',
  'ERR_DIMENSION_MISMATCH',
  'ERR_INVALID_VECTOR',
  'ERR_INVALID_ID',
  'ERR_INVALID_METADATA',
  'ERR_CLOSED',
  'ERR_NOT_BUILT',
  'ERR_ABORTED',
  'ERR_NO_MEMORY',
  'ERR_CAPACITY',
  'ERR_INTERNAL',
  'ERR_KEY_REQUIRED',
  'ERR_WRONG_KEY',
  'ERR_MANIFEST_CORRUPT',
  'ERR_MANIFEST_AUTH',
  'ERR_CHUNK_MISSING',
  'ERR_CHUNK_CORRUPT',
  'ERR_METADATA_CORRUPT',
  'ERR_UNSUPPORTED_VERSION',
  'ERR_LOCKED',
  'ERR_IO',
  'ERR_NOSPC',
  'ERR_NOT_FOUND',
  'ERR_ROLLBACK',
  'ERR_NOT_A_SESSION',
  'ERR_CONFLICT',
  'ERR_ACCESS',
  'ERR_ASYNC_REQUIRED',
  'ERR_INVALID_FILTER',
  'ERR_EXPORT_CORRUPT',
  'ERR_STORAGE_TRANSIENT',
]);

class VecvaultError extends Error {
  /**
   * @param {string} message
   * @param {string} code one of ERROR_CODES
   * @param {{ cause?: unknown }} [options]
   */
  constructor(message, code, options) {
    super(message, options);
    // AbortError by name, as fetch() and timers/promises do, so generic
    // abort handling (err.name === 'AbortError') works too.
    this.name = code === 'ERR_ABORTED' ? 'AbortError' : 'VecvaultError';
    // Read-only, as index.d.ts declares; still an enumerable own property.
    Object.defineProperty(this, 'code', { value: code, enumerable: true, writable: false, configurable: false });
  }
}

function abortError(signal) {
  const reason = signal && signal.reason;
  return new VecvaultError('The operation was aborted', 'ERR_ABORTED', reason !== undefined ? { cause: reason } : undefined);
}

module.exports = { VecvaultError, ERROR_CODES, abortError };
