'use strict';
/*
 * 10.esm.js: the ESM entry (package.json exports "import": ./lib/index.mjs)
 * exposes the very same classes as the CommonJS entry, by package name and
 * by file path, and in a real .mjs program.
 */
const assert = require('node:assert/strict');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { spawnSync } = require('node:child_process');
const h = require('./helpers');

describe('10 ESM entry', function () {
  it("import('vecvault') exports the same VectorDB and VecvaultError as require", async function () {
    const cjs = h.vecvault();
    const esm = await import('vecvault');
    assert.equal(typeof esm.VectorDB, 'function');
    assert.equal(esm.VectorDB, cjs.VectorDB);
    assert.equal(esm.VecvaultError, cjs.VecvaultError);
  });

  it('require(\'vecvault\') by name resolves to the same module as the repo root', function () {
    assert.equal(require('vecvault'), h.vecvault());
  });

  it('lib/index.mjs imported by file URL is the same module as import(\'vecvault\')', async function () {
    const byPath = await import(pathToFileURL(path.join(h.ROOT, 'lib', 'index.mjs')).href);
    const byName = await import('vecvault');
    assert.equal(byPath.VectorDB, byName.VectorDB);
    assert.equal(byPath.VecvaultError, byName.VecvaultError);
  });

  it('a db made through the ESM entry works and throws errors CJS code recognises', async function () {
    const { VectorDB } = await import('vecvault');
    const db = new VectorDB({ dimension: 2, metric: 'l2' });
    try {
      db.add('a', [3, 4]);
      assert.equal(db.size, 1);
      h.assertClose(db.search([0, 0], 1)[0].distance, 5, 'distance');
      h.throwsCode(() => db.add('b', [1]), 'ERR_DIMENSION_MISMATCH');
    } finally {
      db.close();
    }
  });

  it('a standalone .mjs program can import { VectorDB, VecvaultError } from \'vecvault\'', function () {
    this.timeout(20000);
    const program = [
      "import { VectorDB, VecvaultError } from 'vecvault';",
      'const db = new VectorDB({ dimension: 3 });',
      "db.add('x', [1, 2, 3], { ok: true });",
      'let code = null;',
      "try { db.get(''); } catch (e) { code = e instanceof VecvaultError ? e.code : 'not-vecvault'; }",
      "const hit = (await db.searchAsync([1, 2, 3], 1))[0];",
      'db.close();',
      'console.log(JSON.stringify({ id: hit.id, meta: hit.metadata, code, closed: db.closed }));',
    ].join('\n');
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', program], {
      cwd: h.ROOT,
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(run.status, 0, `exit ${run.status} ${run.signal}\n${run.stderr}`);
    assert.deepEqual(JSON.parse(run.stdout.trim()), { id: 'x', meta: { ok: true }, code: 'ERR_INVALID_ID', closed: true });
  });
});
