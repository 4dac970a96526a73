'use strict';
// Opening a session for a CLI command: the secret from secretOptions, and
// the database closed whatever the command does with it.
const { secretOptions } = require('./secret');

/** Loads `dir` (lazily unless `lazy: false`), runs `fn(db)` and closes the database. */
async function withSession(dir, values, io, fn, { lazy = true } = {}) {
  // Required here, so --help works without the native addon.
  const { VectorDB } = require('../vector-db');
  const secret = secretOptions(values, io.env);
  let db;
  try {
    db = await VectorDB.load(dir, { ...secret, lazy });
  } finally {
    if (secret.key) secret.key.fill(0);
    if (secret.passphrase instanceof Uint8Array) secret.passphrase.fill(0);
  }
  try {
    return await fn(db);
  } finally {
    db.close();
  }
}

module.exports = { withSession };
