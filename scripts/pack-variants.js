// The package as `npm pack` makes it, twice: with the prebuilt binary that
// scripts/prebuild.js makes, and without one (what a platform without a
// prebuild gets). For the install test (test/46) and the install benchmark
// (bench/install.js); the working tree is not touched.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd} (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Packs `dir` (scripts ignored) into `dest`: { file, bytes, unpackedBytes, files }. */
function pack(dir, dest) {
  fs.mkdirSync(dest, { recursive: true });
  const [info] = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], dir));
  return { file: path.join(dest, info.filename), bytes: info.size, unpackedBytes: info.unpackedSize, files: info.entryCount };
}

/** Both tarballs, made under the directory `tmp`: { withPrebuild, withoutPrebuild }. */
function packVariants(tmp) {
  run(process.execPath, [path.join(__dirname, 'prebuild.js'), '--out', path.join(tmp, 'prebuilt')], ROOT);
  const src = path.join(tmp, 'src');
  fs.mkdirSync(src, { recursive: true });
  run('tar', ['-xzf', pack(ROOT, path.join(tmp, 'base')).file, '-C', src], tmp);
  const pkg = path.join(src, 'package');
  fs.rmSync(path.join(pkg, 'prebuilds'), { recursive: true, force: true });
  const withoutPrebuild = pack(pkg, path.join(tmp, 'without'));
  fs.cpSync(path.join(tmp, 'prebuilt', 'prebuilds'), path.join(pkg, 'prebuilds'), { recursive: true });
  const withPrebuild = pack(pkg, path.join(tmp, 'with'));
  return { withPrebuild, withoutPrebuild };
}

module.exports = { packVariants };
