'use strict';
/*
 * test/helpers/cli.js: running the vecvault command line (bin/vecvault.js)
 * as a child process, for the CLI suites.
 */
const path = require('node:path');
const { spawn } = require('node:child_process');

const BIN = path.join(__dirname, '..', '..', 'bin', 'vecvault.js');

/** The environment without the caller's secrets, plus `env`. */
function cleanEnv(env = {}) {
  const clean = { ...process.env };
  delete clean.VECVAULT_KEY;
  delete clean.VECVAULT_PASSPHRASE;
  return { ...clean, ...env };
}

/**
 * Starts the CLI with `args`; `node` are options for node itself (e.g.
 * ['-r', hook]). Returns { child, done }: done resolves with
 * { code, signal, stdout, stderr, json } (json: stdout parsed, when it parses).
 */
function start(args, { env = {}, node = [] } = {}) {
  const child = spawn(process.execPath, [...node, BIN, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  const done = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      let json;
      try {
        json = JSON.parse(out.stdout);
      } catch {
        json = undefined;
      }
      resolve({ code, signal, stdout: out.stdout, stderr: out.stderr, json });
    });
  });
  /** Resolves once stderr so far matches `re` (a handshake with the child, never a timer). */
  const stderrMatches = (re) =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (!re.test(out.stderr)) return false;
        child.stderr.removeListener('data', check);
        resolve(out.stderr);
        return true;
      };
      if (check()) return;
      child.stderr.on('data', check);
      done.then((r) => reject(new Error(`the CLI exited (${r.code}) before stderr matched ${re}: ${r.stderr}`)), reject);
    });
  return { child, done, stderrMatches };
}

/**
 * The two small sessions the CLI suites share, made in `tmp`: `plain`
 * (unencrypted, 40 vectors, ids p<i>) and `secret` (encrypted with `key`,
 * 40 vectors with a filterable `tag`, ids s<i>), both of 3 chunks.
 */
async function smallSessions(tmp, key) {
  const h = require('./index');
  const { VectorDB } = h.vecvault();
  const plain = path.join(tmp, 'plain');
  const secret = path.join(tmp, 'secret');
  const a = new VectorDB({ dimension: 4, chunkSize: 16, encryptAtRest: false });
  h.randomVectors(40, 4, 1).forEach((v, i) => a.add(`p${i}`, v));
  await a.save(plain);
  a.close();
  const b = new VectorDB({ dimension: 4, chunkSize: 16, key, filterable: ['tag'] });
  h.randomVectors(40, 4, 2).forEach((v, i) => b.add(`s${i}`, v, { tag: i % 3 }));
  await b.save(secret);
  b.close();
  return { plain, secret };
}

/** Runs the CLI to the end; resolves with { code, stdout, stderr, json }. */
function cli(args, options) {
  return start(args, options).done;
}

module.exports = { BIN, cli, start, smallSessions };
