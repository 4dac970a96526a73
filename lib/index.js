'use strict';
// vecvault: an encrypted, chunked vector database for Node.js with a C engine.
const { VectorDB } = require('./vector-db');
const { VecvaultError, ERROR_CODES } = require('./errors');
const native = require('./native');

module.exports = { VectorDB, VecvaultError, ERROR_CODES, simd: native.simd };
