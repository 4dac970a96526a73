'use strict';
// vecvault inspect <dir>: a session's manifest, without a key.
const { bytes, table } = require('./format');
const { withLocations } = require('./location');

async function run({ dir }, values, io) {
  // Required here, so --help works without the native addon.
  const { VectorDB } = require('../vector-db');
  const m = await withLocations([dir], io, (target) => VectorDB.inspect(target, io.signal ? { signal: io.signal } : undefined));
  const encryption = m.encrypted ? `encrypted (${m.kdf ? `passphrase, ${typeof m.kdf === 'string' ? m.kdf : JSON.stringify(m.kdf)}` : 'key'})` : 'none';
  const text = table([
    ['session', m.sessionId],
    ['format', `${m.format} version ${m.version}`],
    ['generation', `${m.generation}${m.parent ? ` (parent ${m.parent})` : ''}`],
    ['created', m.createdAt],
    ['dimension', m.dimension],
    ['metric', m.metric],
    ['index', m.index],
    ['vectors', m.totalVectors],
    ['chunks', m.chunkCount],
    ['index segments', m.indexSegmentCount],
    ['size', bytes(m.bytes)],
    ['encryption', encryption],
  ]);
  return { json: { manifest: m }, text };
}

module.exports = {
  summary: 'show a session\'s manifest (no key needed, not authenticated)',
  usage: '<dir> [--json]',
  help:
    'Reads <dir>/manifest.json (its checksum verified) and prints the generation,\nformat version, counts, sizes, encryption kind and creation time. <dir> may be\ns3://bucket[/prefix] (docs/CLI.md).\n',
  options: {},
  positionals: ['dir'],
  run,
};
