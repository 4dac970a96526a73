'use strict';
/*
 * lib/storage/s3.js: S3Storage, the Storage interface on Amazon S3 or any
 * S3-compatible store (MinIO, Ceph RGW, R2), through the caller's
 * @aws-sdk/client-s3 v3 S3Client.
 *
 * The SDK is an optional peer dependency, required when an S3Storage is
 * made. Credentials are the client's business: nothing here reads the
 * environment or puts a credential in a message.
 *
 * Objects are keys under `prefix`. The manifest is `<prefix>manifest.json`,
 * its version the ETag; writeManifest is a conditional PUT (If-Match on the
 * last ETag, If-None-Match: * for the first), which S3 has enforced since
 * 2024. For stores that ignore those headers, pass conditionalWrites: false
 * (then saves take a lease, see lease.js, and writeManifest only compares
 * the ETag just before the PUT, which narrows the race but cannot close it).
 */
const { VecvaultError, abortError } = require('../errors');
const c = require('./common');
const { transientError } = require('./retry');

const MANIFEST = 'manifest.json';
const ACCESS_NAMES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled']);

function loadSdk() {
  try {
    return require('@aws-sdk/client-s3');
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') {
      throw new VecvaultError('S3Storage needs the AWS SDK v3 S3 client: npm install @aws-sdk/client-s3', 'ERR_INVALID_ARGUMENT', { cause: err });
    }
    throw err;
  }
}

function statusOf(err) {
  return (err && err.$metadata && err.$metadata.httpStatusCode) || 0;
}

function isNamed(err, ...names) {
  return !!err && (names.includes(err.name) || names.includes(err.Code));
}

/* A missing object, not a missing bucket: that is a permanent error. */
const isNotFound = (err) => !isNamed(err, 'NoSuchBucket') && (statusOf(err) === 404 || isNamed(err, 'NoSuchKey', 'NotFound'));
const isInvalidRange = (err) => statusOf(err) === 416 || isNamed(err, 'InvalidRange');

/* Bucket names as S3-compatible stores accept them (S3's own rules are
 * stricter; the store will say so): no '/', nothing that would change the
 * request's path. */
function checkBucket(bucket) {
  if (typeof bucket !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/.test(bucket)) {
    throw c.invalid(`S3Storage: bucket must be a bucket name (letters, digits, '.', '_', '-'; 2 to 255 characters), got ${JSON.stringify(String(bucket))}`);
  }
  return bucket;
}

function checkKeyPrefix(prefix) {
  if (typeof prefix !== 'string') throw c.invalid('S3Storage: prefix must be a string');
  if (prefix !== '' && (!prefix.endsWith('/') || prefix.startsWith('/') || prefix.includes('//') || prefix.includes('\0'))) {
    throw c.invalid(`S3Storage: prefix must be '' or end in '/', without a leading '/' or an empty segment, got ${JSON.stringify(prefix)}`);
  }
  if (Buffer.byteLength(prefix) > 512) throw c.invalid('S3Storage: prefix is longer than 512 bytes');
  return prefix;
}

/*
 * The response body as one Uint8Array. With a Content-Length, a body that
 * ends short (or runs long) is an error, transient: the transfer broke off.
 * An abort destroys the stream and rejects with an AbortError.
 */
