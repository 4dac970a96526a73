// Lists the sources for binding.gyp: the engine's csrc/**/*.c (C11) and the
// binding's csrc/napi/*.cc (C++ on node-addon-api), so a new module needs no
// build edit. Paths are relative to the package root.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const out = [];
(function walk(dir) {
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = dir + '/' + e.name;
    if (e.isDirectory()) walk(rel);
    else if (e.name.endsWith('.c') || (dir === 'csrc/napi' && e.name.endsWith('.cc'))) out.push(rel);
  }
})('csrc');
process.stdout.write(out.sort().join('\n') + '\n');
