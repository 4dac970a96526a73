'use strict';
// Where the CLI's secrets come from: --key-file or VECVAULT_KEY (a 32-byte
// key), --passphrase-file or VECVAULT_PASSPHRASE. Never from argv.
const fs = require('node:fs');
const { VecvaultError } = require('../errors');
const { usageError } = require('./args');

const HEX_KEY = /^[0-9a-fA-F]{64}$/;

function readFile(path, what) {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    const code = err.code === 'ENOENT' ? 'ERR_NOT_FOUND' : err.code === 'EACCES' ? 'ERR_ACCESS' : 'ERR_IO';
    throw new VecvaultError(`cannot read the ${what} ${path}: ${err.message}`, code, { cause: err });
  }
}

/** A key file holds 32 raw bytes, or 64 hex digits (whitespace around them ignored). */
function keyFromFile(path) {
  const raw = readFile(path, 'key file');
  if (raw.length === 32) return raw;
  const text = raw.toString('latin1').trim();
  if (HEX_KEY.test(text)) return Buffer.from(text, 'hex');
  throw usageError(`the key file ${path} must hold 32 raw bytes or 64 hex digits (it has ${raw.length} bytes)`);
}

function keyFromEnv(value) {
  const text = value.trim();
  if (!HEX_KEY.test(text)) throw usageError('VECVAULT_KEY must be 64 hex digits (a 32-byte key)');
  return Buffer.from(text, 'hex');
}

/** A passphrase file's one trailing newline (as editors and `echo` write it) is not part of the passphrase. */
function passphraseFromFile(path) {
  const raw = readFile(path, 'passphrase file');
  let end = raw.length;
  if (end > 0 && raw[end - 1] === 0x0a) end--;
  if (end > 0 && raw[end - 1] === 0x0d) end--;
  if (end === 0) throw usageError(`the passphrase file ${path} is empty`);
  return raw.subarray(0, end);
}

/**
 * The load options' secret for parsed CLI `values` and the environment:
 * {} (none), { key } or { passphrase }. Files win over the environment; two
 * secrets of one source are a usage error.
 */
function secretOptions(values, env) {
  const kf = values['key-file'];
  const pf = values['passphrase-file'];
  if (kf !== undefined && pf !== undefined) throw usageError('pass either --key-file or --passphrase-file, not both');
  if (kf !== undefined) return { key: keyFromFile(kf) };
  if (pf !== undefined) return { passphrase: passphraseFromFile(pf) };
  const ek = env.VECVAULT_KEY;
  const ep = env.VECVAULT_PASSPHRASE;
  if (ek && ep) throw usageError('set either VECVAULT_KEY or VECVAULT_PASSPHRASE, not both');
  if (ek) return { key: keyFromEnv(ek) };
  if (ep) return { passphrase: ep };
  return {};
}

module.exports = { secretOptions };
