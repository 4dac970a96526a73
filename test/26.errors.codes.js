'use strict';
/*
 * 26.errors.codes.js: the error codes are listed in several places, and
 * they must agree.
 *
 * Owns: the cross-check, by reading the files as text, of
 *   - csrc/vecvault.h: the VV_E_* statuses, each with its ERR_* code in a
 *     comment (a status that never leaves the engine says "engine-internal");
 *   - csrc/common/status.c: the table that turns a status into err.code;
 *   - lib/errors.js: ERROR_CODES, what JS callers can branch on;
 *   - index.d.ts: the ErrorCode union;
 *   - README.md: the table under "## Errors";
 * against what can actually reach a caller: every status of status.c that is
 * not engine-internal, and every 'ERR_*' literal in lib/ and csrc/napi/ (the
 * JS-only codes, e.g. ERR_CLOSED and ERR_METADATA_CORRUPT). A code added in
 * one place only, or a place that lists a code nothing produces, fails here.
 * Every ERR_* name mentioned in the docs, index.d.ts and lib/ must be a code.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');

const ROOT = h.ROOT;
const read = (rel) => fs.readFileSync(path.join(ROOT, rel), 'utf8');
const CODE = /\bERR_[A-Z0-9_]*[A-Z0-9]\b/g;

/** Every file under `dir` (relative to ROOT) whose name passes `keep`. */
function walk(dir, keep) {
  const out = [];
  const abs = path.join(ROOT, dir);
  if (!fs.existsSync(abs)) return out;
  for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(rel, keep));
    else if (keep(e.name)) out.push(rel);
  }
  return out.sort();
}

/** Names that occur more than once in `list`. */
function duplicates(list) {
  const seen = new Set();
  return [...new Set(list.filter((x) => (seen.has(x) ? true : (seen.add(x), false))))];
}

/** "missing: ...; extra: ..." of `have` against `want`, or '' when equal. */
function difference(have, want) {
  const missing = [...want].filter((c) => !have.has(c)).sort();
  const extra = [...have].filter((c) => !want.has(c)).sort();
  const parts = [];
  if (missing.length) parts.push(`missing ${missing.join(', ')}`);
  if (extra.length) parts.push(`lists ${extra.join(', ')}, which nothing produces`);
  return parts.join('; ');
}

/* ---- the places, parsed ------------------------------------------------ */

/** vecvault.h's status enum: [{ name, value, code, internal }]. */
function headerStatuses() {
  const text = read('csrc/vecvault.h');
  const out = [];
  const line = /^\s*(VV_E_[A-Z0-9_]+)\s*=\s*(-?\d+)\s*,?\s*(?:\/\*(.*?)\*\/)?\s*$/gm;
  for (const m of text.matchAll(line)) {
    const comment = m[3] || '';
    const code = comment.match(/^\s*(ERR_[A-Z0-9_]+)/);
    out.push({ name: m[1], value: Number(m[2]), code: code ? code[1] : null, internal: /engine-internal/.test(comment) });
  }
  return out;
}

