'use strict';
/*
 * 13.session.crash.js: a save interrupted at any point never costs a
 * committed generation.
 *
 * Owns: SIGKILL of a child process in the middle of repeated saves (the
 * session must always open as some whole generation at least as new as the
 * last one the child acknowledged, with every acknowledged vector intact),
 * and an abort through AbortSignal in the middle of a save (AbortError, and
 * the previous generation's files untouched byte for byte).
 * The child is test/helpers/children/session-crash-child.js. It kills itself
 * at a point this file picks (a progress report of its load or of its N-th
 * save, or just after an acknowledged save), never by a timer, so the
 * generations each run must acknowledge and leave are known exactly.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

const CHILD = path.join(__dirname, 'helpers', 'children', 'session-crash-child.js');
const ITERATIONS = 25;

/* A safety net only: a child that neither dies at its kill point nor ends
 * by itself is killed after this long and the run fails. */
const HANG_MS = 60000;

/* Runs the child with kill point `kill` (see the child). Resolves with its ACKs. */
function runAndKill(dir, keyHex, kill) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, keyHex, kill], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    const safety = setTimeout(() => child.kill('SIGTERM'), HANG_MS);
    child.on('close', (code, signal) => {
      clearTimeout(safety);
      if (signal !== 'SIGKILL') {
        reject(new Error(`child (${kill}) did not die at its kill point (code ${code}, signal ${signal})\nstdout:\n${out}\nstderr:\n${err}`));
        return;
      }
      const acks = [];
      let opened = null;
      for (const line of out.split('\n')) {
        const ack = /^ACK (\d+) (\d+)$/.exec(line);
        if (ack) acks.push({ generation: Number(ack[1]), size: Number(ack[2]) });
        const open = /^OPEN (\d+) (\d+)$/.exec(line);
        if (open) opened = { generation: Number(open[1]), size: Number(open[2]) };
      }
      resolve({ acks, opened, stderr: err });
    });
  });
}

/* A kill point for the next run: mostly inside a save (its first, second or
 * third; at its 1st or 2nd progress report or its last), sometimes right
 * after an acknowledged save, or inside the load when there is a session. */
function pickKill(r, haveSession) {
  const x = r();
  if (haveSession && x < 0.15) return `load:${r() < 0.5 ? 1 : 1000}`;
  if (x < 0.3) return `ack:${1 + Math.floor(r() * 2)}`;
  const report = [1, 1, 2, 1000][Math.floor(r() * 4)];
  return `save:${1 + Math.floor(r() * 3)}:${report}`;
}

/*
 * Runs the child once with kill point `kill` on the session in dir, whose
 * generation is `prev` (0: none yet), checks what it acknowledged, and
 * returns the generation the session must now hold at least and at most.
 */
async function killedRun(dir, keyHex, kill, prev) {
  const run = await runAndKill(dir, keyHex, kill);
  const [where, n] = kill.split(':');
  const what = `kill at ${kill} (from generation ${prev})`;
  if (where === 'load') {
    assert.equal(run.opened, null, `${what}: the child finished its load`);
    assert.deepEqual(run.acks, [], `${what}: acknowledged a save`);
    return { what, least: prev, most: prev };
  }
  assert.ok(run.opened, `${what}: the child did not open the session`);
  assert.equal(run.opened.generation, prev, `${what}: the child opened generation ${run.opened.generation}`);
  const acked = where === 'ack' ? Number(n) : Number(n) - 1;
  assert.deepEqual(run.acks, Array.from({ length: acked }, (_, i) => ({ generation: prev + i + 1, size: s.crashSize(prev + i + 1) })),
    `${what}: acknowledged saves`);
  /* Killed inside save N: that save may or may not have passed its commit. */
  return { what, least: prev + acked, most: where === 'ack' ? prev + acked : prev + acked + 1 };
}

