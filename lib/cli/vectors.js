'use strict';
// Readers for the vector files `vecvault bench` takes: NumPy .npy, .fvecs
// and JSON lines. Each streams its file in pieces into one Float32Array, so
// a 1.5 GB file never becomes one string or one Buffer beside the result,
// and names the file and the byte offset or line of whatever is malformed.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { VecvaultError, abortError } = require('../errors');
const { LIMITS } = require('../options');
const { usageError } = require('./args');

const FORMATS = Object.freeze({ '.npy': 'npy', '.fvecs': 'fvecs', '.jsonl': 'jsonl', '.ndjson': 'jsonl' });
const FORMAT_NAMES = Object.freeze(['npy', 'fvecs', 'jsonl']);

// Bytes read per call; a multiple of 8, so float64 data stays aligned.
const PIECE = 4 * 1024 * 1024;
const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/** The content of `file` is malformed at `where` ("byte 12", "line 3"): exit 1, with `code`. */
function inputError(file, where, message, code = 'ERR_INVALID_ARGUMENT') {
  const err = new VecvaultError(`${file}: ${where ? where + ': ' : ''}${message}`, code);
  err.file = file;
  return err;
}

/** `file` is of a kind bench does not read (a dtype, a layout): a usage error, exit 2. */
function unsupported(file, message) {
  const err = usageError(`${file}: ${message}`);
  err.file = file;
  return err;
}

function ioError(file, err) {
  const code = err.code === 'ENOENT' ? 'ERR_NOT_FOUND' : err.code === 'EACCES' || err.code === 'EPERM' ? 'ERR_ACCESS' : 'ERR_IO';
  return new VecvaultError(`cannot read the vector file ${file}: ${err.message}`, code, { cause: err });
}

/** The format of `file`: `override` when given, else from its extension. */
function formatOf(file, override) {
  if (override !== undefined) {
    if (!FORMAT_NAMES.includes(override)) throw usageError(`--format must be one of ${FORMAT_NAMES.join(', ')}, got "${override}"`);
    return override;
  }
  const ext = path.extname(file).toLowerCase();
  if (!Object.hasOwn(FORMATS, ext)) {
    throw usageError(`cannot tell the format of ${file} from its extension (${Object.keys(FORMATS).join(', ')}); pass --format ${FORMAT_NAMES.join('|')}`);
  }
  return FORMATS[ext];
}

function checkDimension(file, where, d) {
  if (!Number.isInteger(d) || d < 1 || d > LIMITS.maxDimension) {
    throw inputError(file, where, `dimension ${d} is not in 1..${LIMITS.maxDimension}`);
  }
}

/** Throws ERR_INVALID_VECTOR at the first NaN or infinity of data[from, to). */
function checkFinite(file, data, from, to, dimension, offsetOf) {
  for (let i = from; i < to; i++) {
    if (!Number.isFinite(data[i])) {
      const row = Math.floor(i / dimension);
      throw inputError(file, `byte ${offsetOf(i)}`, `vector ${row}, component ${i - row * dimension} is ${data[i]}, not a finite number`, 'ERR_INVALID_VECTOR');
    }
  }
}

function swap32(bytes) {
  for (let i = 0; i + 3 < bytes.length; i += 4) {
    const a = bytes[i];
    const b = bytes[i + 1];
    bytes[i] = bytes[i + 3];
    bytes[i + 1] = bytes[i + 2];
    bytes[i + 2] = b;
    bytes[i + 3] = a;
  }
}

/** Reads exactly `length` bytes at `position` into `target` (a Uint8Array); short only at the end of the file. */
async function readAt(fh, file, target, position) {
  let got = 0;
  while (got < target.length) {
    let n;
    try {
      ({ bytesRead: n } = await fh.read(target, got, target.length - got, position + got));
    } catch (err) {
      throw ioError(file, err);
    }
    if (n === 0) break;
    got += n;
  }
  return got;
}

async function openFile(file) {
  let fh;
  try {
    fh = await fs.promises.open(file, 'r');
    const st = await fh.stat();
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: st.isDirectory() ? 'EISDIR' : 'EINVAL' });
    return { fh, size: st.size };
  } catch (err) {
    if (fh) await fh.close();
    throw ioError(file, err);
  }
}

/* ------------------------------------------------------------------ .npy */

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const NPY_DTYPES = { '<f4': 4, '<f8': 8 };

