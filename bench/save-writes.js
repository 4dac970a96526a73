'use strict';
// Writes during a save: how long a synchronous db.add() takes while a save of
// the same database runs, against the same call with no save running.
//
// A service that saves every few minutes must not freeze its writers for the
// length of the save. The save captures what it writes under a short lock and
// writes without it, so an add() waits at most for the capture (and the brief
// apply at the end), never for the chunk, index and manifest I/O.
//
// For each size, a database of synthetic 384-D embeddings (bench/data.js) is
// built once and its encrypted session cached under
// ~/.cache/vecvault-bench/save-writes/<size>/; each run loads it eagerly (the
// database held in memory, as a service keeps it) in a fresh child process,
// then:
//   idle         --adds add() calls with no save running;
//   full save    add() calls, one per event-loop turn, while db.save() writes
//                the whole database into a new directory;
//   incremental  the same while a save of --changes changed vectors goes into
//                the directory the full save wrote.
// Each add() is timed alone (process.hrtime); the table shows p50, p99 and the
// worst call, the number of adds that completed while the save ran, and the
// save's own time. VECVAULT_MODULE=/path/to/checkout measures another build
// (for example the commit before this change) with the same script.
//
// Usage: node bench/save-writes.js [--sizes 100k,1m] [--adds 2000]
//          [--changes 1000] [--rebuild] [--out FILE]

const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const data = require('./data');
const { sizeParams, buildVecvault } = require('./session');
const { now, parseOptions, machineInfo, runJsonChild } = require('./measure');

const REPO = path.join(__dirname, '..');
const VECVAULT_MODULE = process.env.VECVAULT_MODULE ? path.resolve(process.env.VECVAULT_MODULE) : REPO;
const CACHE = path.join(data.CACHE_DIR, 'save-writes');
const RESULTS_DIR = path.join(__dirname, 'results');
const KEY = crypto.createHash('sha256').update('vecvault-bench session key v1').digest(); // public bench key
const log = (...a) => console.error(...a);

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summary(ms) {
  const s = Float64Array.from(ms).sort();
  return { n: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s.length ? s[s.length - 1] : NaN };
}

// ---------------------------------------------------------------- child

async function measure(o) {
  const { VectorDB } = require(VECVAULT_MODULE);
  const p = sizeParams(o.size);
  const fresh = data.synthetic(o.adds * 2 + o.changes, p.dim, { seed: 77, clusters: p.clusters, normalize: true }).data;
  const vec = (i) => fresh.subarray(i * p.dim, (i + 1) * p.dim);
  let t = now();
  const db = await VectorDB.load(path.join(CACHE, o.size, 'session'), { key: KEY, lazy: false });
  const loadSec = now() - t;
  let next = 0;
  const addOne = () => {
    const i = next++;
    const t0 = process.hrtime.bigint();
    db.add(`new-${i}`, vec(i % (o.adds * 2)));
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const turn = () => new Promise((r) => setImmediate(r));

  const idle = [];
  for (let i = 0; i < o.adds; i++) { idle.push(addOne()); await turn(); }

  // While a save runs: one add per event-loop turn until it settles.
  async function during(start) {
    const lat = [];
    let settled = false;
    const t1 = now();
    const job = start().finally(() => { settled = true; });
    while (!settled) { lat.push(addOne()); await turn(); }
    const stats = await job;
    return { ...summary(lat), saveSec: now() - t1, full: stats.full, bytesWritten: stats.bytesWritten };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-save-writes-'));
  const target = path.join(dir, 'session');
  try {
    const full = await during(() => db.save(target));
    for (let i = 0; i < o.changes; i++) db.add(`chg-${i}`, vec(o.adds * 2 + i));
    const incremental = await during(() => db.save(target));
    return { size: o.size, n: p.n, dim: p.dim, loadSec, idle: summary(idle), full, incremental };
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- parent

async function ensureSession(size, rebuild) {
  const dest = path.join(CACHE, size, 'session');
  if (!rebuild && fs.existsSync(path.join(dest, 'manifest.json'))) return;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  log(`[save-writes] ${size}: building the session once (cached in ${dest})`);
  const r = await runJsonChild(process.execPath, [__filename, '--worker', 'build', '--size', size], { timeoutMin: 240, cwd: __dirname });
  if (r.error) throw new Error(`building ${size}: ${r.error}`);
  log(`[save-writes] ${size}: built in ${r.buildSec.toFixed(1)} s, saved in ${r.saveSec.toFixed(1)} s`);
}

const ms = (x) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(3) : x.toFixed(1)) : 'n/a');

function table(rows) {
  const head = ['size', 'while', 'adds', 'p50 ms', 'p99 ms', 'max ms', 'save s'];
  const lines = [head];
  for (const r of rows) {
    lines.push([r.size, 'no save', r.idle.n, ms(r.idle.p50), ms(r.idle.p99), ms(r.idle.max), '']);
    for (const k of ['full', 'incremental']) {
      const x = r[k];
      lines.push([r.size, `${k} save`, x.n, ms(x.p50), ms(x.p99), ms(x.max), x.saveSec.toFixed(2)]);
    }
  }
  const w = head.map((_, c) => Math.max(...lines.map((l) => String(l[c]).length)));
  return lines.map((l) => l.map((v, c) => String(v).padStart(w[c])).join('  ')).join('\n');
}

async function main(argv) {
  const o = parseOptions('save-writes.js', argv, { sizes: '100k', adds: 2000, changes: 1000, out: null },
    { '--sizes': 'sizes', '--adds': 'adds', '--changes': 'changes', '--out': 'out', '--worker': 'worker', '--size': 'size' },
    { '--rebuild': 'rebuild' }, ['adds', 'changes']);
  if (o.help) { log(fs.readFileSync(__filename, 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n')); return 0; }
  if (o.worker === 'build') {
    const p = sizeParams(o.size);
    const { VectorDB } = require(VECVAULT_MODULE);
    fs.mkdirSync(path.join(CACHE, o.size), { recursive: true });
    const r = await buildVecvault(VectorDB, p, path.join(CACHE, o.size, 'session'), true);
    process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  }
  if (o.worker === 'measure') {
    process.stdout.write(JSON.stringify(await measure(o)) + '\n');
    return 0;
  }
  const rows = [];
  for (const size of o.sizes.split(',').map((s) => s.trim().toLowerCase())) {
    await ensureSession(size, o.rebuild);
    log(`[save-writes] ${size}: measuring`);
    const r = await runJsonChild(process.execPath,
      [__filename, '--worker', 'measure', '--size', size, '--adds', o.adds, '--changes', o.changes],
      { timeoutMin: 120, cwd: __dirname });
    if (r.error) throw new Error(`measuring ${size}: ${r.error}`);
    rows.push(r);
  }
  console.log(table(rows));
  const out = o.out || path.join(RESULTS_DIR, `save-writes-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ machine: machineInfo(), module: VECVAULT_MODULE, options: o, rows }, null, 2));
  log(`[save-writes] wrote ${out}`);
  return 0;
}

main(process.argv.slice(2)).then((c) => { process.exitCode = c; }, (e) => { log(e.stack || String(e)); process.exitCode = 1; });
