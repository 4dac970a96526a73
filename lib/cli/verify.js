'use strict';
// vecvault verify <dir>: authenticate and decode every object of the
// session's current generation with bounded memory, and name what is damaged.
const { SECRET } = require('./args');
const { withSession } = require('./session');
const { table } = require('./format');

/** Codes that mean the session's bytes are damaged, as opposed to a wrong key or an I/O failure. */
const DAMAGE = new Set(['ERR_CHUNK_CORRUPT', 'ERR_CHUNK_MISSING', 'ERR_METADATA_CORRUPT', 'ERR_MANIFEST_CORRUPT', 'ERR_MANIFEST_AUTH']);

/** Of those, the ones a load reports for the manifest itself. */
const MANIFEST = new Set(['ERR_MANIFEST_CORRUPT', 'ERR_MANIFEST_AUTH']);

// Chunks preloaded per call: the cache evicts between groups, so memory stays
// bounded by the cache, not by the session.
const GROUP = 8;

function damage(err, where) {
  if (!err || !DAMAGE.has(err.code)) throw err;
  return { where, code: err.code, message: err.message };
}

/** Preloads `ids` as one group; on failure, one by one, so each damaged chunk is named. */
async function checkChunks(db, ids, found) {
  try {
    await db.preload(ids);
    return;
  } catch (err) {
    if (ids.length === 1) {
      found.push(damage(err, `chunk ${ids[0]}`));
      return;
    }
  }
  for (const id of ids) await checkChunks(db, [id], found);
}

/** Every live row with its vector and metadata, counted: decodes every page the chunks hold. */
async function countRows(db) {
  let n = 0;
  for await (const batch of db.entries({ includeVector: true, batchSize: 1000 })) n += batch.length;
  return n;
}

function describe(found) {
  return found.map((d) => `  ${d.where}: ${d.code}: ${d.message}\n`).join('');
}

async function run({ dir }, values, io) {
  const { VectorDB } = require('../vector-db');
  const found = [];
  let manifest;
  try {
    manifest = await VectorDB.inspect(dir);
  } catch (err) {
    found.push(damage(err, 'manifest'));
    return { json: { verify: { generation: null, chunks: null, indexSegments: null, vectors: null, damaged: found } }, text: describe(found), failed: true };
  }
  const report = { generation: manifest.generation, chunks: manifest.chunkCount, indexSegments: manifest.indexSegmentCount, vectors: null, damaged: found };
  try {
    // A lazy load authenticates the manifest and decodes every index segment.
    await withSession(dir, values, io, async (db) => {
      const ids = manifest.chunks.map((c) => c.id);
      for (let i = 0; i < ids.length; i += GROUP) await checkChunks(db, ids.slice(i, i + GROUP), found);
      if (found.length > 0) return;
      try {
        report.vectors = await countRows(db);
      } catch (err) {
        found.push(damage(err, 'rows'));
        return;
      }
      if (report.vectors !== manifest.totalVectors) {
        found.push({ where: 'rows', code: 'ERR_CHUNK_CORRUPT', message: `the chunks hold ${report.vectors} live vectors, the manifest says ${manifest.totalVectors}` });
      }
    });
  } catch (err) {
    found.push(damage(err, err && MANIFEST.has(err.code) ? 'manifest' : 'index'));
  }
  const rows = [
    ['generation', report.generation],
    ['chunks', report.chunks],
    ['index segments', report.indexSegments],
    ['vectors', report.vectors === null ? 'not counted' : report.vectors],
    ['result', found.length === 0 ? 'OK: every object authenticated and decoded' : `DAMAGED: ${found.length} problem${found.length === 1 ? '' : 's'}`],
  ];
  const text = table(rows) + describe(found);
  return { json: { verify: report }, text, failed: found.length > 0 };
}

module.exports = {
  summary: 'authenticate and decode every object of the current generation; exit 1 if anything is damaged',
  usage: '<dir> [--key-file <path> | --passphrase-file <path>] [--json]',
  help:
    'Loads <dir> lazily (authenticating the manifest and every index segment), reads every\n' +
    'chunk through the cache a few at a time (memory stays bounded by the cache), then walks\n' +
    'every row with its vector and metadata and checks the count against the manifest.\n' +
    'Each damaged object is reported with its error code and the message naming it.\n' +
    'Exit 0: intact; exit 1: damage found (or the session could not be opened).\n',
  options: SECRET,
  positionals: ['dir'],
  run,
};
