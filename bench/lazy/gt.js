'use strict';
// Exact ground truth at native speed: bench/lazy/bruteforce.c, compiled once
// with the system compiler into ~/.cache/vecvault-bench/bin/, computes what
// data.groundTruth computes (float64 distances, top-k) and writes the same
// file at the same cache path, so ann.js and this bench share it. Without a
// compiler, data.groundTruth (plain JS on worker threads) does the work.

const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { spawnSync } = require('child_process');
const data = require('../data');

const SOURCE = path.join(__dirname, 'bruteforce.c');

// Compiles `source` once into ~/.cache/vecvault-bench/bin/; the binary's name
// carries a hash of the source and flags, so an edit builds a new one.
// Returns its path, or null (logged) when there is no working compiler.
function compileOnce(source, compiler, flags, libs, log) {
  const src = fs.readFileSync(source);
  const hash = crypto.createHash('sha256').update(src).update(flags.join(' ')).digest('hex').slice(0, 12);
  const bin = path.join(data.CACHE_DIR, 'bin', `${path.basename(source).replace(/\.\w+$/, '')}-${hash}`);
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  const tmp = `${bin}.tmp-${process.pid}`;
  const r = spawnSync(compiler, [...flags, '-o', tmp, source, ...libs], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    log(`[native] cannot build ${path.basename(source)} (${r.error ? r.error.message : r.stderr.trim().split('\n')[0]})`);
    return null;
  }
  fs.renameSync(tmp, bin);
  return bin;
}

// Reassociation lets the float64 sums vectorise; -ffast-math would also
// assume no infinities, which the top-k's sentinels are.
const compile = (log) => compileOnce(SOURCE, 'cc',
  ['-O3', '-march=native', '-fassociative-math', '-fno-signed-zeros', '-fno-trapping-math', '-pthread'], ['-lm'], log);

function writeF32(file, arr) {
  fs.writeFileSync(file, Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength));
}

/**
 * data.groundTruth's contract ({ file, k, cached }), computed natively when it
 * can be. `baseFile`, when given, already holds `base` as raw float32.
 */
async function groundTruth(name, base, queries, dim, metric, k, { baseFile = null, log = console.error } = {}) {
  const n = base.length / dim, nq = queries.length / dim;
  if (k > n) k = n;
  const file = data.gtCachePath(name, base, queries, metric, k);
  if (fs.existsSync(file) && fs.statSync(file).size === 16 + nq * k * 12) return { file, k, cached: true };
  const bin = compile(log);
  if (!bin) {
    const gt = await data.groundTruth(name, base, queries, dim, metric, k, { log });
    return { file: gt.file, k: gt.k, cached: gt.cached };
  }
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-gt-'));
  try {
    const bf = baseFile || path.join(tmpDir, 'base.f32');
    if (!baseFile) writeF32(bf, base);
    const qf = path.join(tmpDir, 'queries.f32');
    writeF32(qf, queries);
    const out = `${file}.tmp-${process.pid}`;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const t = Date.now();
    log(`[gt] ${name}: exact ${metric} top-${k} for ${nq} queries over ${n} x ${dim}, native, ${os.cpus().length} threads...`);
    const r = spawnSync(bin, [bf, n, qf, nq, dim, metric, k, os.cpus().length, out].map(String), { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.error || r.status !== 0) throw new Error(`native brute force failed (${r.error ? r.error.message : `exit ${r.status}`})`);
    fs.renameSync(out, file);
    log(`[gt] ${name}: done in ${((Date.now() - t) / 1000).toFixed(1)} s, cached at ${file}`);
    return { file, k, cached: false };
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

module.exports = { groundTruth, compileOnce, writeF32 };
