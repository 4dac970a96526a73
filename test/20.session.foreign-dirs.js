'use strict';
/*
 * 20.session.foreign-dirs.js: where a save may write, and what its
 * garbage collection may delete (docs/FORMAT.md
 * section 1, "Where a save may write").
 *
 * Owns: save() into a directory that is not a session (refused with
 * ERR_NOT_A_SESSION, every file and directory exactly as before, no lock
 * file, no subdirectory), into '/', into an empty directory, a missing
 * path, a session, and the leftovers of a first save interrupted anywhere;
 * and the GC of a real session leaving alone every name the format does not
 * write (near-misses of object, manifest and temporary names included),
 * while still deleting what the session itself left behind.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');
const s = require('./helpers/session');

const { VectorDB } = h.vecvault();

const HEX64 = 'ab'.repeat(32);
const TMP16 = '0123456789abcdef';

function smallDb() {
  const db = s.newDb({ dimension: 4, encryptAtRest: false, threads: 1 });
  s.fill(db, 30, { seed: 3 });
  return db;
}

/* Every entry under dir (directories too, with a trailing /), and the
 * bytes of every file: what "nothing is touched" compares. */
function snapshot(dir) {
  const out = {};
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) {
        out[r] = `-> ${fs.readlinkSync(path.join(dir, r))}`;
      } else if (e.isDirectory()) {
        out[`${r}/`] = 'dir';
        walk(r);
      } else {
        out[r] = fs.readFileSync(path.join(dir, r)).toString('base64');
      }
    }
  };
  walk('');
  return out;
}

function writeFiles(dir, files) {
  for (const [rel, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), body);
  }
}

async function assertRefused(db, dir, what) {
  const before = snapshot(dir);
  const err = await h.rejectsCode(() => db.save(dir), 'ERR_NOT_A_SESSION', what);
  assert.ok(err.message.includes(dir), `${what}: the message names the directory: ${err.message}`);
  assert.deepEqual(snapshot(dir), before, `${what}: the directory is exactly as it was`);
  return err;
}

async function assertSavesAndLoads(db, dir, what) {
  await db.save(dir);
  const back = await s.loadDb(dir);
  assert.equal(back.size, db.size, `${what}: the saved session loads back`);
}

