'use strict';
/*
 * 43.not-built.js: a package whose native addon is missing (an install that
 * skipped build scripts) or cannot be loaded says so with ERR_NOT_BUILT and
 * the command that fixes it, never ERR_INTERNAL or a bare loader error.
 * Each case is a copy of lib/ in a temporary package root, required in a
 * child process.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const h = require('./helpers');

/** A package root with lib/, its dependencies, and `addon` (bytes) at `where` if given. */
function fakePackage(tag, addon, where = 'build/Release/vecvault.node') {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `vv-notbuilt-${tag}-`));
  fs.cpSync(path.join(h.ROOT, 'lib'), path.join(root, 'lib'), { recursive: true });
  fs.copyFileSync(path.join(h.ROOT, 'package.json'), path.join(root, 'package.json'));
  fs.symlinkSync(path.join(h.ROOT, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  if (addon !== undefined) {
    fs.mkdirSync(path.dirname(path.join(root, where)), { recursive: true });
    fs.writeFileSync(path.join(root, where), addon);
  }
  return root;
}

function requireIn(root) {
  const script = `try { require(${JSON.stringify(root)}); console.log(JSON.stringify({ ok: true })); }
    catch (e) { console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message })); }`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

describe('43 a missing or unloadable addon', function () {
  this.timeout(60000);

  it('not built (build scripts skipped): ERR_NOT_BUILT naming where it looked and the command to run', function () {
    const root = fakePackage('missing');
    const out = requireIn(root);
    assert.equal(out.code, 'ERR_NOT_BUILT', out.message);
    assert.equal(out.name, 'VecvaultError');
    assert.match(out.message, /npm rebuild vecvault --build-from-source/);
    assert.ok(out.message.includes(path.join(root, 'build')), out.message);
    assert.ok(out.message.includes(path.join(root, 'prebuilds')), out.message);
    assert.match(out.message, /no prebuilt binary for linux-x64/);
  });

  it('a prebuilt binary the loader refuses: ERR_NOT_BUILT naming it, the C library it needs, and the source build', function () {
    const where = 'prebuilds/linux-x64/vecvault.glibc.node';
    const root = fakePackage('prebuilt', 'not an ELF file', where);
    const out = requireIn(root);
    assert.equal(out.code, 'ERR_NOT_BUILT', out.message);
    assert.ok(out.message.includes(path.join(root, where)), out.message);
    assert.match(out.message, /glibc 2\.34/);
    assert.match(out.message, /npm rebuild vecvault --build-from-source/);
  });

  it('a local build wins over the prebuilt binary', function () {
    const root = fakePackage('both', 'not an ELF file');
    fs.mkdirSync(path.join(root, 'prebuilds', 'linux-x64'), { recursive: true });
    fs.writeFileSync(path.join(root, 'prebuilds', 'linux-x64', 'vecvault.glibc.node'), 'also not an ELF file');
    const out = requireIn(root);
    assert.equal(out.code, 'ERR_NOT_BUILT', out.message);
    assert.ok(out.message.includes(path.join(root, 'build', 'Release', 'vecvault.node')), out.message);
  });

  it('present but not loadable (not a shared object): ERR_NOT_BUILT with the loader\'s reason', function () {
    const root = fakePackage('broken', 'not an ELF file');
    const out = requireIn(root);
    assert.equal(out.code, 'ERR_NOT_BUILT', out.message);
    assert.match(out.message, /could not be loaded/);
    assert.match(out.message, /npm rebuild vecvault/);
  });
});
