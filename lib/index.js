'use strict';
// vecvault: an encrypted, chunked vector database for Node.js with a C engine.
const { VectorDB } = require('./vector-db');
const { VecvaultError, ERROR_CODES } = require('./errors');
const native = require('./native');
const { MemoryStorage } = require('./storage/memory');
const { DirStorage } = require('./storage/dir');
const { FaultStorage } = require('./storage/fault');

module.exports = { VectorDB, VecvaultError, ERROR_CODES, MemoryStorage, DirStorage, FaultStorage, simd: native.simd };