describe('20 session: where a save may write', function () {
  afterEach(function () {
    s.closeTracked();
  });
  after(function () {
    s.cleanupTmp();
  });

  describe('refused: ERR_NOT_A_SESSION, nothing touched', function () {
    it("a project folder: manifests/deployment.yaml, objects/notes.txt, tmp-draft.txt, README.md all survive", async function () {
      const dir = s.tmpDir('foreign');
      writeFiles(dir, {
        'README.md': '# my project\n',
        'manifests/deployment.yaml': 'kind: Deployment\n',
        'objects/notes.txt': 'notes\n',
        'tmp-draft.txt': 'draft\n',
      });
      const err = await assertRefused(smallDb(), dir, 'save into a project directory');
      assert.ok(!fs.existsSync(path.join(dir, 'lock')), 'no lock file was created');
      assert.match(err.message, /README\.md|tmp-draft\.txt|not a/, 'the message names what decided it');
    });

    it('a non-empty directory of any other shape', async function () {
      const db = smallDb();
      const shapes = {
        'one stray file': { 'notes.txt': 'x' },
        'a web app manifest.json alone': { 'manifest.json': '{"name":"my app"}' },
        'a web app manifest.json beside its files': { 'manifest.json': '{"name":"my app"}', 'index.html': '<p>' },
        'format-like dirs with a foreign file in objects/': { 'objects/notes.txt': 'x', 'manifests/.keep': '' },
        'a foreign file in manifests/': { 'lock': '', 'objects/.keep': '', 'manifests/deployment.yaml': 'x' },
        'a tmp- name that is not the format\'s': { [`tmp-${TMP16}0`]: 'x' },
        'an object name in upper case': { [`objects/${HEX64.toUpperCase()}`]: 'x' },
        'an object name with an extension': { [`objects/${HEX64}.bak`]: 'x' },
        'a manifest name with an extension': { 'manifests/00000000000000000001.json.orig': 'x' },
      };
      for (const [what, files] of Object.entries(shapes)) {
        const dir = s.tmpDir('shape');
        writeFiles(dir, files);
        await assertRefused(db, dir, what);
      }
    });

    it("save('/') is refused before anything is created", async function () {
      const had = ['lock', 'objects', 'manifests', 'manifest.json'].filter((n) => fs.existsSync(path.join('/', n)));
      await h.rejectsCode(() => smallDb().save('/'), 'ERR_NOT_A_SESSION', "save('/')");
      const has = ['lock', 'objects', 'manifests', 'manifest.json'].filter((n) => fs.existsSync(path.join('/', n)));
      assert.deepEqual(has, had, 'nothing was created in /');
    });

    it('a symbolic link in place of objects/ or lock is not a session', async function () {
      const db = smallDb();
      const elsewhere = s.tmpDir('elsewhere');
      const dir = s.tmpDir('symdir');
      fs.symlinkSync(elsewhere, path.join(dir, 'objects'));
      await assertRefused(db, dir, 'objects/ is a symlink');
      const dir2 = s.tmpDir('symlock');
      fs.writeFileSync(path.join(elsewhere, 'target'), 'keep me');
      fs.symlinkSync(path.join(elsewhere, 'target'), path.join(dir2, 'lock'));
      await assertRefused(db, dir2, 'lock is a symlink');
      assert.equal(fs.readFileSync(path.join(elsewhere, 'target'), 'utf8'), 'keep me');
    });
  });

  describe('accepted', function () {
    it('a path that does not exist', async function () {
      await assertSavesAndLoads(smallDb(), s.freshPath('new'), 'a new path');
    });

    it('an empty directory', async function () {
      await assertSavesAndLoads(smallDb(), s.tmpDir('empty'), 'an empty directory');
    });

    it('a session, whatever else lies in it', async function () {
      const dir = s.freshPath('sess');
      const db = smallDb();
      await db.save(dir);
      fs.writeFileSync(path.join(dir, 'README.md'), 'about this session\n');
      db.add('extra', [1, 2, 3, 4]);
      await assertSavesAndLoads(db, dir, 'a session with a README beside it');
      // Another database may take the session over (a full save).
      await assertSavesAndLoads(smallDb(), dir, 'a session saved by another database');
    });

    it('what a first save interrupted anywhere leaves behind', async function () {
      const db = smallDb();
      const leftovers = {
        'only a stale lock': { 'lock': '' },
        'lock and empty objects/ and manifests/': { 'lock': '', 'objects/': null, 'manifests/': null },
        'only objects/ (killed before the lock)': { 'objects/': null },
        'temporary files everywhere, an unreferenced object': {
          'lock': '',
          [`tmp-${TMP16}`]: 'partial manifest',
          [`objects/tmp-${TMP16}`]: 'partial object',
          [`objects/${HEX64}`]: 'an object of a save that never committed',
          [`manifests/tmp-${TMP16}`]: 'partial manifest',
        },
        'a history manifest written, manifest.json not yet': {
          'lock': '',
          'objects/': null,
          'manifests/00000000000000000001.json': 'not committed',
        },
      };
      for (const [what, files] of Object.entries(leftovers)) {
        const dir = s.tmpDir('crash');
        for (const [rel, body] of Object.entries(files)) {
          if (body === null) fs.mkdirSync(path.join(dir, rel), { recursive: true });
          else writeFiles(dir, { [rel]: body });
        }
        await assertSavesAndLoads(db, dir, what);
        const left = s.listFiles(dir).filter((r) => r.includes('tmp-') || r === `objects/${HEX64}`);
        assert.deepEqual(left, [], `${what}: the save's own leftovers are collected`);
      }
    });
  });

  describe('garbage collection of a session', function () {
    it('leaves foreign files in objects/, manifests/ and the root alone', async function () {
      const dir = s.freshPath('gc');
      const db = smallDb();
      await db.save(dir);
      const foreign = {
        'README.md': 'readme',
        'tmp-draft.txt': 'draft',
        [`tmp-${TMP16}.txt`]: 'near miss',
        'objects/notes.txt': 'notes',
        [`objects/${HEX64.toUpperCase()}`]: 'upper-case near miss',
        [`objects/${HEX64}.bak`]: 'backup',
        [`objects/${HEX64.slice(2)}`]: 'short name',
        'manifests/deployment.yaml': 'kind: Deployment',
        'manifests/00000000000000000001.json.orig': 'a copy',
        'manifests/1.json': 'short',
      };
      writeFiles(dir, foreign);
      // Enough generations that history manifests and objects are collected.
      for (let g = 0; g < 5; g++) {
        db.add(`g${g}`, [g + 1, 2, 3, 4]);
        await db.save(dir);
      }
      for (const [rel, body] of Object.entries(foreign))
        assert.equal(fs.readFileSync(path.join(dir, rel), 'utf8'), body, `${rel} survives the saves`);
      // The collection still works on the session's own files.
      const histories = fs.readdirSync(path.join(dir, 'manifests')).filter((n) => /^\d{20}\.json$/.test(n));
      assert.equal(histories.length, 3, 'old history manifests are still deleted');
      const referenced = new Set();
      for (const name of histories) {
        const raw = fs.readFileSync(path.join(dir, 'manifests', name));
        const json = JSON.parse(raw.subarray(154, raw.length - 2).toString('utf8'));
        for (const o of [...json.chunks, ...json.index.base, ...json.index.deltas]) referenced.add(o.name);
      }
      const objects = fs.readdirSync(path.join(dir, 'objects')).filter((n) => /^[0-9a-f]{64}$/.test(n));
      assert.deepEqual(objects.sort(), [...referenced].sort(), 'exactly the objects of the kept generations remain');
      const back = await s.loadDb(dir);
      assert.equal(back.size, db.size);
    });
  });
});