/** The .npy header: { itemSize, rows, dimension, dataStart }. Versions 1.0, 2.0 and 3.0. */
async function npyHeader(fh, file, size) {
  const pre = Buffer.alloc(12);
  const got = await readAt(fh, file, pre, 0);
  if (got < 10 || !pre.subarray(0, 6).equals(NPY_MAGIC)) throw inputError(file, 'byte 0', 'not a NumPy .npy file (no \\x93NUMPY magic)');
  const major = pre[6];
  if (major < 1 || major > 3) throw unsupported(file, `.npy format version ${major}.${pre[7]} is not supported (1.0, 2.0 and 3.0 are)`);
  const lenBytes = major === 1 ? 2 : 4;
  if (got < 8 + lenBytes) throw inputError(file, 'byte 8', 'the .npy header is truncated');
  const headerLen = major === 1 ? pre.readUInt16LE(8) : pre.readUInt32LE(8);
  const dataStart = 8 + lenBytes + headerLen;
  if (headerLen > 1 << 20 || dataStart > size) throw inputError(file, 'byte 8', `the .npy header claims ${headerLen} bytes, the file has ${size - 8 - lenBytes} after the length`);
  const raw = Buffer.alloc(headerLen);
  await readAt(fh, file, raw, 8 + lenBytes);
  const text = raw.toString(major === 3 ? 'utf8' : 'latin1').trim();
  const where = `byte ${8 + lenBytes}`;
  if (!text.startsWith('{') || !text.endsWith('}')) throw inputError(file, where, `malformed .npy header ${JSON.stringify(text)}: not a dictionary`);
  const descr = /['"]descr['"]\s*:\s*(?:'([^']*)'|"([^"]*)"|(\[))/.exec(text);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)\b/.exec(text);
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) throw inputError(file, where, `malformed .npy header ${JSON.stringify(text)}: it needs 'descr', 'fortran_order' and 'shape'`);
  if (descr[3]) throw unsupported(file, 'structured .npy dtypes are not supported: save a 2-D float32 or float64 array');
  const dtype = descr[1] ?? descr[2];
  if (dtype === '>f4' || dtype === '>f8') throw unsupported(file, `big-endian dtype '${dtype}' is not supported: save it little-endian, a.astype('<${dtype.slice(1)}')`);
  if (!Object.hasOwn(NPY_DTYPES, dtype)) throw unsupported(file, `dtype '${dtype}' is not supported: save float32 ('<f4') or float64 ('<f8'), e.g. a.astype('float32')`);
  if (fortran[1] === 'True') throw unsupported(file, 'Fortran-order (column-major) arrays are not supported: save np.ascontiguousarray(a)');
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (!dims.every((s) => /^\d+L?$/.test(s))) throw inputError(file, where, `malformed .npy shape (${shape[1]})`);
  if (dims.length !== 2) throw unsupported(file, `a .npy of shape (${dims.join(', ')}) is not supported: it must be 2-D, (rows, dimension)`);
  const [rows, dimension] = dims.map((s) => Number.parseInt(s, 10));
  if (rows === 0) throw inputError(file, where, 'holds no vectors (shape has 0 rows)');
  checkDimension(file, where, dimension);
  const itemSize = NPY_DTYPES[dtype];
  const want = rows * dimension * itemSize;
  const have = size - dataStart;
  if (have < want) throw inputError(file, `byte ${size}`, `truncated: shape (${rows}, ${dimension}) of '${dtype}' needs ${want} bytes of data, the file has ${have}`);
  if (have > want) throw inputError(file, `byte ${dataStart + want}`, `${have - want} bytes follow the array's data`);
  return { itemSize, rows, dimension, dataStart };
}

async function readNpy(fh, file, size, progress) {
  const { itemSize, rows, dimension, dataStart } = await npyHeader(fh, file, size);
  const data = new Float32Array(rows * dimension);
  const bytes = new Uint8Array(data.buffer);
  const scratch = itemSize === 8 ? new Float64Array(PIECE / 8) : null;
  const offsetOf = (i) => dataStart + i * itemSize;
  for (let done = 0; done < data.length; ) {
    const n = Math.min(PIECE / itemSize, data.length - done);
    if (itemSize === 4) {
      const target = bytes.subarray(done * 4, (done + n) * 4);
      await readAt(fh, file, target, offsetOf(done));
      if (!LITTLE_ENDIAN_HOST) swap32(target);
    } else {
      const target = new Uint8Array(scratch.buffer, 0, n * 8);
      await readAt(fh, file, target, offsetOf(done));
      if (!LITTLE_ENDIAN_HOST) throw unsupported(file, 'float64 .npy files are read on little-endian hosts only');
      for (let i = 0; i < n; i++) data[done + i] = scratch[i];
      // A finite float64 beyond float32's range becomes Infinity: caught below.
    }
    checkFinite(file, data, done, done + n, dimension, offsetOf);
    done += n;
    progress(offsetOf(done), size);
  }
  return { count: rows, dimension, data };
}

/* ---------------------------------------------------------------- .fvecs */

async function readFvecs(fh, file, size, progress) {
  if (size === 0) throw inputError(file, '', 'is empty: it holds no vectors');
  const head = Buffer.alloc(4);
  if ((await readAt(fh, file, head, 0)) < 4) throw inputError(file, 'byte 0', `truncated: ${size} bytes, not even one dimension header`);
  const dimension = head.readInt32LE(0);
  checkDimension(file, 'byte 0', dimension);
  const record = 4 + 4 * dimension;
  const count = Math.floor(size / record);
  const data = new Float32Array(count * dimension);
  const perPiece = Math.max(1, Math.floor(PIECE / record));
  const scratch = new Uint8Array(perPiece * record);
  const view = new DataView(scratch.buffer);
  for (let row = 0; row < count; ) {
    const n = Math.min(perPiece, count - row);
    const base = row * record;
    await readAt(fh, file, scratch.subarray(0, n * record), base);
    if (!LITTLE_ENDIAN_HOST) swap32(scratch.subarray(0, n * record));
    for (let i = 0; i < n; i++) {
      const at = i * record;
      const d = LITTLE_ENDIAN_HOST ? view.getInt32(at, true) : view.getInt32(at, false);
      if (d !== dimension) {
        throw inputError(file, `byte ${base + at}`, `vector ${row + i} has dimension ${d}, the first has ${dimension}`, 'ERR_DIMENSION_MISMATCH');
      }
      data.set(new Float32Array(scratch.buffer, at + 4, dimension), (row + i) * dimension);
    }
    const from = row * dimension;
    checkFinite(file, data, from, from + n * dimension, dimension, (k) => {
      const r = Math.floor(k / dimension);
      return r * record + 4 + (k - r * dimension) * 4;
    });
    row += n;
    progress(row * record, size);
  }
  const rest = size - count * record;
  if (rest !== 0) {
    throw inputError(file, `byte ${count * record}`, `truncated: the last vector has ${rest} of its ${record} bytes (4 for the dimension, 4 per component)`);
  }
  return { count, dimension, data };
}

/* ---------------------------------------------------------- JSON lines */

/** The numbers of one JSON line: an array, or an object's `vector` or `embedding` array. */
function lineVector(file, lineNo, value) {
  let v = value;
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) v = Object.hasOwn(v, 'vector') ? v.vector : v.embedding;
  if (!Array.isArray(v)) {
    throw inputError(file, `line ${lineNo}`, 'expected an array of numbers, or an object with a "vector" or "embedding" array');
  }
  if (v.length === 0) throw inputError(file, `line ${lineNo}`, 'the vector is empty', 'ERR_INVALID_VECTOR');
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'number' || !Number.isFinite(Math.fround(v[i]))) {
      throw inputError(file, `line ${lineNo}`, `element ${i} is ${JSON.stringify(v[i])}, not a finite float32 number`, 'ERR_INVALID_VECTOR');
    }
  }
  return v;
}

