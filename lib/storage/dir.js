'use strict';
/*
 * lib/storage/dir.js: DirStorage, the Storage interface over a session
 * directory in the exact layout of docs/FORMAT.md section 1.
 *
 * Owns: mapping storage names to paths (only the format's names: anything
 * else is ERR_INVALID_ARGUMENT, so no name can escape the directory), the
 * crash-safe write (a `tmp-` + 16 hex temporary file, mode 0600, O_EXCL,
 * fsync, rename, fsync of the directory: the same names the engine's garbage
 * collection recognises and removes after a crash), reads that refuse
 * anything but a regular file (O_NOFOLLOW | O_NONBLOCK, then fstat), and the
 * manifest's compare-and-swap by SHA-256 of its bytes.
 *
 * The engine reads and writes session directories on its own native path
 * (with its flock on `lock`); this class is what JavaScript code uses when it
 * needs a directory as a Storage: copy, export and import between a directory
 * and any other store, and the conformance suite.
 */
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const path = require('node:path');
const crypto = require('node:crypto');
const { VecvaultError } = require('../errors');
const c = require('./common');

const MANIFEST = 'manifest.json';
/* docs/FORMAT.md section 3: manifest.json is at most 64 MiB. */
const MANIFEST_MAX_BYTES = 64 * 1024 * 1024;

const OBJECT_RE = /^objects\/[0-9a-f]{64}$/;
const HISTORY_RE = /^manifests\/[0-9]{20}\.json$/;
const TEMP_RE = /^tmp-[0-9a-f]{16}$/;
/* Names read(), write() and delete() accept. manifest.json is reached only
 * through readManifest/writeManifest; `lease` is the lock object of stores
 * without conditional writes (storage interface). */
function isDataName(name) {
  return typeof name === 'string' && (OBJECT_RE.test(name) || HISTORY_RE.test(name) || name === 'lease');
}

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

function throwIfAborted(options) {
  c.throwIfAborted(c.signalOf(options));
}

/*
 * Manifest replaces in this process, one at a time per directory: the check
 * of the expected version and the rename must not interleave with another
 * writeManifest of the same directory (path -> promise of the last one).
 */
const manifestQueues = new Map();
async function serialized(dir, fn) {
  const prev = manifestQueues.get(dir) || Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => {});
  manifestQueues.set(dir, tail);
  try {
    return await run;
  } finally {
    if (manifestQueues.get(dir) === tail) manifestQueues.delete(dir);
  }
}

class DirStorage {
  #dir;

  /** @param {string} dir the session directory (created by the first write; its parent must exist) */
  constructor(dir) {
    if (typeof dir !== 'string' || dir.length === 0 || dir.includes('\0')) {
      throw new VecvaultError('DirStorage: dir must be a non-empty path string', 'ERR_INVALID_ARGUMENT');
    }
    this.#dir = path.resolve(dir);
  }

  get description() {
    return this.#dir;
  }

  get conditionalWrites() {
    return true;
  }

