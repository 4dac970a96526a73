'use strict';
/*
 * test/helpers/children/common.js: shared bits of the child scripts that
 * 09.vectordb.lifecycle.js runs in their own node process. Each child prints
 * one JSON line as its last stdout line; the parent asserts on it and on the
 * exit status (a crash in native code fails one test, not the whole suite).
 */
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const vecvault = () => require(ROOT);

function randomFlat(n, dim, seed) {
  let a = seed >>> 0;
  const out = new Float32Array(n * dim);
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

function items(flat, dim, prefix = 'v', withMeta = true) {
  const n = flat.length / dim;
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = { id: `${prefix}${i}`, vector: flat.subarray(i * dim, (i + 1) * dim) };
    if (withMeta) out[i].metadata = { i };
  }
  return out;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/* gc() then let deferred finalizers (run from the event loop) happen. */
async function settle(rounds = 4) {
  for (let i = 0; i < rounds; i++) {
    global.gc();
    await tick();
  }
}

function report(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function errInfo(e) {
  const { VecvaultError } = vecvault();
  return {
    vecvault: e instanceof VecvaultError,
    error: e instanceof Error,
    code: e && e.code,
    name: e && e.name,
    message: e && String(e.message).slice(0, 200),
  };
}

module.exports = { ROOT, vecvault, randomFlat, items, tick, sleep, settle, report, errInfo };
