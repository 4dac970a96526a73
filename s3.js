'use strict';
// require('vecvault/s3'): S3Storage, which needs the optional peer
// dependency @aws-sdk/client-s3 (npm install @aws-sdk/client-s3).
const { S3Storage } = require('./lib/storage/s3');

module.exports = { S3Storage };
