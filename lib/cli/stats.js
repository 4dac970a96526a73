'use strict';
// vecvault stats <dir>: a session opened lazily with its key, and what it reports.
const { SECRET } = require('./args');
const { withSession } = require('./session');
const { bytes, table } = require('./format');
const { withLocations } = require('./location');

async function run({ dir }, values, io) {
  return withLocations([dir], io, (target) => withSession(target, values, io, (db) => {
    const stats = {
      size: db.size,
      dimension: db.dimension,
      metric: db.metric,
      index: db.index,
      filterable: [...db.filterable],
      loadStats: { ...db.loadStats },
      cacheStats: db.cacheStats(),
    };
    const l = stats.loadStats;
    const c = stats.cacheStats;
    const text = table([
      ['vectors', stats.size],
      ['dimension', stats.dimension],
      ['metric', stats.metric],
      ['index', stats.index],
      ['filterable', stats.filterable.length ? stats.filterable.join(', ') : '(none)'],
      ['generation', l.generation],
      ['opened', `${l.lazy ? 'lazily' : 'eagerly'}: ${l.chunksLoaded} of ${l.chunkCount} chunks read, ${bytes(l.bytesRead)} in ${l.loadTimeMs.toFixed(1)} ms`],
      ['cache', `${bytes(c.bytes)} of ${bytes(c.capacityBytes)}, ${c.entries} entries, ${c.hits} hits, ${c.misses} misses, ${c.evictions} evictions`],
    ]);
    return { json: { stats }, text };
  }));
}

module.exports = {
  summary: 'open a session with its key (lazily) and show its size, shape, load and cache statistics',
  usage: '<dir> [--key-file <path> | --passphrase-file <path>] [--json]',
  help: 'Loads <dir> lazily (only the index is read) and prints the vector count, dimension,\nmetric, index kind, filterable fields, loadStats and cacheStats. <dir> may be\ns3://bucket[/prefix]. The secret comes from --key-file, --passphrase-file,\nVECVAULT_KEY or VECVAULT_PASSPHRASE (docs/CLI.md).\n',
  options: SECRET,
  positionals: ['dir'],
  run,
};
