// Runs before the native build (npm "preinstall"): fails early, with one
// clear message, when a system library the addon links is missing, instead
// of a wall of compiler errors from node-gyp.
'use strict';
const { execFileSync } = require('child_process');

const NEEDED = ['libsodium', 'libcbor'];

function fail(what) {
  process.stderr.write(
    `\nvecvault: ${what}\n\n` +
      'vecvault builds a native addon that links libsodium and libcbor from the system. Install them first:\n' +
      '  Debian/Ubuntu: sudo apt-get install -y build-essential pkg-config libsodium-dev libcbor-dev\n' +
      '  Fedora/RHEL:   sudo dnf install -y gcc gcc-c++ make pkgconf-pkg-config libsodium-devel libcbor-devel\n' +
      '  macOS:         brew install pkg-config libsodium libcbor\n\n'
  );
  process.exit(1);
}

try {
  execFileSync('pkg-config', ['--version'], { stdio: 'ignore' });
} catch {
  fail('pkg-config was not found.');
}
const missing = NEEDED.filter((lib) => {
  try {
    execFileSync('pkg-config', ['--exists', lib], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
});
if (missing.length) fail(`missing system librar${missing.length > 1 ? 'ies' : 'y'}: ${missing.join(', ')}.`);
