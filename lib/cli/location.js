'use strict';
// Where a CLI command finds or puts a session: a directory path, or
// s3://bucket[/prefix] on S3 or an S3-compatible store (docs/CLI.md).
//
// The S3 client is configured the AWS way, from the command's environment:
// AWS_REGION (or AWS_DEFAULT_REGION; default us-east-1), AWS_ENDPOINT_URL_S3
// or AWS_ENDPOINT_URL for an S3-compatible server, AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN when set (otherwise the SDK's
// default chain: profiles, SSO, instance roles). Two of vecvault's own:
// VECVAULT_S3_PATH_STYLE=1 for servers that need path-style addressing, and
// VECVAULT_S3_CONDITIONAL_WRITES=0 for stores that ignore If-Match (a lease
// then guards commits; docs/STORAGE.md).
const { usageError } = require('./args');

const S3_URL = /^s3:\/\/([^/]*)(?:\/(.*))?$/;

/** The key prefix of an s3:// URL's path: '' or ending in '/'. */
function prefixOf(rest) {
  if (!rest) return '';
  return rest.endsWith('/') ? rest : `${rest}/`;
}

function flag(env, name, what) {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw usageError(`${name} must be 1 or 0 (${what}), got ${JSON.stringify(v)}`);
}

/** An S3Client from the environment `env`, or the SDK's own error if it is not installed. */
function s3Client(env) {
  const { S3Client } = loadSdk();
  const config = { region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1' };
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  if (endpoint) config.endpoint = endpoint;
  if (flag(env, 'VECVAULT_S3_PATH_STYLE', 'path-style addressing')) config.forcePathStyle = true;
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    config.credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
    if (env.AWS_SESSION_TOKEN) config.credentials.sessionToken = env.AWS_SESSION_TOKEN;
  }
  return new S3Client(config);
}

function loadSdk() {
  try {
    return require('@aws-sdk/client-s3');
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') {
      throw usageError('s3:// locations need the AWS SDK v3 S3 client next to vecvault: npm install @aws-sdk/client-s3');
    }
    throw err;
  }
}

/**
 * Opens `spec` for a command and returns `{ target, label, close }`:
 * `target` is what VectorDB.load/copy/import take (a directory path or an
 * S3Storage), `label` names it in messages, and `close()` releases the
 * client. `io.env` is the environment.
 */
function openLocation(spec, io) {
  const m = S3_URL.exec(spec);
  if (!m) return { target: spec, label: spec, close() {} };
  if (!m[1]) throw usageError(`${spec}: an s3:// location needs a bucket: s3://bucket[/prefix]`);
  const env = io.env || {};
  const conditionalWrites = flag(env, 'VECVAULT_S3_CONDITIONAL_WRITES', 'whether the store enforces If-Match');
  const client = s3Client(env);
  try {
    const { S3Storage } = require('../storage/s3');
    const storage = new S3Storage({ client, bucket: m[1], prefix: prefixOf(m[2]), ...(conditionalWrites === false ? { conditionalWrites } : {}) });
    return { target: storage, label: spec, close: () => client.destroy() };
  } catch (err) {
    client.destroy();
    if (err && err.code === 'ERR_INVALID_ARGUMENT') err.usage = true;
    throw err;
  }
}

/** Runs `fn(...targets)` with each of `specs` opened, and closes them all. */
async function withLocations(specs, io, fn) {
  const open = [];
  try {
    for (const spec of specs) open.push(openLocation(spec, io));
    return await fn(...open.map((o) => o.target));
  } finally {
    for (const o of open) o.close();
  }
}

module.exports = { openLocation, withLocations };
