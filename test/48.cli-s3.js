'use strict';
/*
 * 48.cli-s3.js: the CLI's s3:// locations (lib/cli/location.js) against a
 * real S3 API (s3rver, in this process): copy a directory up, inspect and
 * open it there, export it from S3, import it to another prefix, copy it
 * back down, and load the result: the same vectors. The client is set up
 * from AWS_* variables only, as a user's shell would. Bad locations and
 * settings are usage errors (exit 2); a prefix with no session is exit 1.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./helpers');
const { cli, smallSessions } = require('./helpers/cli');
const { startS3 } = require('./helpers/s3');

const KEY = Buffer.alloc(32, 5);

describe('48 vecvault CLI on s3:// locations', function () {
  this.timeout(120000);
  let s3;
  let tmp;
  let secret;
  let env;

  before(async function () {
    s3 = await startS3();
    await s3.makeBucket('cli');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-cli-s3-'));
    ({ secret } = await smallSessions(tmp, KEY));
    env = {
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      VECVAULT_S3_PATH_STYLE: '1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      // s3rver ignores If-Match; without a lease a commit there would not be guarded.
      VECVAULT_S3_CONDITIONAL_WRITES: '0',
    };
  });

  after(async function () {
    if (s3) await s3.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a session goes up, is inspected and opened there, exported, imported elsewhere and comes back down intact', async function () {
    let r = await cli(['copy', secret, 's3://cli/tenants/a', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.json.copy.objectsCopied > 0);

    r = await cli(['inspect', 's3://cli/tenants/a/', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.manifest.totalVectors, 40);
    assert.equal(r.json.manifest.encrypted, true);

    r = await cli(['stats', 's3://cli/tenants/a', '--json'], { env: { ...env, VECVAULT_KEY: KEY.toString('hex') } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.stats.size, 40);
    assert.deepEqual(r.json.stats.filterable, ['tag']);

    const file = path.join(tmp, 'a.vvx');
    r = await cli(['export', 's3://cli/tenants/a', file, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.statSync(file).size > 0);

    r = await cli(['import', file, 's3://cli/tenants/b', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.json.import.objectsWritten > 0);

    const down = path.join(tmp, 'down');
    r = await cli(['copy', 's3://cli/tenants/b', down, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);

    const { VectorDB } = h.vecvault();
    const [a, b] = [await VectorDB.load(secret, { key: KEY }), await VectorDB.load(down, { key: KEY })];
    try {
      assert.equal(b.size, 40);
      for (let i = 0; i < 40; i++) assert.deepEqual(b.get(`s${i}`), a.get(`s${i}`));
    } finally {
      a.close();
      b.close();
    }
  });

  it('verify checks every retained generation on S3 and names a damaged object there', async function () {
    const { VectorDB } = h.vecvault();
    const dir = path.join(tmp, 'gens');
    const db = new VectorDB({ dimension: 4, chunkSize: 16, key: KEY });
    for (let g = 0; g < 3; g++) {
      h.randomVectors(20, 4, 10 + g).forEach((v, i) => db.add(`g${g}-${i}`, v));
      await db.save(dir);
    }
    db.close();
    let r = await cli(['copy', dir, 's3://cli/gens'], { env });
    assert.equal(r.code, 0, r.stderr);
    const withKey = { ...env, VECVAULT_KEY: KEY.toString('hex') };
    r = await cli(['verify', 's3://cli/gens', '--json'], { env: withKey });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json.verify.generations.map((g) => g.generation), [3, 2, 1]);
    assert.equal(r.json.verify.vectors, 60);

    // Damage one chunk of the current generation, through the S3 API.
    const { GetObjectCommand, PutObjectCommand } = require('@aws-sdk/client-s3');
    const victim = (await VectorDB.inspect(dir)).chunks[0];
    const name = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8').slice(154, -2)).chunks.find((c) => c.seq === victim.id).name;
    const key = `gens/objects/${name}`;
    const body = Buffer.from(await (await s3.client.send(new GetObjectCommand({ Bucket: 'cli', Key: key }))).Body.transformToByteArray());
    body[body.length - 3] ^= 1;
    await s3.client.send(new PutObjectCommand({ Bucket: 'cli', Key: key, Body: body }));
    r = await cli(['verify', 's3://cli/gens', '--json'], { env: withKey });
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.json.verify.damaged.some((d) => d.object === name && d.code === 'ERR_CHUNK_CORRUPT'), JSON.stringify(r.json.verify.damaged));
  });

  it('a prefix without a session is exit 1, ERR_NOT_FOUND', async function () {
    const r = await cli(['inspect', 's3://cli/nobody-here', '--json'], { env });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.json.error.code, 'ERR_NOT_FOUND');
  });

  it('a location without a bucket, an invalid bucket or a bad setting is a usage error', async function () {
    for (const [args, extra, re] of [
      [['inspect', 's3://'], {}, /needs a bucket/],
      [['inspect', 's3:///prefix'], {}, /needs a bucket/],
      [['inspect', 's3://b/x'], { VECVAULT_S3_PATH_STYLE: 'yes' }, /VECVAULT_S3_PATH_STYLE must be 1 or 0/],
      [['copy', 's3://-bad-/a', path.join(tmp, 'nowhere')], {}, /bucket must be a bucket name/],
    ]) {
      const r = await cli([...args, '--json'], { env: { ...env, ...extra } });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.json.error.code, 'ERR_INVALID_ARGUMENT');
      assert.match(r.json.error.message, re);
    }
    assert.ok(!fs.existsSync(path.join(tmp, 'nowhere')), 'a refused copy wrote its target');
  });
});
