'use strict';
/*
 * 45.cli-verify.js: `vecvault verify` over every retained generation of a
 * session (the current one and the history copies in manifests/), with
 * bounded memory, and Ctrl-C (SIGINT) in the CLI: commands stop through
 * their signal, leave nothing that looks complete, and exit with 130.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const h = require('./helpers');
const { cli, start, smallSessions } = require('./helpers/cli');

const KEY = Buffer.alloc(32, 7);
const HOLD = path.join(__dirname, 'helpers', 'cli-hold.js');

/** The body of a manifest file (manifest.json or a history copy). */
function bodyOf(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8')).body;
}

function history(dir, generation) {
  return path.join(dir, 'manifests', `${String(generation).padStart(20, '0')}.json`);
}

function chunkNames(body) {
  return body.chunks.map((c) => c.name);
}

/** Flips one byte in the middle of `file`. */
function flip(file) {
  const b = fs.readFileSync(file);
  b[b.length >> 1] ^= 0x01;
  fs.writeFileSync(file, b);
}

/** A copy of `src` at `tmp/name`. */
function copyOf(src, tmp, name) {
  const dst = path.join(tmp, name);
  fs.cpSync(src, dst, { recursive: true });
  return dst;
}

/**
 * A session saved 4 times: rows added, changed and deleted, so that the
 * directory retains generations 4 (current), 3 and 2, and generation 3
 * drops a chunk (most of its rows deleted) that only generation 2 still lists.
 */
async function fourGenerations(dir, secret) {
  const { VectorDB } = h.vecvault();
  const db = new VectorDB({ dimension: 4, chunkSize: 16, ...secret });
  h.randomVectors(40, 4, 11).forEach((v, i) => db.add(`a${i}`, v, { i }));
  await db.save(dir);
  h.randomVectors(20, 4, 12).forEach((v, i) => db.add(`b${i}`, v, { i }));
  await db.save(dir);
  for (let i = 0; i < 12; i++) db.delete(`a${i}`);
  db.add('a20', [1, 0, 0, 0], { changed: true });
  await db.save(dir);
  db.add('c', [0, 0, 1, 0]);
  await db.save(dir);
  db.close();
}