/* Every vector of generations 1..gen is in `db`, exactly. */
function assertGenerations(db, gen, what) {
  assert.equal(db.size, s.crashSize(gen), `${what}: size is not that of generation ${gen}`);
  for (let g = 1; g <= gen; g++) {
    for (const item of s.crashBatch(g)) {
      const rec = db.get(item.id);
      assert.ok(rec, `${what}: ${item.id} is missing`);
      assert.deepEqual(Array.from(rec.vector), Array.from(item.vector), `${what}: vector of ${item.id}`);
      assert.deepEqual(rec.metadata, item.metadata, `${what}: metadata of ${item.id}`);
    }
  }
  assert.equal(db.has(`g${gen + 1}-0`), false, `${what}: a vector of generation ${gen + 1} is there`);
}

/* Files referenced by the manifest.json in dir. */
function referenced(dir) {
  const o = s.manifestObjects(dir);
  return new Set([...o.chunks, ...o.index].map((x) => x.name));
}

describe('13 session crash safety', function () {
  this.timeout(90000);
  afterEach(() => s.closeTracked());
  after(() => s.cleanupTmp());

  const key = s.keyFor('crash');
  const keyHex = Buffer.from(key).toString('hex');

  it(`SIGKILL at a chosen point of repeated saves, ${ITERATIONS} times: the session always opens as a whole generation`, async function () {
    const dir = s.freshPath('crash');
    const r = h.rng(1313);
    let gen = 0;
    for (let it = 0; it < ITERATIONS; it++) {
      const haveSession = fs.existsSync(path.join(dir, 'manifest.json'));
      const { what, least, most } = await killedRun(dir, keyHex, pickKill(r, haveSession), gen);
      const label = `iteration ${it}, ${what}`;
      if (!fs.existsSync(path.join(dir, 'manifest.json'))) {
        assert.equal(least, 0, `${label}: no manifest although generation ${least} was acknowledged`);
        continue;
      }
      const db = await s.loadDb(dir, { key });
      const loaded = db.loadStats.generation;
      assert.ok(loaded >= least && loaded <= most, `${label}: loaded generation ${loaded}, expected ${least}..${most}`);
      assertGenerations(db, loaded, label);
      db.close();
      gen = loaded;
    }
  });

  it('a clean save after the kills removes stray temporary files and unreferenced objects (FORMAT.md §6 step 6)', async function () {
    /* Its own killed session: a save killed after its commit, one killed at its first report. */
    const dir = s.freshPath('crash-clean');
    let killedAt = 0;
    for (const kill of ['ack:1', 'save:1:1000', 'save:2:1']) {
      await killedRun(dir, keyHex, kill, killedAt);
      killedAt = (await VectorDB.inspect(dir)).generation;
    }
    /* What a kill at the worst moment of each write step leaves, whether or not the kills produced it. */
    const planted = ['tmp-0123456789abcdef', 'objects/tmp-0123456789abcdef', 'manifests/tmp-0123456789abcdef'];
    for (const rel of planted) fs.writeFileSync(path.join(dir, rel), 'half-written');
    fs.writeFileSync(path.join(dir, 'objects', 'f'.repeat(64)), 'an object no manifest references');
    const db = await s.loadDb(dir, { key });
    const gen = db.loadStats.generation;
    db.addBatch(s.crashBatch(gen + 1));
    assert.equal((await db.save(dir)).generation, gen + 1);
    const live = referenced(dir);
    for (const f of fs.readdirSync(path.join(dir, 'manifests'))) {
      const j = JSON.parse(fs.readFileSync(path.join(dir, 'manifests', f)).subarray(s.BODY_AT, -2));
      for (const o of [...j.chunks, ...j.index.base, ...j.index.deltas]) live.add(o.name);
    }
    assert.deepEqual(fs.readdirSync(path.join(dir, 'objects')).sort(), [...live].sort(), 'objects/ holds exactly what the retained manifests reference');
    assertGenerations(await s.loadDb(dir, { key }), gen + 1, 'after the clean save');
    assert.deepEqual(s.listFiles(dir).filter(s.isTmp), [], 'stray temporary files survive a clean save');
  });

  describe('abort through AbortSignal', function () {
    it('aborting on the first progress report rejects with AbortError and leaves the previous generation byte for byte', async function () {
      const dir = s.freshPath('abort');
      const key = s.keyFor('abort');
      const db = s.newDb({ dimension: 32, index: 'flat', chunkSize: 200, key });
      const ids = s.fill(db, 6000, { seed: 131, unicode: false });
      await db.save(dir);
      const state = s.capture(db, ids);
      const before = s.hashDir(dir);

      const more = s.fill(db, 6000, { prefix: 'more-', seed: 132, unicode: false });
      const ac = new AbortController();
      let calls = 0;
      const err = await h.rejectsCode(() => db.save(dir, {
        signal: ac.signal,
        onProgress() {
          calls++;
          ac.abort();
        },
      }), 'ERR_ABORTED');
      assert.equal(err.name, 'AbortError');
      assert.ok(calls >= 1);

      /* Every file of generation 1 is as it was; new files can only be unreferenced objects. */
      const after = s.hashDir(dir);
      for (const [rel, hash] of Object.entries(before)) assert.equal(after[rel], hash, `${rel} changed or vanished`);
      const refs = referenced(dir);
      for (const rel of Object.keys(after)) {
        if (rel in before) continue;
        assert.ok(rel.startsWith('objects/') && !refs.has(rel.slice(8)), `unexpected new file ${rel}`);
      }
      assert.deepEqual(s.listFiles(dir).filter(s.isTmp), [], 'temporary files left after the abort (FORMAT.md §6)');
      assert.equal((await VectorDB.inspect(dir)).generation, 1);

      const loaded = await s.loadDb(dir, { key });
      assert.equal(loaded.loadStats.generation, 1);
      s.assertState(loaded, state, 6000);
      assert.equal(loaded.has('more-0'), false);

      /* The aborted work is not lost from memory: a plain save commits it, and sweeps the orphans. */
      const st = await db.save(dir);
      assert.equal(st.generation, 2);
      assert.deepEqual(fs.readdirSync(path.join(dir, 'objects')).sort(), [...new Set([...referenced(dir), ...Object.keys(before).filter((r) => r.startsWith('objects/')).map((r) => r.slice(8))])].sort());
      s.assertState(await s.loadDb(dir, { key }), s.capture(db, [...ids, ...more]), 12000);
    });

    it('a signal aborted before the call rejects at once and writes nothing', async function () {
      const db = s.newDb({ dimension: 4, key: s.keyFor('pre') });
      s.fill(db, 10);
      const dir = s.freshPath('preabort');
      const ac = new AbortController();
      ac.abort();
      const err = await h.rejectsCode(() => db.save(dir, { signal: ac.signal }), 'ERR_ABORTED');
      assert.equal(err.name, 'AbortError');
      assert.equal(fs.existsSync(dir), false);
      await h.rejectsCode(() => VectorDB.load(dir, { signal: ac.signal }), 'ERR_ABORTED');
    });

    it('aborting a load rejects with AbortError and the session still loads', async function () {
      const dir = s.freshPath('abortload');
      const key = s.keyFor('abortload');
      const db = s.newDb({ dimension: 64, index: 'flat', chunkSize: 200, key });
      const ids = s.fill(db, 8000, { seed: 5, unicode: false });
      await db.save(dir);
      const state = s.capture(db, ids);
      const before = s.hashDir(dir);
      /* A load can finish before the abort reaches it: that is allowed, but one of a few tries must abort. */
      let aborted = 0;
      for (let attempt = 0; attempt < 5 && aborted === 0; attempt++) {
        const ac = new AbortController();
        try {
          const loaded = await VectorDB.load(dir, { key, threads: 1, signal: ac.signal, onProgress: () => ac.abort() });
          s.assertState(loaded, state, 8000, 'a load that finished before the abort');
          loaded.close();
        } catch (err) {
          h.assertVecvaultError(err, 'ERR_ABORTED');
          assert.equal(err.name, 'AbortError');
          aborted++;
        }
        assert.deepEqual(s.hashDir(dir), before);
      }
      assert.equal(aborted, 1, 'no load was aborted in 5 tries');
      s.assertState(await s.loadDb(dir, { key }), state, 8000);
    });
  });
});
