'use strict';
/*
 * test/helpers/s3.js: a real S3 API server for the suite — s3rver, in this
 * process, on 127.0.0.1 at a random port, storing into a fresh temporary
 * directory — and an S3Client for it.
 *
 *   const s3 = await startS3();   // in a before() hook
 *   await s3.makeBucket('vectors');
 *   new S3Storage({ client: s3.client, bucket: 'vectors', prefix: 'a/' });
 *   await s3.close();             // in after(): stops the server, removes the directory
 *
 * A child process reaches the same server with s3Client(s3.endpoint).
 *
 * s3rver accepts any credentials signed with the S3RVER pair and ignores
 * If-Match / If-None-Match, so tests of conditional writes on it can only
 * check what was sent (recordRequests below).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// The SDK warns once per process that Node 20 will lose support; that is
// noise in a test run, not a finding.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/*
 * s3rver 3.7.1 makes ListObjectsV2 continuation tokens with single DES
 * ('des'), which OpenSSL 3 (Node >= 17) no longer offers, so any listing
 * past 1000 keys fails with InternalError. Three-key DES with the key
 * repeated (K|K|K) is the same cipher, bit for bit, and is still there:
 * map exactly that algorithm name, nothing else.
 */
function shimSingleDes() {
  const crypto = require('node:crypto');
  if (crypto.createCipheriv.vecvaultDesShim) return;
  try {
    crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return; // this OpenSSL still has it
  } catch {
    /* shim below */
  }
  const wrap = (orig) => {
    const f = function (algorithm, key, iv, options) {
      if (algorithm === 'des' && key && key.length === 8) return orig.call(this, 'des-ede3-cbc', Buffer.concat([key, key, key]), iv, options);
      return orig.call(this, algorithm, key, iv, options);
    };
    f.vecvaultDesShim = true;
    return f;
  };
  crypto.createCipheriv = wrap(crypto.createCipheriv);
  crypto.createDecipheriv = wrap(crypto.createDecipheriv);
}

/**
 * An S3Client for the server at `endpoint`, e.g. in a child process that a
 * test starts (and may kill) while the server runs in the test's process.
 */
function s3Client(endpoint, extra = {}) {
  const { S3Client } = require('@aws-sdk/client-s3');
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 1, // retries are vecvault's to make and the tests' to count
    ...extra,
  });
}

async function startS3() {
  shimSingleDes();
  const S3rver = require('s3rver');
  const { CreateBucketCommand } = require('@aws-sdk/client-s3');
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'vecvault-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  let address;
  try {
    address = await server.run();
  } catch (err) {
    fs.rmSync(directory, { recursive: true, force: true });
    throw err;
  }
  const endpoint = `http://127.0.0.1:${address.port}`;
  const makeClient = (extra) => s3Client(endpoint, extra);
  const client = makeClient();
  const clients = [client];
  let closed = false;

  return {
    endpoint,
    client,
    directory,
    /** Another client for the same server (e.g. with other credentials). */
    makeClient(extra) {
      const c = makeClient(extra);
      clients.push(c);
      return c;
    },
    async makeBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const c of clients) c.destroy();
      try {
        await server.close();
      } finally {
        fs.rmSync(directory, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Records every request `client` sends from now on, as
 * `{ method, key, headers }` (header names lower-case, key without the
 * bucket), after signing: what actually went on the wire. Returns
 * `{ requests, stop() }`.
 */
function recordRequests(client, bucket) {
  const requests = [];
  const name = `vecvault-record-${Math.random().toString(36).slice(2)}`;
  client.middlewareStack.add(
    (next) => async (args) => {
      const req = args.request;
      if (req && req.headers) {
        const headers = {};
        for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
        const p = decodeURIComponent(req.path || '');
        const key = p.startsWith(`/${bucket}/`) ? p.slice(bucket.length + 2) : p;
        requests.push({ method: req.method, key, headers });
      }
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name },
  );
  return { requests, stop: () => client.middlewareStack.remove(name) };
}

module.exports = { startS3, s3Client, recordRequests };
