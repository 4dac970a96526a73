'use strict';
/*
 * sync-read-under-writer.js: a synchronous read on the JS thread of a lazy
 * session over JavaScript storage, while an async call holds the engine's
 * read lock waiting for a page that only this thread can deliver, and an
 * async writer queues for the write lock. The read must return (or throw a
 * typed error) instead of waiting behind the writer forever. argv[2]: the
 * read (count, countFilter, has); argv[3]: the async call holding the lock
 * (search, update). Prints { value } or { code }; a hang is killed by the
 * parent.
 */
const { vecvault, report, randomFlat, items, sleep } = require('./common');

async function main() {
  const { VectorDB, MemoryStorage } = vecvault();
  const [read = 'countFilter', holder = 'search'] = process.argv.slice(2);
  const DIM = 8;
  const db = new VectorDB({ dimension: DIM, filterable: ['g'], encryptAtRest: false, chunkSize: 64 });
  const flat = randomFlat(1000, DIM, 3);
  db.addBatch(items(flat, DIM, 'v', false).map((e, i) => ({ ...e, metadata: { g: i % 4 } })));
  const mem = new MemoryStorage();
  await db.save(mem);
  db.close();
  /* A storage whose reads wait for the gate: the page read stays pending, the lock held. */
  let gate = null;
  let sawRead;
  const readStarted = new Promise((resolve) => { sawRead = resolve; });
  const held = {
    description: 'gated',
    async read(name, range, options) {
      if (gate) {
        sawRead();
        await gate;
      }
      return mem.read(name, range, options);
    },
    write: (...a) => mem.write(...a),
    delete: (...a) => mem.delete(...a),
    list: (...a) => mem.list(...a),
    readManifest: (...a) => mem.readManifest(...a),
    writeManifest: (...a) => mem.writeManifest(...a),
  };
  const lazy = await VectorDB.load(held, { lazy: true });
  let open;
  gate = new Promise((resolve) => { open = resolve; });
  const q = flat.subarray(5 * DIM, 6 * DIM);
  const holding = holder === 'update' ? lazy.updateMetadataAsync('v5', { g: 7 }) : lazy.searchAsync(q, 5, { filter: { g: 1 } });
  await readStarted;
  const writing = lazy.addBatchAsync([{ id: 'new', vector: q, metadata: { g: 1 } }]);
  /* Time for the writer's thread to queue on the lock. A slow machine only
   * makes the hang less likely, never a correct run fail. */
  await sleep(300);
  let out;
  try {
    if (read === 'count') out = { value: lazy.count() };
    else if (read === 'countFilter') out = { value: lazy.count({ g: 1 }) };
    else out = { value: lazy.has('v3') };
  } catch (e) {
    out = { code: e.code, message: e.message };
  }
  open();
  await Promise.all([holding, writing]);
  lazy.close();
  report(out);
}

main();
