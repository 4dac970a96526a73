'use strict';
/*
 * 47.package-docs.js: what a user reads after `npm install vecvault` works.
 *
 * - Every markdown link in a markdown file of the packed package points at
 *   something the package holds: a relative target names a packed file or
 *   folder, and a `#anchor` names a heading of its file (GitHub's slugs).
 *   The file list is npm's own (`npm pack --dry-run --json`), so a link to
 *   a file of the repository that is not published (bench/, test/) fails.
 *   External http(s) and mailto links are allowed and never fetched.
 * - The demo (`npm run demo`, the quick start's first command) with its
 *   output piped, as in CI logs: plain progress lines instead of bars, a
 *   lazy reopen that says so, and the cache's bytes against its bound.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const h = require('./helpers');

/* The package's files as npm packs them, relative, with forward slashes. */
function packedFiles() {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: h.ROOT,
    encoding: 'utf8',
    timeout: 120000,
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, `npm pack --dry-run failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout);
  return out[0].files.map((f) => f.path.replace(/\\/g, '/'));
}

/* The text a link parser should see: fenced code blocks and code spans blanked out. */
function prose(markdown) {
  const lines = markdown.split('\n');
  let fence = null;
  const kept = lines.map((line) => {
    const m = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length) fence = null;
      return '';
    }
    if (m) {
      fence = m[1];
      return '';
    }
    return line;
  });
  return kept.join('\n').replace(/(`+)[\s\S]*?\1/g, (s) => ' '.repeat(s.length));
}

/* GitHub's heading ids (github-slugger): lowercase, drop what is neither a
 * letter, a digit, a connector (`_`), a space nor a hyphen, spaces to hyphens,
 * and a repeated slug gets -1, -2, ... */
function headingSlugs(markdown) {
  const slugs = new Set();
  const seen = new Map();
  for (const line of prose(markdown.replace(/`([^`]*)`/g, '$1')).split('\n')) {
    const m = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[1]
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/<[^>]+>/g, '');
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) || 0;
    seen.set(base, n + 1);
    slugs.add(n === 0 ? base : `${base}-${n}`);
  }
  return slugs;
}

/* Every link target in a markdown file: inline links and images, reference
 * definitions and HTML href/src attributes, outside code. */
function linkTargets(markdown) {
  const text = prose(markdown);
  const targets = [];
  const inline = /!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g;
  for (const m of text.matchAll(inline)) targets.push(m[1].replace(/^<|>$/g, ''));
  for (const m of text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/gm)) targets.push(m[1]);
  for (const m of text.matchAll(/<(?:a|img)\b[^>]*\b(?:href|src)\s*=\s*["']([^"']*)["']/gi)) targets.push(m[1]);
  return targets;
}

/* What is wrong with one link of `file` (a packed path), or null. */
function deadLink(file, target, files, dirs, slugsOf) {
  if (/^(https?|mailto):/i.test(target)) return null;
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return 'a scheme that does not resolve inside the package';
  const hash = target.indexOf('#');
  const rel = decodeURI(hash < 0 ? target : target.slice(0, hash));
  const anchor = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
  let resolved = file;
  if (rel !== '') {
    resolved = path.posix.normalize(rel.startsWith('/') ? rel.slice(1) : path.posix.join(path.posix.dirname(file), rel));
    resolved = resolved.replace(/\/$/, '');
    if (resolved === '..' || resolved.startsWith('../')) return 'points outside the package';
    if (!files.has(resolved) && !dirs.has(resolved)) return 'not in the package';
  }
  if (anchor !== null && anchor !== '' && resolved.endsWith('.md') && files.has(resolved)) {
    if (!slugsOf(resolved).has(anchor)) return `no heading with the id "${anchor}" in ${resolved}`;
  }
  return null;
}

describe('47 the packed package\'s documentation', function () {
  this.timeout(180000);
  let files;

  before(function () {
    files = packedFiles();
  });

  it('checks what it claims: the link parser and the slugs', function () {
    const md = [
      '# Install',
      '## Errors and `ERR_NOT_BUILT`',
      '## Sessions: crash-safe, lazy',
      '## Install',
      'See [a](docs/A.md#x) and ![i](img.png "t")',
      '[ref]: ../up.md',
      '`[not](a-link.md)` and',
      '```',
      '[nor](this.md)',
      '```',
      '<a href="other.md">x</a> [web](https://example.com/x)',
    ].join('\n');
    assert.deepEqual(linkTargets(md).sort(), ['../up.md', 'docs/A.md#x', 'https://example.com/x', 'img.png', 'other.md'].sort());
    assert.deepEqual([...headingSlugs(md)], ['install', 'errors-and-err_not_built', 'sessions-crash-safe-lazy', 'install-1']);
    const set = new Set(['README.md', 'docs/A.md']);
    const dirs = new Set(['docs']);
    const slugs = () => new Set(['x']);
    assert.equal(deadLink('README.md', 'docs/A.md#x', set, dirs, slugs), null);
    assert.equal(deadLink('README.md', 'docs/', set, dirs, slugs), null);
    assert.equal(deadLink('docs/A.md', '../README.md', set, dirs, slugs), null);
    assert.match(deadLink('README.md', 'docs/A.md#y', set, dirs, slugs), /no heading/);
    assert.match(deadLink('README.md', 'bench/README.md', set, dirs, slugs), /not in the package/);
    assert.match(deadLink('README.md', '../x.md', set, dirs, slugs), /outside/);
    assert.equal(deadLink('README.md', 'https://example.com', set, dirs, slugs), null);
  });

  it('packs the README, the LICENSE and the docs the README links to', function () {
    for (const f of ['README.md', 'LICENSE', 'package.json', 'docs/PLATFORMS.md', 'docs/CLI.md', 'docs/LANGCHAIN.md']) {
      assert.ok(files.includes(f), `${f} is not in the package`);
    }
  });

  it('every link in every packed markdown file resolves inside the package', function () {
    const set = new Set(files);
    const dirs = new Set();
    for (const f of files) for (let d = path.posix.dirname(f); d !== '.'; d = path.posix.dirname(d)) dirs.add(d);
    const cache = new Map();
    const slugsOf = (f) => {
      if (!cache.has(f)) cache.set(f, headingSlugs(fs.readFileSync(path.join(h.ROOT, f), 'utf8')));
      return cache.get(f);
    };
    const dead = [];
    let checked = 0;
    for (const file of files.filter((f) => f.endsWith('.md'))) {
      for (const target of linkTargets(fs.readFileSync(path.join(h.ROOT, file), 'utf8'))) {
        checked++;
        const why = deadLink(file, target, set, dirs, slugsOf);
        if (why) dead.push(`${file}: (${target}) ${why}`);
      }
    }
    assert.ok(checked > 10, `only ${checked} links found: the parser is broken`);
    assert.deepEqual(dead, []);
  });
});

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
