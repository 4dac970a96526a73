'use strict';
// Makes the benchmarks runnable on a fresh machine: installs bench/'s own
// dependencies (kept out of the root package so they never reach users) and
// Debian's dataset-fashion-mnist. Safe to run repeatedly; does nothing when
// everything is present. `node bench/setup.js` runs it on its own.

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { ensureFashionMnist } = require('./data');

// The comparison libraries: without these the ANN benchmark cannot run.
const REQUIRED = ['hnswlib-node', 'usearch'];
// Needed by later comparisons only; a failed install is reported, not fatal.
const OPTIONAL = ['@lancedb/lancedb', 'apache-arrow'];

function installed(name) {
  return fs.existsSync(path.join(__dirname, 'node_modules', ...name.split('/'), 'package.json'));
}

function ensureDeps({ log = console.error } = {}) {
  const missing = [...REQUIRED, ...OPTIONAL].filter((n) => !installed(n));
  if (missing.length === 0) return { missing: [] };
  log(`[setup] installing bench dependencies (missing: ${missing.join(', ')}) with npm install in ${__dirname}`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['install', '--no-audit', '--no-fund'], { cwd: __dirname, stdio: 'inherit' });
  const still = [...REQUIRED, ...OPTIONAL].filter((n) => !installed(n));
  const fatal = still.filter((n) => REQUIRED.includes(n));
  if (fatal.length) {
    throw new Error(`bench dependencies missing after npm install (exit ${r.status}): ${fatal.join(', ')}; run \`npm install\` in ${__dirname}`);
  }
  if (still.length) log(`[setup] warning: optional bench dependencies not installed: ${still.join(', ')}`);
  return { missing: still };
}

function ensureAll(opts = {}) {
  const deps = ensureDeps(opts);
  ensureFashionMnist();
  return deps;
}

if (require.main === module) {
  try {
    ensureAll();
    console.error('[setup] bench dependencies and Fashion-MNIST are in place');
  } catch (err) {
    console.error(`[setup] ${err.message}`);
    process.exit(1);
  }
}

module.exports = { ensureDeps, ensureAll, REQUIRED, OPTIONAL };
