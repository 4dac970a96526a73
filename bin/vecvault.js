#!/usr/bin/env node
'use strict';
// The vecvault command line: inspect, verify and move sessions (docs/CLI.md).
const { main } = require('../lib/cli/main');

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`vecvault: ERR_INTERNAL: ${err && err.stack}\n`);
    process.exitCode = 1;
  }
);