async function readBody(body, contentLength, signal, what) {
  if (body === undefined || body === null) {
    if (!contentLength) return new Uint8Array(0);
    throw transientError(`${what}: the response has no body, ${contentLength} bytes expected`);
  }
  if (body instanceof Uint8Array) return body.slice();
  if (contentLength === 0) {
    // Nothing to read; some servers close such a response without an end.
    if (typeof body.destroy === 'function') body.destroy();
    return new Uint8Array(0);
  }
  if (typeof body[Symbol.asyncIterator] !== 'function') {
    if (typeof body.transformToByteArray === 'function') return new Uint8Array(await body.transformToByteArray());
    throw new Error(`${what}: the S3 client returned a body of an unknown kind`);
  }
  const expected = typeof contentLength === 'number' && contentLength >= 0 ? contentLength : -1;
  const chunks = [];
  let total = 0;
  const destroy = () => typeof body.destroy === 'function' && body.destroy();
  if (signal && signal.aborted) {
    destroy();
    throw abortError(signal);
  }
  const onAbort = () => destroy();
  if (signal) signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of body) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      total += bytes.length;
      if (expected >= 0 && total > expected) throw transientError(`${what}: the body is longer than its Content-Length ${expected}`);
      chunks.push(bytes);
    }
  } catch (err) {
    destroy();
    if (signal && signal.aborted) throw abortError(signal);
    if (err && err.code === 'ERR_STORAGE_TRANSIENT') throw err;
    throw transientError(`${what}: the transfer broke off after ${total} bytes: ${err && err.message}`, err);
  } finally {
    if (signal) signal.removeEventListener('abort', onAbort);
  }
  if (signal && signal.aborted) throw abortError(signal);
  if (expected >= 0 && total < expected) throw transientError(`${what}: the transfer broke off after ${total} of ${expected} bytes`);
  const out = new Uint8Array(total);
  let at = 0;
  for (const b of chunks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

class S3Storage {
  #sdk;
  #client;
  #bucket;
  #prefix;
  #conditional;

  /**
   * @param {{ client: import('@aws-sdk/client-s3').S3Client, bucket: string, prefix?: string, conditionalWrites?: boolean }} options
   */
  constructor(options) {
    if (options === null || typeof options !== 'object') throw c.invalid('S3Storage: options must be an object { client, bucket, prefix?, conditionalWrites? }');
    const { client, bucket, prefix = '', conditionalWrites = true } = options;
    this.#sdk = loadSdk();
    if (client === null || typeof client !== 'object' || typeof client.send !== 'function') {
      throw c.invalid('S3Storage: client must be an S3Client from @aws-sdk/client-s3');
    }
    if (typeof conditionalWrites !== 'boolean') throw c.invalid('S3Storage: conditionalWrites must be a boolean');
    this.#client = client;
    this.#bucket = checkBucket(bucket);
    this.#prefix = checkKeyPrefix(prefix);
    this.#conditional = conditionalWrites;
  }

  get description() {
    return `s3://${this.#bucket}/${this.#prefix}`;
  }

  get conditionalWrites() {
    return this.#conditional;
  }

  get bucket() {
    return this.#bucket;
  }

  get prefix() {
    return this.#prefix;
  }

  #key(name) {
    return this.#prefix + name;
  }

  /* client.send with the signal; an abort or a refusal becomes a typed error. */
  async #send(command, signal, what) {
    c.throwIfAborted(signal);
    try {
      return await this.#client.send(command, signal ? { abortSignal: signal } : undefined);
    } catch (err) {
      if (signal && signal.aborted) throw abortError(signal);
      if (statusOf(err) === 403 || isNamed(err, ...ACCESS_NAMES)) {
        throw new VecvaultError(`${this.description}: ${what}: access denied (${err.name || 'HTTP 403'})`, 'ERR_ACCESS', { cause: err });
      }
      throw err;
    }
  }

  async #get(name, range, signal) {
    const input = { Bucket: this.#bucket, Key: this.#key(name) };
    if (range) input.Range = `bytes=${range.offset}-${range.offset + range.length - 1}`;
    const what = `read ${name}`;
    let res;
    try {
      res = await this.#send(new this.#sdk.GetObjectCommand(input), signal, what);
    } catch (err) {
      if (isNotFound(err)) return null;
      if (range && isInvalidRange(err)) return { data: new Uint8Array(0), etag: undefined };
      throw err;
    }
    if (range && /\/0$/.test(res.ContentRange || '')) {
      // An empty object: nothing in any range (s3rver answers 206 with a
      // Content-Length of 1 here, where S3 answers 416).
      if (res.Body && typeof res.Body.destroy === 'function') res.Body.destroy();
      return { data: new Uint8Array(0), etag: res.ETag };
    }
    const data = await readBody(res.Body, res.ContentLength, signal, `${this.description}${name}`);
    return { data: range ? this.#inRange(data, range, res.ContentRange, name) : data, etag: res.ETag };
  }

  /* The requested bytes of a ranged GET's body. A server that ignores Range
   * answers with the whole object (no Content-Range); one that sends more
   * than asked (s3rver reads "bytes=0-0" as "bytes=0-") is cut down. */
  #inRange(data, range, contentRange, name) {
    if (!contentRange) return data.slice(Math.min(range.offset, data.length), range.offset + range.length);
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange);
    if (!m || Number(m[1]) !== range.offset || Number(m[2]) - Number(m[1]) + 1 !== data.length) {
      throw new Error(`${this.description}${name}: asked for ${range.length} bytes from ${range.offset}, got Content-Range ${contentRange} and ${data.length} bytes`);
    }
    return data.length > range.length ? data.slice(0, range.length) : data;
  }

  async read(name, range, options) {
    c.checkName(name);
    const r = c.checkRange(range);
    const signal = c.signalOf(options);
    if (r && r.length === 0) {
      // No HTTP range is empty; only whether the object exists matters.
      try {
        await this.#send(new this.#sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(name) }), signal, `read ${name}`);
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
      return new Uint8Array(0);
    }
    const got = await this.#get(name, r, signal);
    return got ? got.data : null;
  }

  async write(name, data, options) {
    c.checkName(name);
    c.checkData(data);
    const signal = c.signalOf(options);
    const input = { Bucket: this.#bucket, Key: this.#key(name), Body: data, ContentLength: data.length };
    await this.#send(new this.#sdk.PutObjectCommand(input), signal, `write ${name}`);
  }

  async delete(name, options) {
    c.checkName(name);
    const signal = c.signalOf(options);
    try {
      await this.#send(new this.#sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(name) }), signal, `delete ${name}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async list(prefix, options) {
    c.checkPrefix(prefix);
    const signal = c.signalOf(options);
    const full = this.#prefix + prefix;
    const out = [];
    const seen = new Set();
    let token;
    do {
      const input = { Bucket: this.#bucket, Prefix: full };
      if (token) input.ContinuationToken = token;
      const res = await this.#send(new this.#sdk.ListObjectsV2Command(input), signal, `list ${prefix}`);
      for (const o of res.Contents || []) {
        if (typeof o.Key !== 'string' || !o.Key.startsWith(full)) throw new Error(`${this.description}: list ${prefix}: the store returned key ${JSON.stringify(o.Key)} outside the prefix`);
        const info = { name: o.Key.slice(this.#prefix.length), size: Number(o.Size) || 0 };
        if (o.LastModified instanceof Date) info.lastModified = o.LastModified.getTime();
        out.push(info);
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
      if (res.IsTruncated && (!token || seen.has(token))) {
        throw new Error(`${this.description}: list ${prefix}: the store sent a truncated listing without a new continuation token`);
      }
      seen.add(token);
    } while (token);
    return out;
  }

  async readManifest(options) {
    const signal = c.signalOf(options);
    const got = await this.#get(MANIFEST, null, signal);
    if (!got) return null;
    if (typeof got.etag !== 'string' || got.etag === '') throw new Error(`${this.description}${MANIFEST}: the store sent no ETag`);
    return { data: got.data, version: got.etag };
  }

  async writeManifest(data, expectedVersion, options) {
    c.checkData(data);
    c.checkExpectedVersion(expectedVersion);
    const signal = c.signalOf(options);
    const input = { Bucket: this.#bucket, Key: this.#key(MANIFEST), Body: data, ContentLength: data.length };
    if (this.#conditional) {
      if (expectedVersion === null) input.IfNoneMatch = '*';
      else input.IfMatch = expectedVersion;
    } else {
      await this.#compareBeforePut(expectedVersion, signal);
    }
    let res;
    try {
      res = await this.#send(new this.#sdk.PutObjectCommand(input), signal, `write ${MANIFEST}`);
    } catch (err) {
      if (statusOf(err) === 412 || statusOf(err) === 409 || isNamed(err, 'PreconditionFailed', 'ConditionalRequestConflict')) {
        throw this.#conflict(expectedVersion, err);
      }
      throw err;
    }
    if (typeof res.ETag !== 'string' || res.ETag === '') throw new Error(`${this.description}${MANIFEST}: the store sent no ETag for the new manifest`);
    return { version: res.ETag };
  }

  /* Without conditional writes: the best that can be done, a HEAD just before the PUT. */
  async #compareBeforePut(expectedVersion, signal) {
    let etag = null;
    try {
      const head = await this.#send(new this.#sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(MANIFEST) }), signal, `check ${MANIFEST}`);
      etag = head.ETag || null;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (etag !== expectedVersion) throw this.#conflict(expectedVersion, undefined);
  }

  #conflict(expectedVersion, cause) {
    const want = expectedVersion === null ? 'no manifest' : `ETag ${expectedVersion}`;
    return new VecvaultError(`${this.description}${MANIFEST}: changed concurrently (expected ${want})`, 'ERR_CONFLICT', cause ? { cause } : undefined);
  }
}

module.exports = { S3Storage };
