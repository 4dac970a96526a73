'use strict';
// Loads the compiled addon once and registers the error class with it.
// A missing or unloadable addon is ERR_NOT_BUILT, with the command that fixes it.
const path = require('path');
const { VecvaultError } = require('./errors');

function notBuilt(message, cause) {
  return new VecvaultError(message, 'ERR_NOT_BUILT', cause ? { cause } : undefined);
}

function load() {
  const root = path.join(__dirname, '..');
  const tried = [];
  for (const dir of ['build/Release', 'build/Debug']) {
    const file = path.join(root, dir, 'vecvault.node');
    try {
      return require(file);
    } catch (err) {
      if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(file)) {
        tried.push(file);
        continue;
      }
      // Built, but the loader refused it: most often a shared library it
      // links (libsodium, libcbor) is not installed on this machine.
      throw notBuilt(
        `vecvault: the native addon at ${file} could not be loaded: ${err && err.message}. ` +
          'If a shared library is missing, install it (Debian/Ubuntu: `apt-get install libsodium23 libcbor0.8`), ' +
          `or rebuild the addon here: \`npm rebuild vecvault\` (in a clone: \`npm run build\` in ${root}).`,
        err
      );
    }
  }
  throw notBuilt(
    `vecvault: the native addon is not built (looked for ${tried.join(', ')}); installs that skip build ` +
      'scripts (`--ignore-scripts`, pnpm by default) leave it unbuilt. Build it with `npm rebuild vecvault` ' +
      `(it needs a C compiler, make, python3, pkg-config, libsodium-dev and libcbor-dev; in a clone: \`npm run build\` in ${root}).`
  );
}

const native = load();
native.setErrorClass(VecvaultError);
module.exports = native;
