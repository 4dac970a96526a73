'use strict';
// Loads the addon once and registers the error class with it. node-gyp-build
// picks the binary: a local build (build/Release, build/Debug) first, then
// the prebuilt one for this platform in prebuilds/ (docs/PLATFORMS.md).
// A missing or unloadable addon is ERR_NOT_BUILT, with the command that fixes it.
const path = require('path');
const { VecvaultError } = require('./errors');

const ROOT = path.join(__dirname, '..');
const SOURCE_BUILD =
  'Build it from source with `npm rebuild vecvault --build-from-source` (it needs a C/C++ compiler, make, python3, ' +
  `pkg-config, libsodium-dev and libcbor-dev; in a clone: \`npm run build\` in ${ROOT}).`;

function notBuilt(message, cause) {
  return new VecvaultError(message, 'ERR_NOT_BUILT', cause ? { cause } : undefined);
}

function load() {
  let resolve;
  try {
    resolve = require('node-gyp-build').path;
  } catch (err) {
    throw notBuilt(`vecvault: its dependency node-gyp-build is not installed, so the addon cannot be found; reinstall vecvault (\`npm install vecvault\`).`, err);
  }
  let file;
  try {
    file = resolve(ROOT);
  } catch (err) {
    throw notBuilt(
      `vecvault: the native addon is not built, and there is no prebuilt binary for ${process.platform}-${process.arch} ` +
        `(looked in ${path.join(ROOT, 'build')} and ${path.join(ROOT, 'prebuilds')}). Installs that skip build scripts ` +
        `(\`--ignore-scripts\`, pnpm by default) leave it unbuilt. ${SOURCE_BUILD}`,
      err
    );
  }
  try {
    return require(file);
  } catch (err) {
    // Found, but the loader refused it: a shared library it links is missing
    // (a local build links the system's libsodium and libcbor), or a prebuilt
    // binary needs a newer C library than this system has.
    const prebuilt = file.startsWith(path.join(ROOT, 'prebuilds') + path.sep);
    throw notBuilt(
      `vecvault: the native addon at ${file} could not be loaded: ${err && err.message}. ` +
        (prebuilt
          ? `This prebuilt binary needs glibc 2.34 or newer and the C++ runtime of GCC 12 or newer (docs/PLATFORMS.md). ${SOURCE_BUILD}`
          : 'If a shared library is missing, install it (Debian/Ubuntu: `apt-get install libsodium23 libcbor0.8`), ' +
            `or rebuild the addon here: \`npm rebuild vecvault\` (in a clone: \`npm run build\` in ${ROOT}).`),
      err
    );
  }
}

const native = load();
native.setErrorClass(VecvaultError);
module.exports = native;
