'use strict';
/*
 * 23.session.special-files.js: files that are not regular files where a
 * session file belongs, and AbortSignal on every I/O path (docs/FORMAT.md
 * section 1).
 *
 * Owns: a FIFO in place of manifest.json, an index segment or the chunks
 * (load eager and lazy, inspect, the first lazy read by searchAsync,
 * preload) and a symbolic link in place of manifest.json or a chunk: each
 * rejects with ERR_IO, never blocks; a symlinked session directory loads;
 * an already-aborted signal rejects load, inspect, searchAsync, preload and
 * save with ERR_ABORTED before any I/O (even where that I/O would meet a
 * FIFO). The calls run in a child process (children/special-files.js) that
 * is killed after a timeout as a safety net: the pass condition is the
 * typed error of each call, not the time it took.
 */
const assert = require('node:assert/strict');
const h = require('./helpers');

const EXPECTED = {
  'manifest FIFO: load eager': 'ERR_IO',
  'manifest FIFO: load lazy': 'ERR_IO',
  'manifest FIFO: inspect': 'ERR_IO',
  'manifest FIFO: inspect, aborted signal': 'ERR_ABORTED',
  'manifest FIFO: load, aborted signal': 'ERR_ABORTED',
  'index FIFO: load eager': 'ERR_IO',
  'index FIFO: load lazy': 'ERR_IO',
  'chunk FIFO: load eager': 'ERR_IO',
  'chunk FIFO: load lazy': 'OK',
  'chunk FIFO: searchAsync, aborted signal': 'ERR_ABORTED',
  'chunk FIFO: first lazy read (searchAsync)': 'ERR_IO',
  'chunk FIFO: preload': 'ERR_IO',
  'chunk FIFO: preload, aborted signal': 'ERR_ABORTED',
  'manifest symlink: load': 'ERR_IO',
  'chunk symlink: load eager': 'ERR_IO',
  'session directory symlink: load': 'OK',
  'save, aborted signal': 'ERR_ABORTED',
  'save: never created': 'OK',
};

describe('23 session: FIFOs, symlinks and abort signals', function () {
  this.timeout(180000);
  let result;

  before(async function () {
    const run = await h.runChild('special-files', { timeoutMs: 120000 });
    result = h.assertChildOk(run, 'the special-files child (killed if a call blocked)');
  });

  for (const [name, code] of Object.entries(EXPECTED)) {
    it(`${name} -> ${code}`, function () {
      assert.equal(result[name], code);
    });
  }
});
