'use strict';
/*
 * special-files.js: what test/23.session.special-files.js checks, in its own
 * process (a regression would block forever in open(2) on a FIFO; the
 * parent kills this child after a timeout, so the test fails instead of
 * hanging the suite). Prints one JSON line: case name -> the error code
 * the call rejected with ('OK' if it did not).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { vecvault, randomFlat, items, report } = require('./common');

const { VectorDB } = vecvault();
const DIM = 8;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-special-'));

async function outcome(fn) {
  try {
    await fn();
    return 'OK';
  } catch (err) {
    return err && err.code ? err.code : `untyped: ${err}`;
  }
}

function manifestJson(dir) {
  const raw = fs.readFileSync(path.join(dir, 'manifest.json'));
  return JSON.parse(raw.subarray(154, raw.length - 2).toString('utf8'));
}

let copies = 0;
function copyOf(src) {
  const dst = path.join(root, `copy-${copies++}`);
  fs.cpSync(src, dst, { recursive: true });
  return dst;
}

function fifo(file) {
  fs.rmSync(file);
  execFileSync('mkfifo', [file]);
}

function symlinkTo(file) {
  fs.renameSync(file, `${file}.real`);
  fs.symlinkSync(`${file}.real`, file);
}

async function main() {
  const src = path.join(root, 'session');
  const db = new VectorDB({ dimension: DIM, chunkSize: 20, encryptAtRest: false, threads: 1 });
  db.addBatch(items(randomFlat(100, DIM, 7), DIM));
  await db.save(src);
  const m = manifestJson(src);
  const chunk = (d, i = 0) => path.join(d, 'objects', m.chunks[i].name);
  const index = (d) => path.join(d, 'objects', m.index.base[0].name);
  const query = randomFlat(1, DIM, 8);
  const out = {};

  let d = copyOf(src);
  fifo(path.join(d, 'manifest.json'));
  out['manifest FIFO: load eager'] = await outcome(() => VectorDB.load(d, { lazy: false }));
  out['manifest FIFO: load lazy'] = await outcome(() => VectorDB.load(d));
  out['manifest FIFO: inspect'] = await outcome(() => VectorDB.inspect(d));
  out['manifest FIFO: inspect, aborted signal'] = await outcome(() => VectorDB.inspect(d, { signal: AbortSignal.abort() }));
  out['manifest FIFO: load, aborted signal'] = await outcome(() => VectorDB.load(d, { signal: AbortSignal.abort() }));

  d = copyOf(src);
  fifo(index(d));
  out['index FIFO: load eager'] = await outcome(() => VectorDB.load(d, { lazy: false }));
  out['index FIFO: load lazy'] = await outcome(() => VectorDB.load(d));

  d = copyOf(src);
  for (let i = 0; i < m.chunks.length; i++) fifo(chunk(d, i));
  out['chunk FIFO: load eager'] = await outcome(() => VectorDB.load(d, { lazy: false }));
  const lazy = await VectorDB.load(d);
  out['chunk FIFO: load lazy'] = 'OK';
  out['chunk FIFO: searchAsync, aborted signal'] = await outcome(() => lazy.searchAsync(query, 5, { signal: AbortSignal.abort() }));
  out['chunk FIFO: first lazy read (searchAsync)'] = await outcome(() => lazy.searchAsync(query, 5));
  out['chunk FIFO: preload'] = await outcome(() => lazy.preload());
  out['chunk FIFO: preload, aborted signal'] = await outcome(() => lazy.preload(undefined, { signal: AbortSignal.abort() }));
  lazy.close();

  d = copyOf(src);
  symlinkTo(path.join(d, 'manifest.json'));
  out['manifest symlink: load'] = await outcome(() => VectorDB.load(d));
  d = copyOf(src);
  symlinkTo(chunk(d));
  out['chunk symlink: load eager'] = await outcome(() => VectorDB.load(d, { lazy: false }));
  const link = path.join(root, 'linked-session');
  fs.symlinkSync(src, link);
  out['session directory symlink: load'] = await outcome(async () => (await VectorDB.load(link, { lazy: false })).close());

  d = copyOf(src);
  const fresh = new VectorDB({ dimension: DIM, encryptAtRest: false });
  fresh.addBatch(items(randomFlat(10, DIM, 9), DIM));
  out['save, aborted signal'] = await outcome(() => fresh.save(path.join(root, 'never'), { signal: AbortSignal.abort() }));
  out['save: never created'] = fs.existsSync(path.join(root, 'never')) ? 'created' : 'OK';
  fresh.close();
  db.close();
  fs.rmSync(root, { recursive: true, force: true });
  report(out);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
