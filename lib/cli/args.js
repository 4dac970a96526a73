'use strict';
// Command-line parsing for the vecvault CLI: util.parseArgs plus the
// CLI's own usage error (exit code 2) and the rule that secrets never
// come from argv.
const { parseArgs } = require('node:util');
const { VecvaultError } = require('../errors');

/** Exit codes, documented in docs/CLI.md. */
const EXIT = Object.freeze({ OK: 0, FAILED: 1, USAGE: 2 });

/** A mistake on the command line: reported with ERR_INVALID_ARGUMENT, exit 2. */
function usageError(message) {
  const err = new VecvaultError(message, 'ERR_INVALID_ARGUMENT');
  err.usage = true;
  return err;
}

/** Options every command takes. */
const COMMON = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
};

/** Options of commands that open a session with a secret. */
const SECRET = {
  'key-file': { type: 'string' },
  'passphrase-file': { type: 'string' },
};

// A secret on the command line lands in shell history and `ps`; refused by name.
const REFUSED = /^--?(key|passphrase)(=|$)/;

/**
 * Parses `argv` for a command taking `options` (parseArgs's shape) and
 * exactly the positionals named in `positionals`. Throws a usage error.
 */
function parse(argv, options, positionals) {
  for (const a of argv) {
    if (a === '--') break;
    if (REFUSED.test(a)) {
      throw usageError(`${a.split('=')[0]} is not accepted: secrets never come from the command line; use --key-file/--passphrase-file or VECVAULT_KEY/VECVAULT_PASSPHRASE`);
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw usageError(err.message);
  }
  const { values, positionals: pos } = parsed;
  if (values.help) return { values, args: {} };
  if (pos.length !== positionals.length) {
    const want = positionals.map((p) => `<${p}>`).join(' ');
    throw usageError(`expected ${want}, got ${pos.length} argument${pos.length === 1 ? '' : 's'}`);
  }
  const args = {};
  positionals.forEach((p, i) => (args[p] = pos[i]));
  return { values, args };
}

module.exports = { EXIT, COMMON, SECRET, usageError, parse };
