'use strict';
// Opening a session for a CLI command: the secret from secretOptions, the
// command's signal (Ctrl-C) passed to the load, and the database closed
// whatever the command does with it.
const { secretOptions } = require('./secret');

/**
 * Loads `target` (a directory or a Storage; lazily unless `lazy: false`),
 * runs `fn(db)` and closes the database. `load`: more VectorDB.load options.
 */
async function withSession(target, values, io, fn, { lazy = true, load = {} } = {}) {
  // Required here, so --help works without the native addon.
  const { VectorDB } = require('../vector-db');
  const secret = secretOptions(values, io.env);
  let db;
  try {
    db = await VectorDB.load(target, { ...load, ...secret, lazy, ...(io.signal ? { signal: io.signal } : {}) });
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
