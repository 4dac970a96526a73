#!/usr/bin/env node
'use strict';
// The vecvault command line: inspect, verify and move sessions (docs/CLI.md).
// Ctrl-C aborts the running command through io.signal: it stops cleanly and
// the process exits with 130. A second Ctrl-C exits at once.
const { main, INTERRUPTED } = require('../lib/cli/main');
const { stopAll } = require('../lib/cli/progress');

const controller = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts++;
  if (interrupts > 1) {
    stopAll();
    process.stderr.write('vecvault: interrupted again; exiting now\n');
    process.exit(INTERRUPTED);
  }
  // Aborting stops the progress bars first (their abort listeners), so this line lands on a clean terminal.
  controller.abort();
  process.stderr.write('vecvault: interrupted; stopping (Ctrl-C again to exit at once)\n');
});

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal }).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`vecvault: ERR_INTERNAL: ${err && err.stack}\n`);
    process.exitCode = 1;
  }
);
