'use strict';
// Entry point of `npm run bench`: makes sure the bench dependencies and data
// are installed, then runs one benchmark script, bench/<name>.js, with the
// remaining arguments. `npm run bench` runs ann; `npm run bench -- ann
// --dataset fashion` or `npm run bench -- <name> [args]` pick another.

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const DEFAULT = 'ann';
const NOT_BENCHMARKS = new Set(['run', 'setup', 'data', 'measure']); // helpers, not benchmarks

function benchmarks() {
  return fs.readdirSync(__dirname)
    .filter((f) => f.endsWith('.js') && !NOT_BENCHMARKS.has(f.slice(0, -3)))
    .map((f) => f.slice(0, -3))
    .sort();
}

function main(argv) {
  const args = argv.slice();
  const name = args.length && !args[0].startsWith('-') ? args.shift() : DEFAULT;
  const known = benchmarks();
  if (!known.includes(name)) {
    console.error(`bench: unknown benchmark "${name}" (available: ${known.join(', ')})`);
    return 2;
  }
  try {
    require('./setup').ensureAll();
  } catch (err) {
    console.error(`bench: setup failed: ${err.message}`);
    return 1;
  }
  const r = spawnSync(process.execPath, [path.join(__dirname, `${name}.js`), ...args], { stdio: 'inherit' });
  if (r.error) { console.error(`bench: ${r.error.message}`); return 1; }
  return r.status === null ? 1 : r.status;
}

process.exitCode = main(process.argv.slice(2));
