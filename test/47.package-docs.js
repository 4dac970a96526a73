'use strict';
/*
 * 47.package-docs.js: what a user reads after `npm install vecvault` works.
 *
 * - The demo (`npm run demo`, the quick start's first command) with its
 *   output piped, as in CI logs: plain progress lines instead of bars, a
 *   lazy reopen that says so, and the cache's bytes against its bound.
 */
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const h = require('./helpers');

describe('47 the demo with its output piped', function () {
  this.timeout(180000);

  it('prints plain progress lines, says the reopen is lazy, and shows the cache against its bound', function () {
    const r = spawnSync(process.execPath, [path.join(h.ROOT, 'examples', 'demo.js')], {
      cwd: h.ROOT,
      env: { ...process.env, DEMO_N: '1200' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 170000,
    });
    assert.equal(r.status, 0, `demo failed:\n${r.stdout}\n${r.stderr}`);
    const out = r.stdout;
    assert.ok(!out.includes('\r'), 'no carriage-return bars when stdout is not a terminal');
    for (const what of ['indexing', 'saving']) {
      const lines = out.split('\n').filter((l) => new RegExp(`^\\s*${what}\\b.*\\d+%`).test(l));
      assert.ok(lines.length >= 2, `at least two "${what} ..%" progress lines in:\n${out}`);
      assert.ok(lines.some((l) => /100%/.test(l)), `"${what}" reaches 100% in:\n${out}`);
    }
    assert.match(out, /\blazy\b/i, 'the demo says the reopen is lazy');
    const m = /cache[^\n]*?(\d+(?:\.\d+)?) (KiB|MiB|B) of (\d+(?:\.\d+)?) (KiB|MiB|B)/i.exec(out);
    assert.ok(m, `a "cache ... X of Y" line in:\n${out}`);
    assert.match(out, /hits \d+, misses \d+/, 'the cache line shows hits and misses');
  });
});
