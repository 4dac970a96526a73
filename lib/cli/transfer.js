'use strict';
// vecvault copy / export / import: moving a session's objects as they are,
// without a key (VectorDB.copy, docs/EXPORT.md), with progress on stderr.
const { withProgress } = require('./progress');
const { table } = require('./format');
const { withLocations } = require('./location');

function vectorDb() {
  // Required here, so --help works without the native addon.
  return require('../vector-db').VectorDB;
}

function result(json, rows) {
  return { json, text: table(rows) };
}

const copy = {
  summary: 'copy every retained generation of a session to another directory or s3:// location (no key needed)',
  usage: '<src> <dst> [--json]',
  help:
    'Copies <src>\'s objects and manifests to <dst> as they are (VectorDB.copy); objects\n<dst> already holds are skipped. Progress goes to stderr. Either may be a directory\nor s3://bucket[/prefix] (AWS_* environment variables configure the client; docs/CLI.md).\n',
  options: {},
  positionals: ['src', 'dst'],
  async run({ src, dst }, values, io) {
    const r = await withLocations([src, dst], io, (from, to) => withProgress('copy', io, (onProgress, signal) => vectorDb().copy(from, to, { onProgress, signal })));
    return result({ copy: r }, [
      ['generation', r.generation],
      ['objects copied', r.objectsCopied],
      ['objects skipped', r.objectsSkipped],
      ['bytes copied', r.bytesCopied],
    ]);
  },
};

const exportCmd = {
  summary: 'write a session (every retained generation) as one export file (no key needed)',
  usage: '<dir> <file> [--json]',
  help: 'Writes <dir> (a directory or s3://bucket[/prefix]) as one file in the export format of\ndocs/EXPORT.md. The session stays encrypted inside it. Progress goes to stderr.\n',
  options: {},
  positionals: ['dir', 'file'],
  async run({ dir, file }, values, io) {
    vectorDb(); // the same addon check as the other commands
    const { exportSession } = require('../storage/export');
    const r = await withLocations([dir], io, (source) => withProgress('export', io, (onProgress, signal) => exportSession(source, file, { onProgress, signal })));
    return result({ export: r }, [
      ['generation', r.generation],
      ['records', r.records],
      ['bytes', r.bytes],
    ]);
  },
};

const importCmd = {
  summary: 'put an export file back into a session directory or s3:// location (no key needed)',
  usage: '<file> <dir> [--json]',
  help: 'Reads an export file (docs/EXPORT.md), checks its SHA-256 and writes its objects\nand manifests into <dir>, a directory or s3://bucket[/prefix] (VectorDB.import).\nProgress goes to stderr.\n',
  options: {},
  positionals: ['file', 'dir'],
  async run({ file, dir }, values, io) {
    const r = await withLocations([dir], io, (target) => withProgress('import', io, (onProgress, signal) => vectorDb().import(file, target, { onProgress, signal })));
    return result({ import: r }, [
      ['generation', r.generation],
      ['objects written', r.objectsWritten],
      ['objects skipped', r.objectsSkipped],
    ]);
  },
};

module.exports = { copy, export: exportCmd, import: importCmd };
