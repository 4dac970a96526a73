// Runs before a source build of the addon (the package's install script runs
// it when no prebuilt binary loads): fails early, with one clear message and
// the one command that installs what is missing on this OS, instead of a
// wall of errors from node-gyp.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const LIBS = ['libsodium', 'libcbor'];

/** Install lines by OS family: every tool and library a source build needs. */
const LINES = {
  debian: 'sudo apt-get install -y build-essential python3 pkg-config libsodium-dev libcbor-dev',
  fedora: 'sudo dnf install -y gcc gcc-c++ make python3 pkgconf-pkg-config libsodium-devel libcbor-devel',
  suse: 'sudo zypper install -y gcc gcc-c++ make python3 pkg-config libsodium-devel libcbor-devel',
  alpine: 'apk add build-base python3 pkgconf libsodium-dev libcbor-dev',
  arch: 'sudo pacman -S --needed base-devel python pkgconf libsodium libcbor',
  darwin: 'xcode-select --install; brew install pkg-config libsodium libcbor',
};

/** Which os-release IDs belong to which family. */
const FAMILIES = {
  debian: ['debian', 'ubuntu', 'linuxmint', 'pop', 'raspbian'],
  fedora: ['fedora', 'rhel', 'centos', 'rocky', 'almalinux', 'amzn', 'ol'],
  suse: ['suse', 'opensuse', 'opensuse-leap', 'opensuse-tumbleweed', 'sles'],
  alpine: ['alpine'],
  arch: ['arch', 'manjaro', 'endeavouros'],
};

/** The fields of an /etc/os-release text. */
function parseOsRelease(text) {
  const out = {};
  for (const line of String(text).split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

/**
 * The OS family for `platform` and an /etc/os-release text, or null when
 * it is not one we know: ID first, then each of ID_LIKE in order.
 */
function family(platform, osRelease) {
  if (platform === 'darwin') return 'darwin';
  if (platform !== 'linux') return null;
  const rel = parseOsRelease(osRelease || '');
  const ids = [rel.ID, ...(rel.ID_LIKE || '').split(/\s+/)].filter(Boolean).map((s) => s.toLowerCase());
  for (const id of ids) {
    for (const [name, members] of Object.entries(FAMILIES)) if (members.includes(id)) return name;
  }
  return null;
}

/** The one line that installs the build's dependencies on this OS, or null. */
function installLine(platform, osRelease) {
  const f = family(platform, osRelease);
  return f ? LINES[f] : null;
}

/** Whether `name` (a command, or an absolute path) is an executable on PATH. */
function onPath(name, env) {
  if (!name) return false;
  const dirs = name.includes('/') ? [''] : String(env.PATH || '').split(path.delimiter).filter(Boolean);
  return dirs.some((dir) => {
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK);
      return fs.statSync(path.join(dir, name)).isFile();
    } catch {
      return false;
    }
  });
}

/** The first word of a command variable such as CC="ccache gcc". */
function command(value, fallback) {
  const word = String(value || '').trim().split(/\s+/)[0];
  return word || fallback;
}

/** What a source build needs and cannot find, as names a user recognises. */
function missing(env = process.env) {
  const out = [];
  if (!onPath(command(env.CC, 'cc'), env)) out.push('a C compiler (cc)');
  if (!onPath(command(env.CXX, 'c++'), env)) out.push('a C++ compiler (c++)');
  if (!onPath(command(env.MAKE, 'make'), env)) out.push('make');
  const python = env.npm_config_python || env.PYTHON;
  if (python ? !onPath(python, env) : !onPath('python3', env) && !onPath('python', env)) out.push('python3');
  if (!onPath('pkg-config', env)) {
    out.push(`pkg-config (and through it ${LIBS.join(', ')})`);
    return out;
  }
  for (const lib of LIBS) {
    try {
      execFileSync('pkg-config', ['--exists', lib], { stdio: 'ignore', env });
    } catch {
      out.push(`${lib} (the -dev/-devel package)`);
    }
  }
  return out;
}

/** The message for what is missing, with the install line for this OS. */
function message(lacking, platform, osRelease) {
  const line = installLine(platform, osRelease);
  const how = line
    ? `Install them with:\n  ${line}\n`
    : platform === 'win32'
      ? 'Windows is not supported yet: the engine is POSIX-only (see docs/PLATFORMS.md in the package).\n'
      : 'Install a C/C++ compiler, make, python3, pkg-config and the development packages of libsodium and libcbor with your system package manager.\n';
  return (
    `\nvecvault: no prebuilt binary for this platform loaded, so the native addon is built from source, ` +
    `and that needs what is missing here:\n  - ${lacking.join('\n  - ')}\n\n${how}` +
    'Then run the install again (or `npm rebuild vecvault`).\n\n'
  );
}

function readOsRelease() {
  for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      // try the next
    }
  }
  return '';
}

if (require.main === module) {
  const lacking = process.platform === 'win32' ? ['a POSIX platform'] : missing();
  if (lacking.length) {
    process.stderr.write(message(lacking, process.platform, readOsRelease()));
    process.exit(1);
  }
}

module.exports = { installLine, missing, message, parseOsRelease };
