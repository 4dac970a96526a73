'use strict';
// Loads the compiled addon once and registers the error class with it.
const path = require('path');
const { VecvaultError } = require('./errors');

function load() {
  const root = path.join(__dirname, '..');
  const tried = [];
  for (const dir of ['build/Release', 'build/Debug']) {
    const file = path.join(root, dir, 'vecvault.node');
    try {
      return require(file);
    } catch (err) {
      if (err && err.code !== 'MODULE_NOT_FOUND') throw err;
      tried.push(file);
    }
  }
  throw new VecvaultError(
    `vecvault: the native addon is not built (looked for ${tried.join(', ')}). Run \`npm install\` (or \`npm run build\`) in ${root}.`,
    'ERR_INTERNAL'
  );
}

const native = load();
native.setErrorClass(VecvaultError);
module.exports = native;
