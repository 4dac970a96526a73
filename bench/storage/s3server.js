'use strict';
// s3rver for the storage benchmark, in a child process of its own: on
// 127.0.0.1 at a random port, storing into a fresh temporary directory that
// is removed when it stops. Nothing outside this machine is involved.
//
// A child, not the measuring process: s3rver is JavaScript, and on the
// measuring process's event loop it would compete with the very bridge the
// benchmark times (a real S3 endpoint runs elsewhere). The two processes
// still share the machine's two cores.
//
//   const s3 = await startS3();     // { endpoint, client, makeBucket(name), close() }
//
// Run as a script it is the server: it prints { port, directory } as one
// JSON line and stops on SIGTERM or when stdin closes (the parent died).
// test/helpers/s3.js does the same in-process for the test suite; bench code
// keeps its own copy so it never requires test files.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

// The SDK warns once per process that Node 20 will lose support: noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/*
 * s3rver 3.7.1 makes ListObjectsV2 continuation tokens with single DES, which
 * OpenSSL 3 no longer offers. Three-key DES with the key repeated (K|K|K) is
 * the same cipher, bit for bit: map exactly that algorithm name.
 */
function shimSingleDes() {
  const crypto = require('crypto');
  try {
    crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return;
  } catch { /* shim below */ }
  const wrap = (orig) => function (algorithm, key, iv, options) {
    if (algorithm === 'des' && key && key.length === 8) return orig.call(this, 'des-ede3-cbc', Buffer.concat([key, key, key]), iv, options);
    return orig.call(this, algorithm, key, iv, options);
  };
  crypto.createCipheriv = wrap(crypto.createCipheriv);
  crypto.createDecipheriv = wrap(crypto.createDecipheriv);
}

async function serve() {
  shimSingleDes();
  const S3rver = require('s3rver');
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'vecvault-bench-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try { await server.close(); } finally {
      fs.rmSync(directory, { recursive: true, force: true });
      process.exit(0);
    }
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  const address = await server.run();
  process.stdout.write(JSON.stringify({ port: address.port, directory }) + '\n');
}

/** Starts the server child; resolves when it listens. */
function startS3() {
  const { S3Client, CreateBucketCommand } = require('@aws-sdk/client-s3');
  const child = spawn(process.execPath, [__filename], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onExit = (code) => reject(new Error(`s3rver child exited (code ${code}) before it listened`));
    child.on('exit', onExit);
    child.stdout.on('data', (b) => {
      out += b;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      child.off('exit', onExit);
      const { port, directory } = JSON.parse(out.slice(0, nl));
      const endpoint = `http://127.0.0.1:${port}`;
      const client = new S3Client({
        endpoint, region: 'us-east-1', forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
        maxAttempts: 1, // retries are vecvault's to make
      });
      resolve({
        endpoint, client, directory, pid: child.pid,
        async makeBucket(name) {
          await client.send(new CreateBucketCommand({ Bucket: name }));
          return name;
        },
        close() {
          client.destroy();
          return new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.on('exit', () => done());
            child.kill('SIGTERM');
          });
        },
      });
    });
  });
}

if (require.main === module) {
  serve().catch((err) => {
    console.error(`s3rver: ${err.stack || err}`);
    process.exit(1);
  });
}

module.exports = { startS3 };