describe('45 vecvault verify and Ctrl-C', function () {
  let tmp;
  let plain;
  let secret;
  let gens;
  let keyFile;

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-cli-verify-'));
    ({ plain, secret } = await smallSessions(tmp, KEY));
    gens = path.join(tmp, 'gens');
    await fourGenerations(gens, { key: KEY });
    keyFile = path.join(tmp, 'key.bin');
    fs.writeFileSync(keyFile, KEY);
  });

  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('verify, one generation', function () {
    /** A copy of `src` with one byte flipped in the middle of the object `pick(manifest body)` names (or the object removed). */
    function damaged(src, name, pick, how = 'flip') {
      const dst = copyOf(src, tmp, name);
      const object = pick(bodyOf(path.join(dst, 'manifest.json')));
      const file = path.join(dst, 'objects', object);
      if (how === 'remove') fs.unlinkSync(file);
      else flip(file);
      return { dir: dst, object };
    }

    it('a good session verifies: exit 0, every vector counted, nothing damaged', async function () {
      const r = await cli(['verify', secret, '--key-file', keyFile, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.ok, true);
      const v = r.json.verify;
      assert.deepEqual([v.generation, v.chunks, v.vectors, v.damaged], [1, 3, 40, []]);
      assert.deepEqual(v.generations.map((g) => [g.generation, g.manifest, g.chunks, g.chunksChecked, g.vectors, g.damaged]), [[1, 'manifest.json', 3, 3, 40, 0]]);
      const human = await cli(['verify', plain]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /result:\s+OK/);
    });

    it('a flipped byte in a chunk object: exit 1, that chunk alone reported, by code and object name', async function () {
      const { dir, object } = damaged(secret, 'bad-chunk', (b) => b.chunks[1].name);
      const r = await cli(['verify', dir, '--key-file', keyFile, '--json']);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.json.ok, false);
      const d = r.json.verify.damaged;
      assert.equal(d.length, 1, JSON.stringify(d));
      assert.deepEqual([d[0].code, d[0].where, d[0].object, d[0].generations], ['ERR_CHUNK_CORRUPT', 'chunk 1', object, [1]]);
      assert.ok(d[0].message.includes(object), d[0].message);
      const human = await cli(['verify', dir, '--key-file', keyFile]);
      assert.equal(human.code, 1);
      assert.match(human.stdout, /DAMAGED/);
      assert.ok(human.stdout.includes(object), human.stdout);
    });

    it('a flipped byte in an index object of a plain session, or a missing chunk: exit 1, named', async function () {
      const idx = damaged(plain, 'bad-index', (b) => b.index.base[0].name);
      const r = await cli(['verify', idx.dir, '--json']);
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual([r.json.verify.damaged[0].code, r.json.verify.damaged[0].object], ['ERR_CHUNK_CORRUPT', idx.object]);
      assert.ok(r.json.verify.damaged[0].message.includes(idx.object));
      assert.equal(r.json.verify.generations[0].opened, false);
      const gone = damaged(plain, 'gone-chunk', (b) => b.chunks[2].name, 'remove');
      const g = await cli(['verify', gone.dir, '--json']);
      assert.equal(g.code, 1, g.stderr);
      assert.deepEqual(g.json.verify.damaged.map((d) => [d.where, d.code]), [['chunk 2', 'ERR_CHUNK_MISSING']]);
      assert.ok(g.json.verify.damaged[0].message.includes(gone.object));
    });

    it('a wrong key is a failure (exit 1) but not reported as damage', async function () {
      const r = await cli(['verify', secret, '--json'], { env: { VECVAULT_KEY: 'cd'.repeat(32) } });
      assert.equal(r.code, 1);
      assert.equal(r.json.error.code, 'ERR_WRONG_KEY');
    });
  });

  describe('verify, every retained generation', function () {
    it('checks the current generation and each retained history copy, newest first, each shared chunk once', async function () {
      const r = await cli(['verify', gens, '--key-file', keyFile, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const v = r.json.verify;
      assert.equal(v.generation, 4);
      assert.deepEqual(v.generations.map((g) => [g.generation, g.manifest, g.opened, g.damaged]), [
        [4, 'manifest.json', true, 0],
        [3, 'manifests/00000000000000000003.json', true, 0],
        [2, 'manifests/00000000000000000002.json', true, 0],
      ]);
      const bodies = [path.join(gens, 'manifest.json'), history(gens, 3), history(gens, 2)].map(bodyOf);
      const distinct = new Set(bodies.flatMap(chunkNames));
      // Every chunk is read exactly once: by the newest generation that lists it.
      assert.equal(v.generations.reduce((n, g) => n + g.chunksChecked, 0), distinct.size);
      v.generations.forEach((g, i) => {
        assert.equal(g.chunks, bodies[i].chunks.length);
        assert.equal(g.chunksChecked + g.chunksShared, g.chunks);
        const newer = new Set(bodies.slice(0, i).flatMap(chunkNames));
        assert.equal(g.chunksChecked, chunkNames(bodies[i]).filter((n) => !newer.has(n)).length);
      });
      assert.ok(v.generations[2].chunksChecked >= 1, 'generation 2 lists a chunk no newer one does');
      assert.equal(v.vectors, 49);
      assert.deepEqual([v.damaged, v.ignored], [[], []]);
      const human = await cli(['verify', gens, '--key-file', keyFile]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /generation 3:\s+manifests\/00000000000000000003\.json: \d+ chunks .*: OK/);
      assert.match(human.stdout, /result:\s+OK: every object of 3 generations authenticated and decoded/);
    });

    it('a damaged chunk only an older generation lists: exit 1, named, with that generation', async function () {
      const dir = copyOf(gens, tmp, 'old-chunk');
      const newer = new Set([...chunkNames(bodyOf(path.join(dir, 'manifest.json'))), ...chunkNames(bodyOf(history(dir, 3)))]);
      const only = bodyOf(history(dir, 2)).chunks.find((c) => !newer.has(c.name));
      assert.ok(only, 'precondition: generation 2 lists a chunk generations 3 and 4 do not');
      flip(path.join(dir, 'objects', only.name));
      const r = await cli(['verify', dir, '--key-file', keyFile, '--json']);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.json.ok, false);
      const d = r.json.verify.damaged;
      assert.equal(d.length, 1, JSON.stringify(d));
      assert.deepEqual([d[0].where, d[0].object, d[0].code, d[0].generations], [`chunk ${only.seq}`, only.name, 'ERR_CHUNK_CORRUPT', [2]]);
      assert.ok(d[0].message.includes(only.name), d[0].message);
      assert.deepEqual(r.json.verify.generations.map((g) => g.damaged), [0, 0, 1]);
      const human = await cli(['verify', dir, '--key-file', keyFile]);
      assert.equal(human.code, 1);
      assert.match(human.stdout, /generation 2:\s+.*DAMAGED/);
      assert.ok(human.stdout.includes(`generation 2, chunk ${only.seq}: ERR_CHUNK_CORRUPT:`), human.stdout);
      assert.ok(human.stdout.includes(only.name), human.stdout);
    });

    it('a damaged chunk the current generation shares with older ones is reported once, with every generation listing it', async function () {
      const dir = copyOf(gens, tmp, 'shared-chunk');
      const lists = [path.join(dir, 'manifest.json'), history(dir, 3), history(dir, 2)].map((f) => chunkNames(bodyOf(f)));
      const shared = lists[0].find((n) => lists[1].includes(n) && lists[2].includes(n));
      assert.ok(shared, 'precondition: a chunk all three generations list');
      flip(path.join(dir, 'objects', shared));
      const r = await cli(['verify', dir, '--key-file', keyFile, '--json']);
      assert.equal(r.code, 1, r.stderr);
      const d = r.json.verify.damaged;
      assert.equal(d.length, 1, JSON.stringify(d));
      assert.deepEqual([d[0].object, d[0].code, d[0].generations], [shared, 'ERR_CHUNK_CORRUPT', [4, 3, 2]]);
      assert.deepEqual(r.json.verify.generations.map((g) => g.damaged), [1, 1, 1]);
    });

    it('a damaged history manifest is named; a history copy newer than manifest.json (never committed) is ignored', async function () {
      const dir = copyOf(gens, tmp, 'bad-history');
      flip(history(dir, 3));
      fs.copyFileSync(path.join(dir, 'manifest.json'), history(dir, 5));
      const r = await cli(['verify', dir, '--key-file', keyFile, '--json']);
      assert.equal(r.code, 1, r.stderr);
      const d = r.json.verify.damaged;
      assert.equal(d.length, 1, JSON.stringify(d));
      assert.deepEqual([d[0].where, d[0].object, d[0].code, d[0].generations], ['manifest', 'manifests/00000000000000000003.json', 'ERR_MANIFEST_CORRUPT', [3]]);
      assert.deepEqual(r.json.verify.ignored.map((i) => i.file), ['manifests/00000000000000000005.json']);
      // The other generations were still checked; generation 3 could not be opened.
      assert.deepEqual(r.json.verify.generations.map((g) => [g.generation, g.opened]), [[4, true], [3, false], [2, true]]);
      fs.rmSync(history(dir, 3));
      const ok = await cli(['verify', dir, '--key-file', keyFile, '--json']);
      assert.equal(ok.code, 0, ok.stdout);
    });

    it('an older generation is authenticated with the key, as the current one is', async function () {
      const dir = copyOf(gens, tmp, 'forged-history');
      // A history copy whose body was edited and whose sum was recomputed: only the MAC can tell.
      const file = history(dir, 2);
      const text = fs.readFileSync(file, 'latin1');
      const body = text.slice(154, -2).replace('"createdAt":"20', '"createdAt":"19');
      assert.notEqual(body, text.slice(154, -2));
      const sum = execFileSync('python3', ['-c', 'import hashlib,sys; print(hashlib.blake2b(sys.stdin.buffer.read(), digest_size=32).hexdigest())'], {
        input: Buffer.from(body, 'latin1'),
      }).toString().trim();
      fs.writeFileSync(file, `{"sum":"${sum}${text.slice(72, 154)}${body}}\n`, 'latin1');
      const r = await cli(['verify', dir, '--key-file', keyFile, '--json']);
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(r.json.verify.damaged.map((d) => [d.object, d.code, d.generations]), [['manifests/00000000000000000002.json', 'ERR_MANIFEST_AUTH', [2]]], r.stdout);
    });

    it('a session that changes while verify runs is an error (ERR_CONFLICT), not a report about the wrong generation', async function () {
      const dir = copyOf(gens, tmp, 'changing');
      // Another writer's commit, played by a preload: manifest.json is replaced between verify's reading it and the load.
      const swap = path.join(tmp, 'swap-manifest.js');
      fs.writeFileSync(swap, `
        const { DirStorage } = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'storage', 'dir'))});
        const list = DirStorage.prototype.list;
        DirStorage.prototype.list = async function (prefix, o) {
          const r = await list.call(this, prefix, o);
          if (prefix === 'manifests/') require('node:fs').copyFileSync(${JSON.stringify(history(dir, 3))}, ${JSON.stringify(path.join(dir, 'manifest.json'))});
          return r;
        };`);
      const r = await start(['verify', dir, '--key-file', keyFile, '--json'], { node: ['-r', swap] }).done;
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.json.error.code, 'ERR_CONFLICT');
      assert.match(r.json.error.message, /changed while verify ran/);
    });

    it('memory stays within the cache bound (--cache-mb), not the session size', async function () {
      const { VectorDB } = h.vecvault();
      const dir = path.join(tmp, 'big');
      const db = new VectorDB({ dimension: 32, chunkSize: 256, encryptAtRest: false });
      h.randomVectors(2000, 32, 5).forEach((v, i) => db.add(`v${i}`, v));
      await db.save(dir);
      for (let i = 0; i < 1500; i++) db.delete(`v${i}`);
      h.randomVectors(500, 32, 6).forEach((v, i) => db.add(`w${i}`, v));
      await db.save(dir);
      db.close();
      const chunkBytes = [path.join(dir, 'manifest.json'), history(dir, 1)]
        .flatMap((f) => bodyOf(f).chunks)
        .reduce((m, c) => m.set(c.name, c.bytes), new Map());
      const total = [...chunkBytes.values()].reduce((a, b) => a + b, 0);
      const r = await cli(['verify', dir, '--cache-mb', '0.0625', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const c = r.json.verify.cache;
      assert.equal(c.capacityBytes, 65536);
      assert.ok(total > 4 * c.capacityBytes, `precondition: the chunks (${total} bytes) are several times the cache`);
      assert.ok(c.peakBytes > 0 && c.peakBytes <= c.capacityBytes, JSON.stringify(c));
      assert.equal(r.json.verify.generations.reduce((n, g) => n + g.chunksChecked, 0), chunkBytes.size);
      assert.equal((await cli(['verify', dir, '--cache-mb', 'lots'])).code, 2);
    });
  });

  describe('Ctrl-C (SIGINT)', function () {
    /**
     * Starts the CLI with one DirStorage call of the operation held
     * (test/helpers/cli-hold.js), so the operation is certainly in flight
     * when SIGINT arrives; interrupts it once it is held.
     */
    async function interrupted(args, hold) {
      const run = start(args, { node: ['-r', HOLD], env: { VV_TEST_HOLD: hold } });
      await run.stderrMatches(/^test-hold: \w+ held$/m);
      run.child.kill('SIGINT');
      return run.done;
    }

    function assertInterrupted(r) {
      assert.equal(r.code, 130, r.stderr);
      assert.match(r.stderr, /^vecvault: interrupted; stopping/m);
      assert.match(r.stderr, /^vecvault: ERR_ABORTED: interrupted/m);
    }

    it('export: exits 130 and leaves neither the export file nor a temporary one', async function () {
      const out = path.join(tmp, 'export-out');
      fs.mkdirSync(out);
      const r = await interrupted(['export', gens, path.join(out, 'gens.vvexport')], 'read:2');
      assertInterrupted(r);
      assert.match(r.stderr, /^export: 0% /m);
      assert.doesNotMatch(r.stderr, /^export: 100% /m);
      assert.equal(r.stdout, '');
      assert.deepEqual(fs.readdirSync(out), []);
    });

    it('copy: exits 130 and the target has no manifest (it is no session); copying again completes it', async function () {
      const dst = path.join(tmp, 'copy-interrupted');
      const r = await interrupted(['copy', gens, dst], 'read:1');
      assertInterrupted(r);
      assert.equal(fs.existsSync(path.join(dst, 'manifest.json')), false);
      assert.equal((await cli(['inspect', dst])).code, 1);
      const again = await cli(['copy', gens, dst, '--json']);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await cli(['verify', dst, '--key-file', keyFile])).code, 0);
    });

    it('import: exits 130 and removes the objects it wrote', async function () {
      const file = path.join(tmp, 'gens-for-import.vvexport');
      assert.equal((await cli(['export', gens, file])).code, 0);
      const dst = path.join(tmp, 'import-interrupted');
      const r = await interrupted(['import', file, dst], 'write:1');
      assertInterrupted(r);
      assert.equal(fs.existsSync(path.join(dst, 'manifest.json')), false);
      const objects = path.join(dst, 'objects');
      assert.deepEqual(fs.existsSync(objects) ? fs.readdirSync(objects) : [], []);
    });

    it('verify: exits 130 while an older generation is read; with --json the error is ERR_ABORTED', async function () {
      const r = await interrupted(['verify', gens, '--key-file', keyFile, '--json'], 'read:0');
      assertInterrupted(r);
      assert.deepEqual([r.json.ok, r.json.error.code], [false, 'ERR_ABORTED']);
    });

    it('a second Ctrl-C exits at once, even while the operation does not stop', async function () {
      const run = start(['copy', gens, path.join(tmp, 'copy-stuck')], { node: ['-r', HOLD], env: { VV_TEST_HOLD: 'read:0:stuck' } });
      await run.stderrMatches(/^test-hold: read held$/m);
      run.child.kill('SIGINT');
      await run.stderrMatches(/^vecvault: interrupted; stopping/m);
      run.child.kill('SIGINT');
      const r = await run.done;
      assert.equal(r.code, 130, r.stderr);
      assert.match(r.stderr, /^vecvault: interrupted again; exiting now$/m);
    });

    it('on a TTY the bar stops when the signal aborts (cursor shown again) and draws nothing more', function () {
      const { progressFor } = require('../lib/cli/progress');
      let out = '';
      const stream = { isTTY: true, columns: 80, write: (x) => ((out += x), true), on() {}, removeListener() {} };
      const ac = new AbortController();
      const p = progressFor('copy', { stderr: stream, signal: ac.signal });
      p.onProgress(10, 100);
      assert.ok(out.includes('\x1b[?25l'), 'the bar hides the cursor while it draws');
      ac.abort();
      assert.ok(out.endsWith('\x1b[?25h') || out.includes('\x1b[?25h'), 'stopping shows the cursor again');
      const after = out.length;
      p.onProgress(50, 100);
      p.stop();
      assert.equal(out.length, after);
    });
  });
});
