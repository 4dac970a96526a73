// `npm run package:prebuild`: makes the prebuilt binary the npm package carries, in
// prebuilds/linux-x64/ (docs/PLATFORMS.md).
//
// prebuildify builds the addon once for N-API (one binary for every Node
// version) in a staging copy, so a working tree's build/ is never touched.
// The binary links libsodium and libcbor dynamically: Debian's libsodium.a
// is not position-independent and libcbor ships no static library, so both
// shared libraries are copied next to the addon, with their licences, and
// the addon finds them there through its $ORIGIN runpath. The script then
// checks the result: the bundled libraries may need nothing but the C
// library, and a child process that loads the addon must map them from the
// prebuild directory, not from the system.
//
//   node scripts/prebuild.js [--out <dir>]   (default: the package root)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync, spawnSync } = require('child_process');
const { parseArgs } = require('util');

const ROOT = path.join(__dirname, '..');
const TUPLE = 'linux-x64';
/** Libraries the addon links that are bundled, by soname prefix, with the Debian package holding their licence. */
const BUNDLED = [
  { prefix: 'libsodium.so.', doc: 'libsodium23' },
  { prefix: 'libcbor.so.', doc: 'libcbor0.8' },
];
/** What a bundled library may itself need: the C library and the loader, present on every glibc system. */
const SYSTEM = new Set(['libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'ld-linux-x86-64.so.2']);
/** The package files the build reads. */
const SOURCES = ['package.json', 'binding.gyp', 'csrc', 'scripts'];

function fail(message) {
  process.stderr.write(`prebuild: ${message}\n`);
  process.exit(1);
}

/** The shared libraries an ELF file needs, by soname (`readelf -d`). */
function needed(file) {
  const out = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

/** soname → the file the loader resolves it to for `file` (`ldd`). */
function resolved(file) {
  const out = execFileSync('ldd', [file], { encoding: 'utf8' });
  const map = new Map();
  for (const m of out.matchAll(/^\s*(\S+) => (\S+) \(/gm)) map.set(m[1], m[2]);
  return map;
}

/** node-gyp: npm's copy when run from an npm script, else the one npm ships beside this Node. */
function nodeGyp() {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  const bundled = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (fs.existsSync(bundled)) return bundled;
  fail('node-gyp was not found: run this as `npm run package:prebuild`.');
}

function stage() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vecvault-prebuild-'));
  for (const name of SOURCES) fs.cpSync(path.join(ROOT, name), path.join(dir, name), { recursive: true });
  // binding.gyp asks node-addon-api for its headers from the staging directory.
  const modules = path.dirname(path.dirname(require.resolve('node-addon-api/package.json')));
  fs.symlinkSync(modules, path.join(dir, 'node_modules'), 'dir');
  return dir;
}

function build(dir) {
  const env = { ...process.env, VECVAULT_PREBUILD: '1', PREBUILD_NODE_GYP: nodeGyp() };
  // Node's headers from the system when it has them, so nothing is downloaded.
  if (!env.npm_config_nodedir && fs.existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';
  const r = spawnSync(process.execPath, [require.resolve('prebuildify/bin.js'), '--napi', '--strip', '--tag-libc'], { cwd: dir, env, stdio: 'inherit' });
  if (r.status !== 0) fail(`prebuildify failed (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}).`);
  const out = path.join(dir, 'prebuilds', TUPLE);
  const addons = fs.readdirSync(out).filter((f) => f.endsWith('.node'));
  if (addons.length !== 1) fail(`expected one addon in ${out}, found: ${addons.join(', ') || 'none'}`);
  return { out, addon: path.join(out, addons[0]) };
}

/** Copies the bundled libraries next to the addon under their sonames, with their licences. */
function bundle({ out, addon }) {
  const runpath = execFileSync('readelf', ['-d', addon], { encoding: 'utf8' });
  if (!/\((?:RUNPATH|RPATH)\)\s+Library (?:runpath|rpath): \[\$ORIGIN\]/.test(runpath)) fail(`${addon} has no $ORIGIN runpath.`);
  const where = resolved(addon);
  for (const { prefix, doc } of BUNDLED) {
    const soname = needed(addon).find((n) => n.startsWith(prefix));
    if (!soname) fail(`${addon} does not link ${prefix}*`);
    const file = where.get(soname);
    if (!file) fail(`the loader does not resolve ${soname} for ${addon}.`);
    const extra = needed(file).filter((n) => !SYSTEM.has(n));
    if (extra.length) fail(`${file} needs ${extra.join(', ')}, which a prebuild cannot assume.`);
    fs.copyFileSync(fs.realpathSync(file), path.join(out, soname));
    const copyright = path.join('/usr/share/doc', doc, 'copyright');
    if (!fs.existsSync(copyright)) fail(`${copyright} is missing: the licence must travel with the library.`);
    fs.copyFileSync(copyright, path.join(out, `${soname}.LICENSE`));
  }
}

function compareVersions(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] || 0) !== (b[i] || 0)) return (a[i] || 0) - (b[i] || 0);
  return 0;
}

/** The newest version of each of glibc's and libstdc++'s symbol sets that `files` need, e.g. ['GLIBC_2.34', 'GLIBCXX_3.4.30']. */
function floors(files) {
  const newest = new Map();
  for (const file of files) {
    const out = execFileSync('objdump', ['-T', file], { encoding: 'utf8' });
    for (const [, set, version] of out.matchAll(/\((GLIBC|GLIBCXX|CXXABI)_([0-9.]+)\)/g)) {
      const v = version.split('.').map(Number);
      if (!newest.has(set) || compareVersions(v, newest.get(set)) > 0) newest.set(set, v);
    }
  }
  return [...newest].map(([set, v]) => `${set}_${v.join('.')}`);
}

/** Loads the addon in a child and returns the files its bundled libraries were mapped from. */
function mappedFrom(addon) {
  const probe =
    `require(${JSON.stringify(addon)});` +
    "const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');" +
    "const libs = new Set(maps.split('\\n').map((l) => l.split(/\\s+/)[5]).filter((f) => f && /\\/lib(sodium|cbor)\\.so/.test(f)));" +
    'process.stdout.write(JSON.stringify([...libs]));';
  const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
  if (r.status !== 0) fail(`the prebuilt addon does not load: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function main() {
  const { values } = parseArgs({ options: { out: { type: 'string', default: ROOT } } });
  if (`${process.platform}-${process.arch}` !== TUPLE) fail(`prebuilt binaries are made on ${TUPLE} only, not ${process.platform}-${process.arch} (docs/PLATFORMS.md).`);
  const dir = stage();
  try {
    const built = build(dir);
    bundle(built);
    const libs = mappedFrom(built.addon);
    const stray = libs.filter((f) => path.dirname(f) !== built.out);
    if (libs.length !== BUNDLED.length || stray.length) fail(`the addon mapped ${libs.join(', ')}, not only its bundled copies.`);
    const target = path.join(path.resolve(values.out), 'prebuilds', TUPLE);
    fs.rmSync(target, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.cpSync(built.out, target, { recursive: true });
    const libsIn = fs.readdirSync(built.out).filter((f) => !f.endsWith('.LICENSE')).map((f) => path.join(built.out, f));
    process.stdout.write(`prebuild: ${target}: ${fs.readdirSync(target).join(', ')}\n`);
    process.stdout.write(`prebuild: it needs ${floors(libsIn).join(', ')} or newer\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
