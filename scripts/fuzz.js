#!/usr/bin/env node
'use strict';
/*
 * scripts/fuzz.js: runs every libFuzzer target in test/c/fuzz for a total
 * time and reports, per target, the executions, the coverage (libFuzzer's
 * cov = edges, ft = features) and any crash.
 *
 *   npm run fuzz -- --minutes 6              split 6 minutes across the targets
 *   npm run fuzz -- --minutes 2 --build build-x   another build dir of test/c
 *
 * It runs `make -C test/c fuzz FUZZ_SECONDS=<share>`, which builds the
 * targets with clang -fsanitize=fuzzer,address,undefined, seeds each corpus
 * (test/c/fuzz/seeds.c) and keeps the corpora in <build>/fuzz/corpus/, so
 * later runs start where earlier ones stopped. The full libFuzzer output
 * goes to <build>/fuzz/last-run.log. Exits non-zero on a crash, a failed
 * build, or when clang or libFuzzer is missing (with the package to
 * install). Details: docs/FUZZING.md.
 */
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const TESTC = path.join(ROOT, 'test', 'c');

function usage(msg) {
  if (msg) console.error(`fuzz: ${msg}`);
  console.error('usage: npm run fuzz -- --minutes N [--build DIR]');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { minutes: 2, build: 'build' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === '--minutes') o.minutes = Number(val());
    else if (a === '--build') o.build = val();
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!(o.minutes > 0) || !Number.isFinite(o.minutes)) usage('--minutes must be a positive number');
  if (!/^[\w.-]+$/.test(o.build)) usage('--build must be a directory name inside test/c');
  return o;
}

/* clang, and a program linked with -fsanitize=fuzzer, or a message saying what to install. */
function checkToolchain() {
  const cc = process.env.FUZZ_CC || 'clang';
  const v = spawnSync(cc, ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) return `${cc} not found: install clang (Debian/Ubuntu: apt-get install clang)`;
  const major = (/clang version (\d+)/.exec(v.stdout) || [])[1];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-fuzzcheck-'));
  try {
    const src = path.join(dir, 't.c');
    fs.writeFileSync(src, 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n');
    const r = spawnSync(cc, ['-fsanitize=fuzzer', src, '-o', path.join(dir, 't')], { encoding: 'utf8' });
    if (r.status !== 0) {
      const pkg = major ? `libclang-rt-${major}-dev` : 'libclang-rt-<version>-dev';
      return `${cc} cannot link libFuzzer (-fsanitize=fuzzer): install ${pkg} (apt-get install ${pkg})\n${r.stderr.trim()}`;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return null;
}

function targets() {
  return fs
    .readdirSync(path.join(TESTC, 'fuzz'))
    .filter((f) => /^fuzz_\w+\.c$/.test(f))
    .map((f) => f.slice(0, -2))
    .sort();
}

/* Folds one line of make + libFuzzer output into the per-target results. */
function makeParser(results) {
  let cur = null;
  return (line) => {
    let m;
    if ((m = /^== (fuzz_\w+): (\d+) s$/.exec(line))) {
      cur = { target: m[1], seconds: Number(m[2]), execs: 0, cov0: null, cov: null, ft: null, corpus: null, crash: null };
      results.push(cur);
      return;
    }
    if (!cur) return;
    if ((m = /^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+)(?: corp: (\d+)\/)?/.exec(line))) {
      if (m[2] === 'INITED') cur.cov0 = Number(m[3]);
      cur.cov = Number(m[3]);
      cur.ft = Number(m[4]);
      if (m[5]) cur.corpus = Number(m[5]);
    } else if ((m = /^stat::number_of_executed_units: (\d+)/.exec(line))) {
      cur.execs = Number(m[1]);
    } else if ((m = /Test unit written to (\S+)/.exec(line))) {
      cur.crash = m[1];
    } else if ((m = /^(?:==\d+==\s*)?ERROR: (\w+): (.*)/.exec(line)) || (m = /^SUMMARY: (\w+): (.*)/.exec(line))) {
      if (!cur.crash) cur.crash = `${m[1]}: ${m[2]}`;
    } else if ((m = /^FAILED: (fuzz_\w+)/.exec(line)) && !cur.crash) {
      cur.crash = 'the target exited with an error (see the log)';
    }
  };
}

function table(results) {
  const rows = [['target', 'seconds', 'executions', 'exec/s', 'cov (start -> end)', 'ft', 'corpus', 'crash']];
  for (const r of results) {
    rows.push([
      r.target,
      String(r.seconds),
      String(r.execs),
      String(Math.round(r.execs / Math.max(1, r.seconds))),
      `${r.cov0 ?? '?'} -> ${r.cov ?? '?'}`,
      String(r.ft ?? '?'),
      String(r.corpus ?? '?'),
      r.crash || 'none',
    ]);
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(w[c]))).join('  ')).join('\n');
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const problem = checkToolchain();
  if (problem) {
    console.error(`fuzz: ${problem}`);
    process.exit(1);
  }
  const names = targets();
  const seconds = Math.max(1, Math.floor((o.minutes * 60) / names.length));
  console.log(`fuzz: ${names.length} targets (${names.join(', ')}), ${seconds} s each`);
  const logDir = path.join(TESTC, o.build, 'fuzz');
  fs.mkdirSync(logDir, { recursive: true });
  const logPath = path.join(logDir, 'last-run.log');
  const log = fs.createWriteStream(logPath);
  const results = [];
  const parse = makeParser(results);
  /* One stream (2>&1 in the shell), so each target's libFuzzer lines come
   * after the "== target" line make echoes before starting it. */
  const make = ['make', '-s', '-C', TESTC, 'fuzz', `FUZZ_SECONDS=${seconds}`, `BUILD=${o.build}`];
  const child = spawn('sh', ['-c', 'exec "$@" 2>&1', 'sh', ...make], { stdio: ['ignore', 'pipe', 'inherit'] });
  let pending = '';
  const feed = (chunk) => {
    log.write(chunk);
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop();
    for (const line of lines) {
      parse(line);
      if (/^== fuzz_\w+/.test(line)) console.log(line);
    }
  };
  child.stdout.on('data', feed);
  const code = await new Promise((resolve) => child.on('close', resolve));
  if (pending) parse(pending);
  await new Promise((resolve) => log.end(resolve));
  console.log(`\n${table(results)}\n\nfull output: ${path.relative(ROOT, logPath)}`);
  const crashed = results.filter((r) => r.crash);
  if (code !== 0 || crashed.length || results.length !== names.length) {
    if (results.length !== names.length) console.error(`fuzz: ${results.length} of ${names.length} targets ran (build failure? see the log)`);
    for (const r of crashed) console.error(`fuzz: ${r.target} crashed: ${r.crash}`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
