'use strict';
/*
 * 42.cli.js: the vecvault command line (bin/vecvault.js), run as a child
 * process on small sessions made here: stdout (--json parsed), stderr and
 * exit codes (0 ok, 1 the operation failed, 2 usage error). verify and
 * Ctrl-C have their own file, 45.cli-verify.js.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./helpers');
const { cli, smallSessions } = require('./helpers/cli');

const KEY = Buffer.alloc(32, 7);

describe('42 vecvault CLI', function () {
  let tmp;
  let plain;
  let secret;
  let keyFile;
  let hexKeyFile;
  let pass;
  let passFile;

  before(async function () {
    const { VectorDB } = h.vecvault();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-cli-'));
    ({ plain, secret } = await smallSessions(tmp, KEY));
    pass = path.join(tmp, 'pass');
    const c = new VectorDB({ dimension: 3, passphrase: 'correct horse' });
    c.add('only', [1, 2, 3]);
    await c.save(pass);
    c.close();
    passFile = path.join(tmp, 'pass.txt');
    fs.writeFileSync(passFile, 'correct horse\n');
    keyFile = path.join(tmp, 'key.bin');
    fs.writeFileSync(keyFile, KEY);
    hexKeyFile = path.join(tmp, 'key.hex');
    fs.writeFileSync(hexKeyFile, KEY.toString('hex') + '\n');
  });

  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('skeleton', function () {
    it('--help lists the commands and exits 0; no command is a usage error (2)', async function () {
      const r = await cli(['--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Usage: vecvault <command>/);
      assert.match(r.stdout, /inspect/);
      assert.match(r.stdout, /Exit codes/);
      const none = await cli([]);
      assert.equal(none.code, 2);
    });

    it('<cmd> --help prints the command\'s usage and exits 0', async function () {
      const r = await cli(['inspect', '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Usage: vecvault inspect <dir>/);
    });

    it('an unknown command, an unknown option or a missing argument exits 2 with the code on stderr', async function () {
      for (const args of [['frobnicate'], ['inspect', '--nope', plain], ['inspect'], ['inspect', plain, 'extra']]) {
        const r = await cli(args);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /ERR_INVALID_ARGUMENT/, args.join(' '));
      }
    });

    it('refuses a key or passphrase on the command line (exit 2), without echoing it', async function () {
      for (const a of ['--key=' + KEY.toString('hex'), '--passphrase', '--key']) {
        const r = await cli(['inspect', a, plain]);
        assert.equal(r.code, 2, a);
        assert.match(r.stderr, /never come from the command line/);
        assert.ok(!r.stderr.includes(KEY.toString('hex')), 'the secret is not echoed');
      }
    });

    it('with --json an error is one JSON object on stdout: { ok: false, error: { code, message } }', async function () {
      const r = await cli(['inspect', path.join(tmp, 'missing'), '--json']);
      assert.equal(r.code, 1);
      assert.equal(r.json.ok, false);
      assert.equal(typeof r.json.error.code, 'string');
      assert.match(r.json.error.code, /^ERR_/);
      assert.match(r.stderr, new RegExp(r.json.error.code));
    });
  });

  describe('inspect', function () {
    it('prints the manifest without a key, human-readable', async function () {
      const r = await cli(['inspect', secret]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /generation:\s+1/);
      assert.match(r.stdout, /vectors:\s+40/);
      assert.match(r.stdout, /encryption:\s+encrypted/);
      assert.match(r.stdout, /created:\s+\S/);
    });

    it('--json carries the manifest VectorDB.inspect returns', async function () {
      const { VectorDB } = h.vecvault();
      const want = await VectorDB.inspect(plain);
      const r = await cli(['inspect', plain, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.ok, true);
      assert.deepEqual(r.json.manifest, JSON.parse(JSON.stringify(want)));
      assert.equal(r.json.manifest.encrypted, false);
      assert.equal(r.json.manifest.chunkCount, 3);
    });

    it('a directory that is not a session exits 1 with its error code', async function () {
      const r = await cli(['inspect', tmp]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^vecvault: ERR_[A-Z_]+: /);
    });
  });

  describe('stats', function () {
    it('opens the session lazily with --key-file (raw bytes) and prints size, shape, loadStats and cacheStats', async function () {
      const r = await cli(['stats', secret, '--key-file', keyFile, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const s = r.json.stats;
      assert.equal(s.size, 40);
      assert.equal(s.dimension, 4);
      assert.equal(s.metric, 'cosine');
      assert.equal(s.index, 'hnsw');
      assert.deepEqual(s.filterable, ['tag']);
      assert.equal(s.loadStats.lazy, true);
      assert.equal(s.loadStats.chunkCount, 3);
      assert.equal(s.loadStats.chunksLoaded, 0);
      assert.equal(s.cacheStats.lazy, true);
      assert.equal(typeof s.cacheStats.capacityBytes, 'number');
    });

    it('takes the key as a hex file, or from VECVAULT_KEY; a passphrase from a file or VECVAULT_PASSPHRASE', async function () {
      const runs = [
        [['stats', secret, '--key-file', hexKeyFile], {}],
        [['stats', secret], { VECVAULT_KEY: KEY.toString('hex') }],
        [['stats', pass, '--passphrase-file', passFile], {}],
        [['stats', pass], { VECVAULT_PASSPHRASE: 'correct horse' }],
      ];
      for (const [args, env] of runs) {
        const r = await cli(args, { env });
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stdout, /vectors:\s+(40|1)\n/);
        assert.match(r.stdout, /opened:\s+lazily/);
      }
    });

    it('no key exits 1 with ERR_KEY_REQUIRED; a wrong key exits 1 with ERR_WRONG_KEY', async function () {
      const none = await cli(['stats', secret]);
      assert.equal(none.code, 1);
      assert.match(none.stderr, /ERR_KEY_REQUIRED/);
      const wrong = await cli(['stats', secret], { env: { VECVAULT_KEY: 'ab'.repeat(32) } });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /ERR_WRONG_KEY/);
    });

    it('a malformed key file or VECVAULT_KEY, or two secrets, is a usage error (2); a missing key file exits 1', async function () {
      const bad = path.join(tmp, 'bad.key');
      fs.writeFileSync(bad, 'not a key');
      const cases = [
        [['stats', secret, '--key-file', bad], {}],
        [['stats', secret], { VECVAULT_KEY: 'abcd' }],
        [['stats', secret, '--key-file', keyFile, '--passphrase-file', passFile], {}],
      ];
      for (const [args, env] of cases) {
        const r = await cli(args, { env });
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /ERR_INVALID_ARGUMENT/);
      }
      const missing = await cli(['stats', secret, '--key-file', path.join(tmp, 'nope.key')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /ERR_NOT_FOUND: .*nope\.key/);
    });
  });

  describe('copy, export, import', function () {
    it('copy: the copy is the same session (verifies, same manifest); progress as plain lines on a non-TTY stderr', async function () {
      const dst = path.join(tmp, 'copied');
      const r = await cli(['copy', secret, dst, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.copy.generation, 1);
      assert.ok(r.json.copy.objectsCopied >= 4, JSON.stringify(r.json));
      const lines = r.stderr.trim().split('\n');
      assert.match(lines[0], /^copy: 0% /);
      assert.match(lines[lines.length - 1], /^copy: 100% /);
      assert.ok(!r.stderr.includes('\x1b'), 'no terminal control characters when stderr is not a TTY');
      const a = await cli(['inspect', secret, '--json']);
      const b = await cli(['inspect', dst, '--json']);
      assert.deepEqual(b.json.manifest, a.json.manifest);
      const v = await cli(['verify', dst, '--key-file', keyFile, '--json']);
      assert.equal(v.code, 0, v.stderr);
      assert.equal(v.json.verify.vectors, 40);
      const again = await cli(['copy', secret, dst, '--json']);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.json.copy.objectsCopied, 0);
    });

    it('export then import gives back a session that verifies with its key', async function () {
      const file = path.join(tmp, 'secret.vvexport');
      const dst = path.join(tmp, 'imported');
      const e = await cli(['export', secret, file, '--json']);
      assert.equal(e.code, 0, e.stderr);
      assert.equal(e.json.export.generation, 1);
      assert.equal(fs.statSync(file).size, e.json.export.bytes);
      assert.equal(fs.readFileSync(file).subarray(0, 8).toString('latin1'), 'VVEXPORT');
      assert.match(e.stderr, /^export: 100% /m);
      const i = await cli(['import', file, dst, '--json']);
      assert.equal(i.code, 0, i.stderr);
      assert.equal(i.json.import.generation, 1);
      assert.match(i.stderr, /^import: 100% /m);
      const v = await cli(['verify', dst, '--json'], { env: { VECVAULT_KEY: KEY.toString('hex') } });
      assert.equal(v.code, 0, v.stderr);
      assert.equal(v.json.verify.vectors, 40);
    });

    it('a damaged export file or a missing source exits 1 with its code', async function () {
      const file = path.join(tmp, 'plain.vvexport');
      assert.equal((await cli(['export', plain, file])).code, 0);
      const b = fs.readFileSync(file);
      b[b.length >> 1] ^= 0x01;
      fs.writeFileSync(file, b);
      const i = await cli(['import', file, path.join(tmp, 'never'), '--json']);
      assert.equal(i.code, 1, i.stderr);
      assert.equal(i.json.error.code, 'ERR_EXPORT_CORRUPT');
      const c = await cli(['copy', path.join(tmp, 'missing'), path.join(tmp, 'never2')]);
      assert.equal(c.code, 1);
      assert.match(c.stderr, /^vecvault: ERR_[A-Z_]+: /);
      assert.equal((await cli(['copy', plain])).code, 2);
    });

    it('on a TTY the progress is a bar drawn in place (cli-progress)', function () {
      const { progressFor } = require('../lib/cli/progress');
      let out = '';
      const stream = { isTTY: true, columns: 80, write: (x) => ((out += x), true), on() {}, removeListener() {} };
      const p = progressFor('copy', { stderr: stream });
      p.onProgress(0, 100);
      p.onProgress(100, 100);
      p.stop();
      assert.match(out, /copy \[[^\]]+\] 100% \| 100\/100 bytes/);
      assert.ok(out.includes('\x1b['), 'drawn with terminal control sequences');
      assert.ok(!/copy: \d+%/.test(out), 'not the plain lines');
    });
  });
});
