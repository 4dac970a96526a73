'use strict';
/*
 * test/helpers/s3-save-child.js: a writer that test/34.storage.s3.js kills
 * with SIGKILL in the middle of a save to S3 (s3rver).
 *
 *   fork(this file, [JSON.stringify({ endpoint, bucket, prefix, keyHex, stop, change })])
 *
 * It loads the session under `prefix` (or, given `create`, the options of a
 * new database, starts from an empty one), applies `change` (see applyChange,
 * which the parent also uses to build its reference) and saves through an
 * S3Storage whose calls are wrapped. At the stop point it sends the parent
 * `{ stopped, name }` over IPC and from then on every call of the storage
 * waits forever, so nothing more reaches the store and the parent decides
 * the moment of death:
 *
 *   write:N          before sending the N-th object upload (from 1; 0: never)
 *   manifest:before  before sending the manifest
 *   manifest:after   once the store has accepted the manifest
 *   delete:N         before sending the N-th delete of its garbage collection
 *
 * Every object upload that completes is reported as `{ uploaded: name }`
 * first. A save that ends without reaching its stop point sends
 * `{ saved: generation }`, a failure `{ error: message }`.
 */
const { rng } = require('./index');

/** The change the child makes to the generation it loaded: `add` vectors
 * from seed `seed` as ids `<tag>0..`, and the deletion of the ids in `del`. */
function applyChange(db, { add, seed, tag, del }) {
  const r = rng(seed);
  for (let i = 0; i < add; i++) {
    db.add(`${tag}${i}`, Float32Array.from({ length: db.dimension }, () => r() * 2 - 1), { child: i });
  }
  for (const id of del) db.delete(id);
}

/** A plain Storage over `inner` that stops at `stop` (above), reporting through `send`. */
function stopping(inner, stop, send) {
  const [where, arg] = stop.split(':');
  let tripped = false;
  let uploads = 0;
  const forever = () => new Promise(() => {});
  const trip = (name) => {
    tripped = true;
    send({ stopped: stop, name });
    return forever();
  };
  const out = { description: inner.description, conditionalWrites: inner.conditionalWrites };
  let deletes = 0;
  for (const m of ['read', 'list', 'readManifest']) {
    out[m] = (...args) => (tripped ? forever() : inner[m](...args));
  }
  out.delete = (name, o) => {
    if (tripped) return forever();
    if (where === 'delete' && ++deletes === Number(arg)) return trip(name);
    return inner.delete(name, o);
  };
  out.write = async (name, data, o) => {
    if (tripped) return forever();
    if (name.startsWith('objects/') && where === 'write' && ++uploads === Number(arg)) return trip(name);
    await inner.write(name, data, o);
    if (name.startsWith('objects/')) send({ uploaded: name });
    return undefined;
  };
  out.writeManifest = async (data, expected, o) => {
    if (tripped) return forever();
    if (stop === 'manifest:before') return trip('manifest.json');
    const r = await inner.writeManifest(data, expected, o);
    if (stop === 'manifest:after') return trip('manifest.json');
    return r;
  };
  return out;
}

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const { S3Client } = require('@aws-sdk/client-s3');
  const { VectorDB } = require('../..');
  const { S3Storage } = require('../../s3');
  const send = (m) => process.send(m);
  const client = new S3Client({
    endpoint: cfg.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 1,
  });
  const s3 = new S3Storage({ client, bucket: cfg.bucket, prefix: cfg.prefix });
  const key = Buffer.from(cfg.keyHex, 'hex');
  const db = cfg.create ? new VectorDB({ ...cfg.create, key }) : await VectorDB.load(s3, { key });
  applyChange(db, cfg.change);
  const stats = await db.save(stopping(s3, cfg.stop, send), { gcGraceMs: 0 });
  send({ saved: stats.generation });
  process.disconnect();
}

if (require.main === module) {
  main().catch((err) => {
    process.send({ error: `${err && err.code}: ${err && err.message}` });
    process.disconnect();
  });
}

module.exports = { applyChange, stopping };
