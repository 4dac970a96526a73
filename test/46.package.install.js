'use strict';
/*
 * 46.package.install.js: the packed tarball installs and works where a Node
 * service runs but nothing else is: no libsodium or libcbor, no -dev
 * packages, no compiler, make, python3 or pkg-config.
 *
 * The test makes the prebuilt binary (scripts/prebuild.js), packs it into
 * the tarball, and installs that into a scratch project inside a private
 * mount namespace (`unshare -rm`) where the system's libsodium and libcbor,
 * their headers and pkg-config files are hidden behind empty files, and PATH
 * holds only node and npm. Controls in the same namespace show the hiding is
 * real: the repository's own build, linked to the system libraries, cannot
 * load there. Without a prebuilt binary the same install fails with the
 * dependency check's one message and the OS's install line.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const h = require('./helpers');
const deps = require('../scripts/check-deps');
const { packVariants } = require('../scripts/pack-variants');

const TUPLE = 'linux-x64';

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 600000, ...opts });
  if (r.error) throw r.error;
  return r;
}

function ok(r, what) {
  assert.equal(r.status, 0, `${what} failed (${r.status}, ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Where `tool` is on this PATH (resolved before PATH is stripped). */
function which(tool) {
  return fs.realpathSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim());
}

/** The real files of the libraries the repository's build links, their headers and pkg-config files. */
function systemFiles() {
  const ldd = execFileSync('ldd', [path.join(h.ROOT, 'build', 'Release', 'vecvault.node')], { encoding: 'utf8' });
  const libs = [...ldd.matchAll(/^\s*(lib(?:sodium|cbor)\.so\S*) => (\S+) \(/gm)].map((m) => fs.realpathSync(m[2]));
  assert.equal(libs.length, 2, `the repository's build should link libsodium and libcbor:\n${ldd}`);
  const extra = [];
  for (const lib of ['libsodium', 'libcbor']) {
    const pc = execFileSync('pkg-config', ['--variable=pcfiledir', lib], { encoding: 'utf8' }).trim();
    extra.push(path.join(pc, `${lib}.pc`));
  }
  for (const header of ['/usr/include/sodium.h', '/usr/include/cbor.h']) if (fs.existsSync(header)) extra.push(header);
  return { libs, all: [...libs, ...extra] };
}

describe('46 the packed tarball on a machine without the libraries or a compiler', function () {
  this.timeout(900000);
  let tmp;
  let bin;
  let hide;
  let withPrebuild;
  let withoutPrebuild;
  let tools;

  /** Runs `command` (a shell line) in the stripped namespace, from `cwd`. */
  function hidden(command, cwd) {
    const mounts = hide.map((f) => `${tools.mount} --bind ${JSON.stringify(path.join(tmp, 'empty'))} ${JSON.stringify(f)}`).join(' && ');
    const env = { HOME: process.env.HOME, PATH: bin, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
    return run(tools.unshare, ['-rm', '--', '/bin/sh', '-c', `${mounts} && cd ${JSON.stringify(cwd)} && ${command}`], { env });
  }

  function project(name) {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
    return dir;
  }

  before(function () {
    if (`${process.platform}-${process.arch}` !== TUPLE) this.skip(); // prebuilt binaries are made on linux-x64 only
    if (run('unshare', ['-rm', '--', 'true']).status !== 0) this.skip(); // no mount namespaces here: nothing can be hidden
    tools = { unshare: which('unshare'), mount: which('mount') };
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-install-'));
    fs.writeFileSync(path.join(tmp, 'empty'), '');
    bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    fs.symlinkSync(which('npm'), path.join(bin, 'npm'));
    fs.symlinkSync('/bin/sh', path.join(bin, 'sh')); // npm runs scripts with sh, found on PATH
    hide = systemFiles().all;

    // The package as npm packs it, once without and once with the prebuilt binary.
    const packs = packVariants(tmp);
    withoutPrebuild = packs.withoutPrebuild.file;
    withPrebuild = packs.withPrebuild.file;
  });

  after(function () {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('the tarball carries the addon, the two libraries and their licences', function () {
    const list = ok(run('tar', ['-tzf', withPrebuild]), 'tar -t').stdout.split('\n');
    for (const f of ['vecvault.glibc.node', 'libsodium.so.23', 'libcbor.so.0.8', 'libsodium.so.23.LICENSE', 'libcbor.so.0.8.LICENSE']) {
      assert.ok(list.includes(`package/prebuilds/${TUPLE}/${f}`), `${f} is not in the tarball:\n${list.join('\n')}`);
    }
  });

  it('controls: inside the namespace the system libraries, pkg-config and the compiler are gone', function () {
    const addon = path.join(h.ROOT, 'build', 'Release', 'vecvault.node');
    const r = hidden(`node -e 'require(${JSON.stringify(addon)})'`, tmp);
    assert.notEqual(r.status, 0, 'the system-linked build loaded although its libraries were hidden');
    assert.match(r.stderr, /libsodium|libcbor/);
    for (const tool of ['cc', 'c++', 'make', 'python3', 'pkg-config']) {
      assert.notEqual(hidden(`command -v ${tool}`, tmp).status, 0, `${tool} is reachable`);
    }
    const pc = hidden('/usr/bin/pkg-config --exists libsodium || exit 3', tmp);
    assert.equal(pc.status, 3, 'pkg-config still finds libsodium');
  });

  it('installs without building, and stores, encrypts, saves, opens lazily and searches with its bundled libraries', function () {
    const app = project('app');
    ok(hidden(`npm install --prefer-offline --no-audit --no-fund ${JSON.stringify(withPrebuild)}`, app), 'npm install (prebuilt)');
    const installed = path.join(app, 'node_modules', 'vecvault');
    assert.ok(!fs.existsSync(path.join(installed, 'build')), 'the install built from source instead of using the prebuilt binary');
    fs.writeFileSync(
      path.join(app, 'check.js'),
      `'use strict';
const fs = require('fs');
const { VectorDB } = require('vecvault');
(async () => {
  const key = Buffer.alloc(32, 9);
  const db = new VectorDB({ dimension: 8, metric: 'cosine', key });
  let s = 7;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  for (let i = 0; i < 300; i++) db.add('v' + i, Float32Array.from({ length: 8 }, rnd), { i });
  const q = Float32Array.from({ length: 8 }, rnd);
  const before = db.search(q, 5).map((r) => r.id);
  await db.save('session');
  const lazy = await VectorDB.load('session', { key, lazy: true });
  const after = (await lazy.searchAsync(q, 5)).map((r) => r.id);
  const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5]).filter((f) => f && /lib(sodium|cbor)\\.so/.test(f));
  console.log(JSON.stringify({ before, after, lazy: lazy.loadStats.lazy, maps: [...new Set(maps)] }));
})().catch((e) => { console.error(e); process.exit(1); });
`
    );
    const r = ok(hidden('node check.js', app), 'using the installed package');
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(out.before.length, 5);
    assert.deepEqual(out.after, out.before);
    assert.equal(out.lazy, true);
    const dir = path.join(fs.realpathSync(installed), 'prebuilds', TUPLE);
    assert.equal(out.maps.length, 2, `expected libsodium and libcbor mapped: ${out.maps}`);
    for (const f of out.maps) assert.equal(path.dirname(f), dir, `${f} was not loaded from the prebuild`);
  });

  it('installs with --ignore-scripts too: the prebuilt binary needs no install step', function () {
    const app = project('noscripts');
    ok(hidden(`npm install --ignore-scripts --prefer-offline --no-audit --no-fund ${JSON.stringify(withPrebuild)}`, app), 'npm install --ignore-scripts');
    const r = ok(hidden(`node -e "const { VectorDB } = require('vecvault'); const db = new VectorDB({ dimension: 2 }); db.add('a', [1, 0]); console.log(db.search([1, 0], 1)[0].id)"`, app), 'require');
    assert.equal(r.stdout.trim(), 'a');
  });

  it('without a prebuilt binary the install stops with what is missing and the install line for this OS', function () {
    const app = project('source');
    const r = hidden(`npm install --prefer-offline --no-audit --no-fund ${JSON.stringify(withoutPrebuild)}`, app);
    assert.notEqual(r.status, 0, 'installing without a prebuild or a compiler succeeded');
    const out = r.stdout + r.stderr;
    assert.match(out, /no prebuilt binary for this platform loaded/);
    for (const what of ['a C compiler (cc)', 'make', 'python3', 'pkg-config']) assert.ok(out.includes(what), `"${what}" not named:\n${out}`);
    const line = deps.installLine(process.platform, fs.readFileSync('/etc/os-release', 'utf8'));
    assert.ok(line && out.includes(line), `the install line is not printed:\n${out}`);
    assert.doesNotMatch(out, /gyp ERR!/, 'node-gyp ran although the check failed');
  });
});

describe('46 the source build dependency check', function () {
  const REL = {
    debian: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
    ubuntu: 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n',
    rocky: 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n',
    amazon: 'NAME="Amazon Linux"\nID="amzn"\nID_LIKE="centos rhel fedora"\n',
    alpine: 'NAME="Alpine Linux"\nID=alpine\n',
    arch: 'NAME="Arch Linux"\nID=arch\n',
    tumbleweed: 'NAME="openSUSE Tumbleweed"\nID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n',
    unknown: 'NAME="Something"\nID=something\n',
  };

  it('picks the install line from /etc/os-release: ID first, then ID_LIKE', function () {
    assert.match(deps.installLine('linux', REL.debian), /^sudo apt-get install -y build-essential python3 pkg-config libsodium-dev libcbor-dev$/);
    assert.match(deps.installLine('linux', REL.ubuntu), /apt-get/);
    assert.match(deps.installLine('linux', REL.rocky), /^sudo dnf install .*libsodium-devel libcbor-devel$/);
    assert.match(deps.installLine('linux', REL.amazon), /dnf/);
    assert.match(deps.installLine('linux', REL.alpine), /^apk add /);
    assert.match(deps.installLine('linux', REL.arch), /pacman/);
    assert.match(deps.installLine('linux', REL.tumbleweed), /zypper/);
    assert.match(deps.installLine('darwin', ''), /brew install pkg-config libsodium libcbor/);
    assert.equal(deps.installLine('linux', REL.unknown), null);
    assert.equal(deps.installLine('linux', ''), null);
    assert.equal(deps.installLine('win32', ''), null);
  });

  it('names every missing tool and library; an unknown OS still gets a useful message', function () {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-deps-'));
    try {
      const lacking = deps.missing({ PATH: empty });
      assert.deepEqual(lacking, ['a C compiler (cc)', 'a C++ compiler (c++)', 'make', 'python3', 'pkg-config (and through it libsodium, libcbor)']);
      assert.match(deps.message(lacking, 'linux', REL.unknown), /system package manager/);
      assert.match(deps.message(lacking, 'win32', ''), /Windows is not supported yet/);
      // Everything present here (this machine builds the addon): nothing missing.
      assert.deepEqual(deps.missing(process.env), []);
      // A library pkg-config cannot find is named as its development package.
      assert.deepEqual(deps.missing({ ...process.env, PKG_CONFIG_LIBDIR: empty, PKG_CONFIG_PATH: '' }), ['libsodium (the -dev/-devel package)', 'libcbor (the -dev/-devel package)']);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