/** status.c's table: [{ name, code }], VV_OK included. */
function statusTable() {
  const text = read('csrc/common/status.c');
  return [...text.matchAll(/\{\s*(VV_(?:OK|E_[A-Z0-9_]+))\s*,\s*"([A-Z0-9_]+)"\s*,/g)].map((m) => ({ name: m[1], code: m[2] }));
}

/** The 'ERR_*' entries of the ERROR_CODES array in lib/errors.js. */
function libErrorCodes() {
  const text = read('lib/errors.js');
  const m = text.match(/const ERROR_CODES = Object\.freeze\(\[([\s\S]*?)\]\)/);
  assert.ok(m, 'lib/errors.js: no `const ERROR_CODES = Object.freeze([...])`');
  return [...m[1].matchAll(/'(ERR_[A-Z0-9_]+)'/g)].map((x) => x[1]);
}

/** The members of index.d.ts's `export type ErrorCode = ... ;`. */
function dtsErrorCodes() {
  const text = read('index.d.ts');
  const m = text.match(/export type ErrorCode =([\s\S]*?'ERR_[A-Z0-9_]+'\s*;)/);
  assert.ok(m, 'index.d.ts: no `export type ErrorCode = ...;`');
  return [...m[1].matchAll(/\|\s*'(ERR_[A-Z0-9_]+)'/g)].map((x) => x[1]);
}

/** The codes in the first column of README's "## Errors" table. */
function readmeErrorCodes() {
  const text = read('README.md');
  const m = text.match(/^## Errors\n([\s\S]*?)(?=^## )/m);
  assert.ok(m, 'README.md: no "## Errors" section');
  return [...m[1].matchAll(/^\| `(ERR_[A-Z0-9_]+)` \|/gm)].map((x) => x[1]);
}

/** 'ERR_*' string literals in JS and binding sources: the codes they throw. */
function literalCodes(files, strip) {
  const codes = new Set();
  for (const f of files) {
    let text = read(f);
    if (strip) text = strip(f, text);
    for (const m of text.matchAll(/(['"`])(ERR_[A-Z0-9_]+)\1/g)) codes.add(m[2]);
  }
  return codes;
}

const LIB_FILES = walk('lib', (n) => /\.(c|m)?js$/.test(n));
const NAPI_FILES = walk('csrc/napi', (n) => /\.(c|cc|cpp|cxx|h|hh|hpp)$/.test(n));
// The list itself is not a producer; abortError() below it is.
const stripList = (f, text) => (f === path.join('lib', 'errors.js') ? text.replace(/const ERROR_CODES = Object\.freeze\(\[[\s\S]*?\]\)/, '') : text);

/* ---- the checks ---------------------------------------------------------- */

describe('26 error codes: one list, in every place', function () {
  const header = headerStatuses();
  const table = statusTable();
  const internal = new Set(header.filter((s) => s.internal).map((s) => s.code));
  const engine = new Set(header.filter((s) => !s.internal).map((s) => s.code));
  const fromLib = literalCodes(LIB_FILES, stripList);
  const fromNapi = literalCodes(NAPI_FILES);
  const reachable = new Set([...engine, ...fromLib, ...fromNapi]);

  it('vecvault.h: every VV_E_* status has a distinct negative value and an ERR_* code in its comment', function () {
    assert.ok(header.length >= 20, `parsed only ${header.length} statuses from csrc/vecvault.h`);
    for (const s of header) {
      assert.ok(s.value < 0, `${s.name} = ${s.value} is not negative`);
      assert.ok(s.code, `${s.name} has no ERR_* code at the start of its comment in csrc/vecvault.h`);
    }
    assert.deepEqual(duplicates(header.map((s) => s.name)), [], 'a status declared twice');
    assert.deepEqual(duplicates(header.map((s) => s.value)), [], 'two statuses share a value');
    assert.deepEqual(duplicates(header.map((s) => s.code)), [], 'two statuses share a code');
  });

  it('no header but vecvault.h declares a VV_E_* status', function () {
    const elsewhere = [];
    for (const f of walk('csrc', (n) => /\.(h|c)$/.test(n))) {
      if (f === path.join('csrc', 'vecvault.h')) continue;
      for (const m of read(f).matchAll(/^\s*(?:#define\s+(VV_E_[A-Z0-9_]+)\b|(VV_E_[A-Z0-9_]+)\s*=\s*-?\d)/gm)) elsewhere.push(`${f}: ${m[1] || m[2]}`);
    }
    assert.deepEqual(elsewhere, []);
  });

  it('status.c: exactly one row per status, with the code vecvault.h names', function () {
    const byName = new Map(header.map((s) => [s.name, s]));
    const rows = table.filter((r) => r.name !== 'VV_OK');
    assert.deepEqual(duplicates(rows.map((r) => r.name)), [], 'a status with two rows in status.c');
    assert.deepEqual(duplicates(rows.map((r) => r.code)), [], 'two rows of status.c share a code string');
    for (const r of rows) {
      assert.ok(byName.has(r.name), `status.c has a row for ${r.name}, which vecvault.h does not declare`);
      assert.equal(r.code, byName.get(r.name).code, `${r.name}: status.c says ${r.code}, vecvault.h says ${byName.get(r.name).code}`);
    }
    const missing = header.filter((s) => !rows.some((r) => r.name === s.name)).map((s) => s.name);
    assert.deepEqual(missing, [], 'statuses without a row in status.c (vv_status_code would call them ERR_INTERNAL)');
  });

  it('engine-internal codes never reach JS: no binding or lib/ code throws them', function () {
    for (const c of internal) {
      assert.ok(!fromLib.has(c), `lib/ throws ${c}, which vecvault.h calls engine-internal`);
      assert.ok(!fromNapi.has(c), `csrc/napi/ throws ${c}, which vecvault.h calls engine-internal`);
    }
  });

  it('lib/errors.js ERROR_CODES lists exactly the codes that can reach a caller, once each', function () {
    const list = libErrorCodes();
    assert.deepEqual(duplicates(list), [], 'ERROR_CODES lists a code twice');
    assert.equal(difference(new Set(list), reachable), '', 'lib/errors.js ERROR_CODES');
    const runtime = require(path.join(ROOT, 'lib', 'errors.js')).ERROR_CODES;
    assert.deepEqual([...runtime], list, 'the text parse of ERROR_CODES differs from the module');
  });

  it("index.d.ts's ErrorCode union lists the same codes, once each", function () {
    const list = dtsErrorCodes();
    assert.deepEqual(duplicates(list), [], 'ErrorCode lists a code twice');
    assert.equal(difference(new Set(list), reachable), '', 'index.d.ts ErrorCode');
  });

  it("README's error table lists the same codes, once each", function () {
    const list = readmeErrorCodes();
    assert.deepEqual(duplicates(list), [], 'the README table lists a code twice');
    assert.equal(difference(new Set(list), reachable), '', 'README.md "## Errors" table');
  });

  it('every ERR_* name in the docs, index.d.ts, lib/ and csrc/ is a code', function () {
    const known = new Set([...reachable, ...internal]);
    const files = [
      'README.md',
      'index.d.ts',
      ...walk('docs', (n) => n.endsWith('.md')),
      ...LIB_FILES,
      ...walk('csrc', (n) => /\.(c|cc|cpp|h|hh|hpp)$/.test(n)),
      ...walk(path.join('test', 'session-format'), (n) => n.endsWith('.py')),
    ];
    const unknown = [];
    for (const f of files) {
      for (const m of read(f).matchAll(CODE)) if (!known.has(m[0])) unknown.push(`${f}: ${m[0]}`);
    }
    assert.deepEqual([...new Set(unknown)], []);
  });
});