async function readJsonl(fh, file, size, progress) {
  const stream = fh.createReadStream({ start: 0, autoClose: false });
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  let data = new Float32Array(0);
  let dimension = 0;
  let count = 0;
  let lineNo = 0;
  let firstLine = 0;
  try {
    for await (const raw of lines) {
      lineNo++;
      // A byte-order mark, as some Windows editors write, is not JSON.
      const line = lineNo === 1 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
      if (line.trim() === '') continue;
      let value;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw inputError(file, `line ${lineNo}`, `not valid JSON: ${err.message}`);
      }
      const v = lineVector(file, lineNo, value);
      if (count === 0) {
        checkDimension(file, `line ${lineNo}`, v.length);
        dimension = v.length;
        firstLine = lineNo;
        data = new Float32Array(1024 * dimension);
      } else if (v.length !== dimension) {
        throw inputError(file, `line ${lineNo}`, `has ${v.length} numbers, line ${firstLine} had ${dimension}`, 'ERR_DIMENSION_MISMATCH');
      }
      if ((count + 1) * dimension > data.length) {
        const grown = new Float32Array(data.length * 2);
        grown.set(data);
        data = grown;
      }
      data.set(v, count * dimension);
      count++;
      if ((count & 1023) === 0) progress(stream.bytesRead, size);
    }
  } catch (err) {
    throw err instanceof VecvaultError ? err : ioError(file, err);
  } finally {
    lines.close();
    stream.destroy();
  }
  if (count === 0) throw inputError(file, '', `holds no vectors (${lineNo} line${lineNo === 1 ? '' : 's'}, all blank)`);
  progress(size, size);
  // Shrink only when the doubling left much unused: a copy costs as much as the waste.
  const used = count * dimension;
  return { count, dimension, data: data.length > used * 1.25 ? data.slice(0, used) : data.subarray(0, used) };
}

/* ---------------------------------------------------------------- entry */

const READERS = { npy: readNpy, fvecs: readFvecs, jsonl: readJsonl };

/**
 * Reads the vectors of `file`: { file, format, count, dimension, data }
 * with `data` a Float32Array of count * dimension numbers, row after row.
 * `onProgress(bytesRead, fileSize)`; `signal` stops it between pieces.
 */
async function readVectors(file, { format, onProgress, signal } = {}) {
  const kind = formatOf(file, format);
  const { fh, size } = await openFile(file);
  const progress = (done, total) => {
    if (signal && signal.aborted) throw abortError(signal);
    if (onProgress) onProgress(Math.min(done, total), total);
  };
  try {
    if (size === 0) throw inputError(file, '', 'is empty: it holds no vectors');
    progress(0, size);
    const out = await READERS[kind](fh, file, size, progress);
    return { file, format: kind, ...out };
  } finally {
    await fh.close();
  }
}

module.exports = { readVectors, formatOf, FORMAT_NAMES };
