'use strict';
// `npm run bench -- install`: what installing the package costs a user.
//
// Packs the package twice, with the prebuilt linux-x64 binary
// (scripts/prebuild.js) and without it, then measures for each tarball:
// its size, `npm install <tarball>` into a fresh project (from npm's cache,
// so the network does not count), and a cold `require('vecvault')` in a new
// process. Without the prebuild the install compiles the addon, which needs
// the build tools this machine has. Results go to bench/results/install-*.json.
//
//   node bench/install.js [--runs 3]
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { parseArgs } = require('util');
const { packVariants } = require('../scripts/pack-variants');

const ROOT = path.join(__dirname, '..');

function sh(cmd, args, cwd) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${r.stdout}\n${r.stderr}`);
  return { out: r.stdout, seconds };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Installs `tarball` into a fresh project `runs` times; median seconds of an install and of a cold require (5 per install). */
function measure(tmp, name, tarball, runs) {
  const installs = [];
  const requires = [];
  for (let i = 0; i < runs; i++) {
    const app = path.join(tmp, `${name}-${i}`);
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: `${name}-${i}`, version: '1.0.0', private: true }));
    installs.push(sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball.file], app).seconds);
    const built = fs.existsSync(path.join(app, 'node_modules', 'vecvault', 'build', 'Release', 'vecvault.node'));
    for (let j = 0; j < 5; j++) requires.push(sh(process.execPath, ['-e', "require('vecvault')"], app).seconds);
    if (i === 0) console.log(`  ${name}: ${built ? 'compiled from source' : 'used the prebuilt binary'}`);
  }
  return { installSeconds: median(installs), requireSeconds: median(requires), runs };
}

function main() {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
  const runs = Math.max(1, Number(values.runs) | 0);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-bench-install-'));
  try {
    console.log('install: building the prebuilt binary and packing');
    const { withPrebuild: prebuilt, withoutPrebuild: source } = packVariants(tmp);
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      prebuilt: { tarball: prebuilt, ...measure(tmp, 'prebuilt', prebuilt, runs) },
      source: { tarball: source, ...measure(tmp, 'source', source, 1) },
    };
    for (const k of ['prebuilt', 'source']) delete result[k].tarball.file;
    const rows = [
      ['', 'prebuilt', 'source build'],
      ['tarball', `${(prebuilt.bytes / 1024).toFixed(0)} KiB`, `${(source.bytes / 1024).toFixed(0)} KiB`],
      ['unpacked', `${(prebuilt.unpackedBytes / 1024).toFixed(0)} KiB`, `${(source.unpackedBytes / 1024).toFixed(0)} KiB`],
      ['npm install', `${result.prebuilt.installSeconds.toFixed(1)} s`, `${result.source.installSeconds.toFixed(1)} s`],
      ["cold require('vecvault')", `${(result.prebuilt.requireSeconds * 1000).toFixed(0)} ms`, `${(result.source.requireSeconds * 1000).toFixed(0)} ms`],
    ];
    for (const r of rows) console.log(`  ${r[0].padEnd(26)}${r[1].padEnd(14)}${r[2]}`);
    const out = path.join(__dirname, 'results', `install-${result.date.replace(/[:.]/g, '-')}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    console.log(`install: wrote ${path.relative(ROOT, out)}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main();
