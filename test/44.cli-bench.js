'use strict';
/*
 * 44.cli-bench.js: `vecvault bench` on small files of each format written
 * here (.npy v1/v2/v3 float32 and float64, .fvecs, JSON lines): the readers
 * return exactly the vectors written, each malformed file gets its typed
 * error and exit code and names the file, and a bench reports recall against
 * the exact ground truth, --json and an SVG plot. No timing is asserted.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const h = require('./helpers');
const { main, INTERRUPTED } = require('../lib/cli/main');
const { readVectors } = require('../lib/cli/vectors');
const { holdOut } = require('../lib/cli/bench');

const BIN = path.join(__dirname, '..', 'bin', 'vecvault.js');
const N = 300;
const DIM = 16;

/* ------------------------------------------------------------- writers */

/** A .npy file: header version `major`, dtype `descr`, the array's shape and its raw data bytes. */
function npyBytes({ major = 1, descr = '<f4', fortran = false, shape, data, header }) {
  const dict = header ?? `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const lenBytes = major === 1 ? 2 : 4;
  const pre = 8 + lenBytes;
  const pad = (64 - ((pre + dict.length + 1) % 64)) % 64;
  const text = Buffer.from(dict + ' '.repeat(pad) + '\n', major === 3 ? 'utf8' : 'latin1');
  const head = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]).copy(head);
  if (major === 1) head.writeUInt16LE(text.length, 8);
  else head.writeUInt32LE(text.length, 8);
  return Buffer.concat([head, text, data]);
}

function f32Bytes(vectors) {
  const out = Buffer.alloc(vectors.length * vectors[0].length * 4);
  vectors.forEach((v, i) => v.forEach((x, j) => out.writeFloatLE(x, (i * v.length + j) * 4)));
  return out;
}

function f64Bytes(vectors) {
  const out = Buffer.alloc(vectors.length * vectors[0].length * 8);
  vectors.forEach((v, i) => v.forEach((x, j) => out.writeDoubleLE(x, (i * v.length + j) * 8)));
  return out;
}

function fvecsBytes(vectors) {
  return Buffer.concat(
    vectors.map((v) => {
      const b = Buffer.alloc(4 + 4 * v.length);
      b.writeInt32LE(v.length, 0);
      v.forEach((x, j) => b.writeFloatLE(x, 4 + 4 * j));
      return b;
    })
  );
}

/** JSON lines, alternating the three shapes a line may take, with blank lines between. */
function jsonlText(vectors) {
  return vectors
    .map((v, i) => {
      const a = Array.from(v);
      return i % 3 === 0 ? JSON.stringify(a) : i % 3 === 1 ? JSON.stringify({ id: `d${i}`, vector: a }) : JSON.stringify({ embedding: a, text: 'x' });
    })
    .join('\n\n') + '\n';
}

/* --------------------------------------------------------------- runner */

/** A stream stand-in: collects what is written; not a TTY, like a CI log. */
function sink(onWrite) {
  return {
    text: '',
    isTTY: false,
    write(s) {
      this.text += s;
      if (onWrite) onWrite(String(s));
      return true;
    },
  };
}

/** Runs the CLI in this process: { code, stdout, stderr, json }. */
async function run(args, { signal, onStderr } = {}) {
  const io = { stdout: sink(), stderr: sink(onStderr), env: {}, signal };
  const code = await main(['bench', ...args], io);
  let json;
  try {
    json = JSON.parse(io.stdout.text);
  } catch {
    json = undefined;
  }
  return { code, stdout: io.stdout.text, stderr: io.stderr.text, json };
}

/** Runs bin/vecvault.js as a child process. */
function spawnCli(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A minimal XML check: one root <svg>, every tag closed in order, no stray '<' or '&'. */
function parseXml(text) {
  const stack = [];
  const elements = [];
  let roots = 0;
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<\?[^>]*\?>|<!--[\s\S]*?-->/g;
  let last = 0;
  let m;
  while ((m = tag.exec(text)) !== null) {
    const between = text.slice(last, m.index);
    assert.ok(!/[<>]/.test(between), `stray markup before offset ${m.index}: ${between}`);
    assert.ok(!/&(?!(lt|gt|amp|quot|apos);)/.test(between), `unescaped & before offset ${m.index}`);
    last = tag.lastIndex;
    if (!m[2]) continue;
    const [, close, name, attrs, selfClose] = m;
    if (close) {
      assert.equal(stack.pop(), name, `</${name}> closes the open element`);
      continue;
    }
    if (stack.length === 0) roots++;
    const el = { name, attrs: Object.fromEntries([...attrs.matchAll(/([\w:-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])), text: '', start: tag.lastIndex };
    elements.push(el);
    if (!selfClose) stack.push(name);
  }
  assert.equal(stack.length, 0, `unclosed: ${stack.join(' ')}`);
  assert.equal(text.slice(last).trim(), '', 'nothing after the root element');
  assert.equal(roots, 1, 'one root element');
  return elements;
}

const fround = (v) => Array.from(v, Math.fround);

describe('44 vecvault bench', function () {
  this.timeout(60000);
  let tmp;
  let vectors;
  const file = (name) => path.join(tmp, name);

  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vv-bench-'));
    vectors = h.clusteredVectors(N, DIM, { clusters: 8, seed: 44 });
    fs.writeFileSync(file('v.npy'), npyBytes({ shape: [N, DIM], data: f32Bytes(vectors) }));
    fs.writeFileSync(file('v2.npy'), npyBytes({ major: 2, shape: [N, DIM], data: f32Bytes(vectors) }));
    fs.writeFileSync(file('v3.npy'), npyBytes({ major: 3, descr: '<f8', shape: [N, DIM], data: f64Bytes(vectors) }));
    fs.writeFileSync(file('v.fvecs'), fvecsBytes(vectors));
    fs.writeFileSync(file('v.jsonl'), jsonlText(vectors));
    fs.writeFileSync(file('q.fvecs'), fvecsBytes(h.clusteredVectors(20, DIM, { clusters: 8, seed: 44 + 1 })));
  });

  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('readers', function () {
    for (const name of ['v.npy', 'v2.npy', 'v3.npy', 'v.fvecs', 'v.jsonl']) {
      it(`${name} gives exactly the vectors written`, async function () {
        const set = await readVectors(file(name));
        assert.equal(set.count, N);
        assert.equal(set.dimension, DIM);
        assert.ok(set.data instanceof Float32Array);
        assert.equal(set.data.length, N * DIM);
        for (let i = 0; i < N; i++) assert.deepEqual(Array.from(set.data.subarray(i * DIM, (i + 1) * DIM)), fround(vectors[i]), `${name} vector ${i}`);
      });
    }

    it('reads files of several 4 MiB pieces, naming offsets past the first piece', async function () {
      // 70000 x 16: 4.5 MB as .fvecs and as float32 .npy, 9 MB as float64 .npy.
      const big = h.randomVectors(70000, DIM, 9);
      const files = {
        'big.fvecs': fvecsBytes(big),
        'big.npy': npyBytes({ shape: [big.length, DIM], data: f32Bytes(big) }),
        'big8.npy': npyBytes({ major: 2, descr: '<f8', shape: [big.length, DIM], data: f64Bytes(big) }),
      };
      for (const [name, bytes] of Object.entries(files)) {
        fs.writeFileSync(file(name), bytes);
        let calls = 0;
        const set = await readVectors(file(name), { onProgress: () => calls++ });
        assert.ok(calls > 2, `${name}: progress per piece`);
        assert.equal(set.count, big.length);
        for (const i of [0, 61680, 61681, 65535, 65536, big.length - 1]) {
          assert.deepEqual(Array.from(set.data.subarray(i * DIM, (i + 1) * DIM)), fround(big[i]), `${name} vector ${i}`);
        }
      }
      const row = 69000;
      const at = row * (4 + 4 * DIM) + 4 + 5 * 4;
      const bad = Buffer.from(files['big.fvecs']);
      bad.writeFloatLE(Infinity, at);
      fs.writeFileSync(file('big-inf.fvecs'), bad);
      await h.rejectsCode(() => readVectors(file('big-inf.fvecs')), 'ERR_INVALID_VECTOR');
      await assert.rejects(readVectors(file('big-inf.fvecs')), { message: new RegExp(`byte ${at}: vector ${row}, component 5 is Infinity`) });
    });

    it('JSON lines: CRLF line ends and a leading byte-order mark are read', async function () {
      fs.writeFileSync(file('crlf.jsonl'), '\ufeff[1, 2.5]\r\n\r\n{"vector": [3, -4]}\r\n');
      const set = await readVectors(file('crlf.jsonl'));
      assert.equal(set.count, 2);
      assert.deepEqual(Array.from(set.data), [1, 2.5, 3, -4]);
    });

    it('converts float64 to the nearest float32', async function () {
      const v = [[0.1, 1 / 3, -2.5, 1e-3]];
      fs.writeFileSync(file('f8.npy'), npyBytes({ descr: '<f8', shape: [1, 4], data: f64Bytes(v) }));
      const set = await readVectors(file('f8.npy'));
      assert.deepEqual(Array.from(set.data), fround(v[0]));
    });

    it('reports progress in bytes of the file, ending at its size', async function () {
      const seen = [];
      await readVectors(file('v.fvecs'), { onProgress: (done, total) => seen.push([done, total]) });
      const size = fs.statSync(file('v.fvecs')).size;
      assert.deepEqual(seen.at(-1), [size, size]);
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] >= seen[i - 1][0], 'never decreases');
    });

    it('--format overrides the extension', async function () {
      fs.copyFileSync(file('v.fvecs'), file('v.bin'));
      const r = await run([file('v.bin'), '--format', 'fvecs', '--queries-count', '10', '--ef', '64', '--min-time', '0', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.bench.base.format, 'fvecs');
    });
  });

  describe('malformed input', function () {
    const trunc = (name, drop) => fs.readFileSync(file(name)).subarray(0, fs.statSync(file(name)).size - drop);
    const fvecsMixed = () => Buffer.concat([fvecsBytes(vectors.slice(0, 5)), fvecsBytes([vectors[5].subarray(0, DIM - 1)]), fvecsBytes(vectors.slice(6, 8))]);
    const withNaN = () => {
      const v = vectors.slice(0, 4).map((x) => Float32Array.from(x));
      v[2][3] = NaN;
      return fvecsBytes(v);
    };
    const cases = [
      // name, contents, exit code, error code, what the message must say
      ['trunc.fvecs', () => trunc('v.fvecs', 6), 1, 'ERR_INVALID_ARGUMENT', /byte \d+: truncated/],
      ['mixed.fvecs', fvecsMixed, 1, 'ERR_DIMENSION_MISMATCH', new RegExp(`byte ${5 * (4 + 4 * DIM)}: vector 5 has dimension ${DIM - 1}`)],
      ['zero-dim.fvecs', () => Buffer.alloc(8), 1, 'ERR_INVALID_ARGUMENT', /byte 0: dimension 0/],
      ['nan.fvecs', withNaN, 1, 'ERR_INVALID_VECTOR', new RegExp(`byte ${2 * (4 + 4 * DIM) + 4 + 3 * 4}: vector 2, component 3 is NaN`)],
      ['empty.fvecs', () => Buffer.alloc(0), 1, 'ERR_INVALID_ARGUMENT', /is empty/],
      ['magic.npy', () => Buffer.from('not numpy at all'), 1, 'ERR_INVALID_ARGUMENT', /byte 0: not a NumPy/],
      ['header.npy', () => npyBytes({ header: "{'descr': '<f4', 'shape': (3, 4), }", data: Buffer.alloc(48) }), 1, 'ERR_INVALID_ARGUMENT', /malformed \.npy header/],
      ['trunc.npy', () => trunc('v.npy', 10), 1, 'ERR_INVALID_ARGUMENT', /truncated: shape \(300, 16\)/],
      ['empty.npy', () => Buffer.alloc(0), 1, 'ERR_INVALID_ARGUMENT', /is empty/],
      ['fortran.npy', () => npyBytes({ fortran: true, shape: [2, 2], data: Buffer.alloc(16) }), 2, 'ERR_INVALID_ARGUMENT', /Fortran-order/],
      ['int.npy', () => npyBytes({ descr: '<i4', shape: [2, 2], data: Buffer.alloc(16) }), 2, 'ERR_INVALID_ARGUMENT', /dtype '<i4' is not supported/],
      ['big.npy', () => npyBytes({ descr: '>f4', shape: [2, 2], data: Buffer.alloc(16) }), 2, 'ERR_INVALID_ARGUMENT', /big-endian/],
      ['oned.npy', () => npyBytes({ shape: [4], data: Buffer.alloc(16) }), 2, 'ERR_INVALID_ARGUMENT', /must be 2-D/],
      ['word.jsonl', () => '[1, 2, 3]\n[4, "five", 6]\n', 1, 'ERR_INVALID_VECTOR', /line 2: element 1 is "five"/],
      ['syntax.jsonl', () => '[1, 2, 3]\n\n[4, 5,\n', 1, 'ERR_INVALID_ARGUMENT', /line 3: not valid JSON/],
      ['ragged.jsonl', () => '[1, 2, 3]\n[4, 5, 6]\n[7, 8]\n', 1, 'ERR_DIMENSION_MISMATCH', /line 3: has 2 numbers, line 1 had 3/],
      ['shape.jsonl', () => '{"id": "a", "text": "no vector"}\n', 1, 'ERR_INVALID_ARGUMENT', /line 1: expected an array of numbers/],
      ['blank.jsonl', () => '\n  \n\n', 1, 'ERR_INVALID_ARGUMENT', /holds no vectors/],
      ['empty.jsonl', () => '', 1, 'ERR_INVALID_ARGUMENT', /is empty/],
      ['vectors.txt', () => '1 2 3\n', 2, 'ERR_INVALID_ARGUMENT', /cannot tell the format/],
    ];
    for (const [name, contents, exit, code, message] of cases) {
      it(`${name}: ${code}, exit ${exit}, naming the file`, async function () {
        fs.writeFileSync(file(name), contents());
        const r = await run([file(name), '--json']);
        assert.equal(r.code, exit, r.stderr);
        assert.equal(r.json.ok, false);
        assert.equal(r.json.error.code, code, r.json.error.message);
        assert.ok(r.json.error.message.includes(file(name)), `names the file: ${r.json.error.message}`);
        assert.match(r.json.error.message, message);
        assert.match(r.stderr, new RegExp(`vecvault: ${code}: `));
      });
    }

    it('a missing file is ERR_NOT_FOUND (exit 1), naming it', async function () {
      const r = await run([file('missing.fvecs')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /ERR_NOT_FOUND/);
      assert.ok(r.stderr.includes(file('missing.fvecs')));
    });

    it('under cosine a zero vector is ERR_INVALID_VECTOR naming the file and row; l2 takes it', async function () {
      const v = vectors.slice(0, 40).map((x) => Float32Array.from(x));
      v[7].fill(0);
      fs.writeFileSync(file('zero.fvecs'), fvecsBytes(v));
      const r = await run([file('zero.fvecs')]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /ERR_INVALID_VECTOR: .*zero\.fvecs: vector 7 is all zeros/);
      const ok = await run([file('zero.fvecs'), '--metric', 'l2', '--ef', '64', '--min-time', '0']);
      assert.equal(ok.code, 0, ok.stderr);
    });

    it('queries of another dimension are ERR_DIMENSION_MISMATCH naming both files', async function () {
      fs.writeFileSync(file('q8.fvecs'), fvecsBytes(h.randomVectors(5, 8, 3)));
      const r = await run([file('v.fvecs'), '--queries', file('q8.fvecs')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /ERR_DIMENSION_MISMATCH/);
      assert.ok(r.stderr.includes(file('q8.fvecs')) && r.stderr.includes(file('v.fvecs')), r.stderr);
    });
  });

  describe('usage errors (exit 2)', function () {
    const cases = [
      ['--ef', 'abc'],
      ['--ef', '16,,32'],
      ['--ef', '0'],
      ['--k', '0'],
      ['--k', '1.5'],
      ['--metric', 'ip'],
      ['--m', '1'],
      ['--threads', '0'],
      ['--min-time', '-1'],
      ['--min-time', 'soon'],
      ['--format', 'csv'],
      ['--queries-count', String(N)],
      ['--k', String(N)],
    ];
    for (const args of cases) {
      it(args.join(' '), async function () {
        const r = await run([file('v.fvecs'), ...args]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /ERR_INVALID_ARGUMENT/);
        assert.match(r.stderr, /Run 'vecvault bench --help'/);
      });
    }

    it('a plot in a missing directory fails before any work (exit 1, ERR_NOT_FOUND)', async function () {
      const r = await run([file('v.fvecs'), '--plot', path.join(tmp, 'nope', 'p.svg')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /ERR_NOT_FOUND: cannot write the plot/);
      assert.doesNotMatch(r.stderr, /read base/, 'nothing was read');
    });
  });

  describe('held-out queries', function () {
    it('a seeded sample, the same for a seed, disjoint from the base, in file order', async function () {
      const set = await readVectors(file('v.fvecs'));
      const a = holdOut(set, 30, 5);
      const b = holdOut(set, 30, 5);
      const c = holdOut(set, 30, 6);
      assert.deepEqual(a.baseRows, b.baseRows);
      assert.deepEqual(Array.from(a.queries), Array.from(b.queries));
      assert.notDeepEqual(a.baseRows, c.baseRows);
      assert.equal(a.baseRows.length, N - 30);
      assert.equal(a.base.length, (N - 30) * DIM);
      const held = [];
      for (let r = 0, j = 0; r < N; r++) if (a.baseRows[j] === r) j++;
      else held.push(r);
      assert.equal(held.length, 30);
      held.forEach((r, i) => assert.deepEqual(Array.from(a.queries.subarray(i * DIM, (i + 1) * DIM)), fround(vectors[r])));
      a.baseRows.forEach((r, i) => assert.deepEqual(Array.from(a.base.subarray(i * DIM, (i + 1) * DIM)), fround(vectors[r])));
    });
  });

  describe('bench', function () {
    const EFS = [4, 16, 256];

    for (const name of ['v.npy', 'v3.npy', 'v.jsonl']) {
      it(`${name}: --json has the documented shape, and recall at efSearch 256 is ~1 against the exact truth`, async function () {
        const r = await run([file(name), '--ef', EFS.join(','), '--queries-count', '25', '--k', '5', '--min-time', '0', '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.json.ok, true);
        const b = r.json.bench;
        assert.deepEqual(b.base, { file: file(name), format: name.endsWith('.npy') ? 'npy' : 'jsonl', count: N - 25, dimension: DIM, fileCount: N });
        assert.deepEqual(b.queries, { file: null, heldOut: true, seed: 1, count: 25 });
        assert.equal(b.k, 5);
        assert.equal(b.metric, 'cosine');
        assert.deepEqual(b.hnsw, { m: 16, efConstruction: 200 });
        assert.equal(b.minTime, 0);
        assert.equal(b.groundTruth.exact, true);
        assert.ok(b.build.seconds >= 0);
        assert.deepEqual(b.results.map((x) => x.efSearch), EFS);
        for (const x of b.results) {
          assert.deepEqual(Object.keys(x).sort(), ['efSearch', 'meanLatencyMs', 'qps', 'recall']);
          assert.ok(x.recall >= 0 && x.recall <= 1, `recall ${x.recall}`);
          assert.ok(x.qps > 0 && Number.isFinite(x.qps));
          assert.ok(x.meanLatencyMs >= 0 && Number.isFinite(x.meanLatencyMs));
        }
        assert.ok(b.results.at(-1).recall >= 0.99, `recall@5 at efSearch 256 is ${b.results.at(-1).recall}`);
        assert.equal(b.plot, null);
      });
    }

    it('with --queries the file\'s first --queries-count vectors are the queries and the whole base is indexed', async function () {
      const r = await run([file('v.fvecs'), '--queries', file('q.fvecs'), '--queries-count', '12', '--metric', 'l2', '--ef', '300', '--min-time', '0', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const b = r.json.bench;
      assert.equal(b.base.count, N);
      assert.deepEqual(b.queries, { file: file('q.fvecs'), format: 'fvecs', heldOut: false, count: 12 });
      assert.equal(b.metric, 'l2');
      assert.ok(b.results[0].recall >= 0.99, `recall ${b.results[0].recall}`);
    });

    it('prints a table with one row per efSearch, and says how the truth and the numbers were made', async function () {
      const r = await run([file('v.fvecs'), '--ef', EFS.join(','), '--queries-count', '10', '--min-time', '0']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /ground truth:\s+exact, from a flat index/);
      assert.match(r.stdout, /build:\s+[\d.]+ s/);
      assert.match(r.stdout, /efSearch\s+recall@10\s+QPS \(batch\)\s+mean latency/);
      for (const ef of EFS) assert.match(r.stdout, new RegExp(`^\\s*${ef}\\s+[01]\\.\\d{4}\\s+\\d+\\s+[\\d.]+ ms$`, 'm'));
      assert.match(r.stdout, /searchBatchAsync/);
      // Not a TTY: plain progress lines on stderr, no control characters.
      assert.match(r.stderr, /^build hnsw: 100% \(.*\)$/m);
      assert.doesNotMatch(r.stderr, /\x1b/);
    });

    it('--plot writes a well-formed SVG: one labelled point per efSearch, axes and a title', async function () {
      const out = file('plot.svg');
      const r = await run([file('v.fvecs'), '--ef', EFS.join(','), '--queries-count', '10', '--min-time', '0', '--plot', out, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.bench.plot, out);
      const svg = fs.readFileSync(out, 'utf8');
      const els = parseXml(svg);
      assert.equal(els[0].name, 'svg');
      assert.equal(els[0].attrs.xmlns, 'http://www.w3.org/2000/svg');
      const circles = els.filter((e) => e.name === 'circle');
      assert.deepEqual(circles.map((c) => Number(c.attrs['data-ef'])), EFS);
      for (const c of circles) {
        const x = Number(c.attrs.cx);
        const y = Number(c.attrs.cy);
        assert.ok(x >= 0 && x <= Number(els[0].attrs.width) && y >= 0 && y <= Number(els[0].attrs.height), 'inside the picture');
      }
      for (const ef of EFS) assert.ok(svg.includes(`>ef=${ef}</text>`), `label ef=${ef}`);
      assert.match(svg, /<title>v\.fvecs: 290 vectors × 16, k=10<\/title>/);
      assert.match(svg, />recall@10</);
      assert.match(svg, /queries per second \(log scale\)/);
    });

    it('a file name with XML characters is escaped in the plot', async function () {
      fs.copyFileSync(file('v.fvecs'), file('a&b<c>.fvecs'));
      const out = file('esc.svg');
      const r = await run([file('a&b<c>.fvecs'), '--ef', '64', '--queries-count', '10', '--min-time', '0', '--plot', out]);
      assert.equal(r.code, 0, r.stderr);
      const svg = fs.readFileSync(out, 'utf8');
      parseXml(svg);
      assert.ok(svg.includes('a&amp;b&lt;c&gt;.fvecs'));
    });

    it('an aborted signal (Ctrl-C) stops the bench with ERR_ABORTED', async function () {
      // The CLI's exit code for an interrupted command, where it has one.
      const exit = INTERRUPTED ?? 1;
      const already = await run([file('v.fvecs')], { signal: AbortSignal.abort() });
      assert.equal(already.code, exit);
      assert.match(already.stderr, /ERR_ABORTED/);
      // Abort once the index build has started: the handshake is its first progress line.
      const ac = new AbortController();
      const r = await run([file('v.fvecs'), '--queries-count', '10'], {
        signal: ac.signal,
        onStderr: (s) => {
          if (s.startsWith('build hnsw:')) ac.abort();
        },
      });
      assert.equal(r.code, exit, r.stderr);
      assert.match(r.stderr, /ERR_ABORTED/);
      assert.equal(r.stdout, '');
      // And once the first batch was timed: the one-query-per-call loop sees it.
      const late = new AbortController();
      const s = await run([file('v.fvecs'), '--queries-count', '10', '--ef', '4,16,256', '--min-time', '0'], {
        signal: late.signal,
        onStderr: (line) => {
          if (/^search: [1-9]/.test(line)) late.abort();
        },
      });
      assert.equal(s.code, exit, s.stderr);
      assert.match(s.stderr, /^search: 10%/m);
      assert.doesNotMatch(s.stderr, /^search: [2-9]0%/m, 'stopped within the first efSearch');
      assert.equal(s.stdout, '');
    });

    it('on a TTY each stage is a progress bar drawn in place', async function () {
      const stderr = { text: '', isTTY: true, columns: 100, write: (x) => ((stderr.text += x), true), on() {}, removeListener() {} };
      const io = { stdout: sink(), stderr, env: {} };
      const code = await main(['bench', file('v.fvecs'), '--queries-count', '10', '--ef', '64', '--min-time', '0'], io);
      assert.equal(code, 0, stderr.text);
      for (const stage of ['read base', 'ground truth: load', 'ground truth: search', 'build hnsw', 'search']) {
        assert.ok(stderr.text.includes(`${stage} [`), `a bar for ${stage}`);
      }
      assert.ok(stderr.text.includes('\x1b['), 'drawn with terminal control sequences');
      assert.doesNotMatch(stderr.text, /^build hnsw: \d+%/m, 'not the plain lines');
      assert.match(io.stdout.text, /recall@10/);
    });

    it('bin/vecvault.js bench runs as a process: exit 0, one JSON object on stdout, plain progress on stderr', async function () {
      // The default --min-time: the queries are repeated, recall still comes from the exact truth.
      const r = await spawnCli(['bench', file('v2.npy'), '--ef', '32,256', '--queries-count', '10', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(r.stdout);
      assert.equal(json.ok, true);
      assert.equal(json.bench.minTime, 0.25);
      assert.ok(json.bench.results[1].recall >= 0.99, `recall ${json.bench.results[1].recall}`);
      assert.deepEqual(json.bench.results.map((x) => x.efSearch), [32, 256]);
      assert.match(r.stderr, /^read base: 100%/m);
      assert.doesNotMatch(r.stderr, /\x1b/);
    });

    it('vecvault --help lists bench; bench --help documents the formats and options', async function () {
      const io = { stdout: sink(), stderr: sink(), env: {} };
      assert.equal(await main(['--help'], io), 0);
      assert.match(io.stdout.text, /^\s+bench\s+recall@k and QPS/m);
      const r = await run(['--help']);
      assert.equal(r.code, 0);
      for (const s of ['.npy', '.fvecs', '.jsonl', '--queries', '--ef', '--plot', '--metric', 'searchBatchAsync']) assert.ok(r.stdout.includes(s), s);
    });
  });
});
