'use strict';
/*
 * lib/storage/index.js: the JavaScript storages and their helpers, in one
 * place for lib/index.js to re-export. S3Storage loads @aws-sdk/client-s3
 * only when one is constructed, so requiring this costs nothing without it.
 */
const { MemoryStorage } = require('./memory');
const { S3Storage } = require('./s3');
const { FaultStorage } = require('./fault');
const { classify, withRetry, transientError } = require('./retry');
const { withLease } = require('./lease');

module.exports = { MemoryStorage, S3Storage, FaultStorage, classify, withRetry, transientError, withLease };