  /* An fs error as a typed error naming the storage and the file. */
  #fail(err, what, name) {
    if (err instanceof VecvaultError) return err;
    const where = `${this.#dir}: ${what} ${name}`;
    switch (err && err.code) {
      case 'ENOSPC':
      case 'EDQUOT':
        return new VecvaultError(`${where}: no space left`, 'ERR_NOSPC', { cause: err });
      case 'EACCES':
      case 'EPERM':
      case 'EROFS':
        return new VecvaultError(`${where}: permission denied`, 'ERR_ACCESS', { cause: err });
      case 'ELOOP':
        return new VecvaultError(`${where}: not a regular file`, 'ERR_IO', { cause: err });
      default:
        return new VecvaultError(`${where}: ${err && err.message}`, 'ERR_IO', { cause: err });
    }
  }

  #path(name) {
    if (!isDataName(name)) {
      throw new VecvaultError(`DirStorage: ${JSON.stringify(String(name)).slice(0, 100)} is not a session object name`, 'ERR_INVALID_ARGUMENT');
    }
    return path.join(this.#dir, ...name.split('/'));
  }

  /* Opens `file` for reading if it is a regular file; null if it does not exist. */
  async #openRegular(file, name) {
    let fh;
    try {
      fh = await fsp.open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (err) {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
      throw this.#fail(err, 'cannot open', name);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new VecvaultError(`${this.#dir}: ${name} is not a regular file`, 'ERR_IO');
      return { fh, size: st.size };
    } catch (err) {
      await fh.close();
      throw this.#fail(err, 'cannot stat', name);
    }
  }

  /* Reads [offset, offset + length) of an open file, looping on short reads;
   * fewer bytes only where the file ends. */
  async #readAt(fh, offset, length, name) {
    /* a Uint8Array of its own (never a view of Buffer's shared pool): the caller may keep it */
    const out = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      let n;
      try {
        ({ bytesRead: n } = await fh.read(out, got, length - got, offset + got));
      } catch (err) {
        throw this.#fail(err, 'cannot read', name);
      }
      if (n === 0) break;
      got += n;
    }
    return got === length ? out : out.subarray(0, got);
  }

  async read(name, range, options) {
    const file = this.#path(name);
    c.checkRange(range);
    throwIfAborted(options);
    const opened = await this.#openRegular(file, name);
    if (!opened) return null;
    const { fh, size } = opened;
    try {
      if (range == null) {
        const data = await this.#readAt(fh, 0, size, name);
        /* A file that shrank under us would be a partial object: say so. */
        if (data.length !== size) throw new VecvaultError(`${this.#dir}: ${name} changed while it was read`, 'ERR_IO');
        return data;
      }
      if (range.offset >= size) return new Uint8Array(0);
      return await this.#readAt(fh, range.offset, Math.min(range.length, size - range.offset), name);
    } finally {
      await fh.close();
    }
  }

  async write(name, data, options) {
    const file = this.#path(name);
    c.checkData(data);
    throwIfAborted(options);
    await this.#ensureDir(path.dirname(file), name);
    await this.#writeAtomically(file, data, name, options);
  }

  async delete(name, options) {
    const file = this.#path(name);
    throwIfAborted(options);
    try {
      await fsp.unlink(file);
    } catch (err) {
      if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') throw this.#fail(err, 'cannot delete', name);
    }
  }

  /*
   * Every file in the directory and in its objects/ and manifests/, except
   * this class's own temporary files. Anything else (a foreign file, a
   * symbolic link, a FIFO) is listed too, and a directory other than a real
   * objects/ or manifests/ is listed as its name and '/' (size 0) without
   * looking inside, so a caller can tell an empty directory from someone
   * else's (docs/FORMAT.md section 1: where a save may write).
   */
  async list(prefix, options) {
    c.checkPrefix(prefix);
    throwIfAborted(options);
    const out = [];
    const add = async (e, name) => {
      if (e.isDirectory()) {
        if (`${name}/`.startsWith(prefix)) out.push({ name: `${name}/`, size: 0 });
      } else if (!TEMP_RE.test(e.name)) {
        await this.#pushInfo(out, name, prefix);
      }
    };
    for (const e of await this.#entries(this.#dir, '')) {
      if ((e.name === 'objects' || e.name === 'manifests') && e.isDirectory()) {
        if (!prefix.startsWith(`${e.name}/`) && !`${e.name}/`.startsWith(prefix)) continue;
        /* the stats of a directory's entries at once: thousands of objects list in a few thread-pool rounds */
        await Promise.all((await this.#entries(path.join(this.#dir, e.name), `${e.name}/`)).map((f) => add(f, `${e.name}/${f.name}`)));
      } else {
        await add(e, e.name);
      }
    }
    return out;
  }

  async #entries(dir, label) {
    try {
      return await fsp.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [];
      throw this.#fail(err, 'cannot list', label || '.');
    }
  }

  async #pushInfo(out, name, prefix) {
    if (!name.startsWith(prefix)) return;
    let st;
    try {
      st = await fsp.lstat(path.join(this.#dir, ...name.split('/')));
    } catch (err) {
      if (err.code === 'ENOENT') return; /* deleted since readdir */
      throw this.#fail(err, 'cannot stat', name);
    }
    out.push({ name, size: st.size, lastModified: st.mtimeMs });
  }

  async readManifest(options) {
    throwIfAborted(options);
    const data = await this.#readManifestBytes();
    return data && { data, version: versionOf(data) };
  }

  async #readManifestBytes() {
    const opened = await this.#openRegular(path.join(this.#dir, MANIFEST), MANIFEST);
    if (!opened) return null;
    const { fh, size } = opened;
    try {
      if (size > MANIFEST_MAX_BYTES) throw new VecvaultError(`${this.#dir}: ${MANIFEST} is larger than 64 MiB`, 'ERR_MANIFEST_CORRUPT');
      const data = await this.#readAt(fh, 0, size, MANIFEST);
      if (data.length !== size) throw new VecvaultError(`${this.#dir}: ${MANIFEST} changed while it was read`, 'ERR_IO');
      return data;
    } finally {
      await fh.close();
    }
  }

  /*
   * Replaces manifest.json if its current version is `expectedVersion` (null:
   * only if there is none). The new manifest is written and synced to a
   * temporary file first; the precondition is checked right before the rename.
   *
   * With `null` the replace is atomic where the file system has hard links
   * (link(2) fails if manifest.json exists).
   * With a version it is NOT atomic against a concurrent writer: another
   * process could replace manifest.json between the check and the rename.
   * (Within this process the replaces of one directory run one at a time.)
   * Directory sessions are guarded against that by the engine's native path,
   * which holds its flock on `lock` for the whole save; this class is for
   * copies into a directory nobody else is writing.
   */
  async writeManifest(data, expectedVersion, options) {
    c.checkData(data);
    c.checkExpectedVersion(expectedVersion);
    throwIfAborted(options);
    await this.#ensureDir(this.#dir, '.');
    const file = path.join(this.#dir, MANIFEST);
    const conflict = () => new VecvaultError(`${this.#dir}: ${MANIFEST} changed since version ${expectedVersion}`, 'ERR_CONFLICT');
    await this.#writeAtomically(file, data, MANIFEST, options, (tmp) => serialized(this.#dir, async () => {
      if (expectedVersion === null) {
        try {
          await fsp.link(tmp, file);
          await fsp.unlink(tmp);
          return;
        } catch (err) {
          if (err.code === 'EEXIST') throw conflict();
          /* a file system without hard links: check, then rename, as for a version */
          if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK'].includes(err.code)) throw err;
        }
      }
      const current = await this.#readManifestBytes();
      const ok = expectedVersion === null ? !current : current && versionOf(current) === expectedVersion;
      if (!ok) throw conflict();
      await fsp.rename(tmp, file);
    }));
    return { version: versionOf(data) };
  }

  /* Creates `dir` (one level: the session directory's parent must exist) with mode 0700 if it is missing. */
  async #ensureDir(dir, name) {
    try {
      await fsp.mkdir(dir, { mode: 0o700 });
    } catch (err) {
      if (err.code === 'EEXIST') {
        /* objects/ and manifests/ must be real directories, not links to elsewhere (the session directory itself may be one) */
        if (dir === this.#dir || (await fsp.lstat(dir)).isDirectory()) return;
        throw new VecvaultError(`${this.#dir}: ${path.basename(dir)} is not a directory`, 'ERR_IO');
      }
      if (err.code === 'ENOENT' && dir !== this.#dir) {
        await this.#ensureDir(this.#dir, '.');
        return this.#ensureDir(dir, name);
      }
      throw this.#fail(err, 'cannot create the directory for', name);
    }
  }

  /*
   * docs/FORMAT.md section 6, steps 2 and 3: a temporary file of the format's
   * pattern beside `file` (mode 0600, O_EXCL), every byte written, fsync,
   * then `install(tmp)` (default: rename over `file`), then fsync of the
   * directory. The temporary file is removed on any failure.
   */
  async #writeAtomically(file, data, name, options, install = (tmp) => fsp.rename(tmp, file)) {
    const dir = path.dirname(file);
    const tmp = path.join(dir, `tmp-${crypto.randomBytes(8).toString('hex')}`);
    let fh;
    let installed = false;
    try {
      fh = await fsp.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      let off = 0;
      while (off < data.length) {
        const { bytesWritten } = await fh.write(data, off, data.length - off);
        off += bytesWritten;
      }
      await fh.sync();
      await fh.close();
      fh = undefined;
      throwIfAborted(options);
      await install(tmp);
      installed = true;
      await syncDir(dir);
    } catch (err) {
      if (fh) await fh.close().catch(() => {});
      if (!installed) await fsp.unlink(tmp).catch(() => {});
      throw this.#fail(err, 'cannot write', name);
    }
  }
}

async function syncDir(dir) {
  const fh = await fsp.open(dir, O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function versionOf(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

module.exports = { DirStorage, isDataName, OBJECT_RE, HISTORY_RE, TEMP_RE, MANIFEST_MAX_BYTES };
