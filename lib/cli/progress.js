'use strict';
// Progress for long CLI operations, on stderr so stdout stays the result:
// a cli-progress bar on a TTY, plain lines at every tenth otherwise (logs
// and CI keep a record, and no control characters end up in them).
const cliProgress = require('cli-progress');
const { size } = require('./format');

/**
 * An onProgress(done, total) callback (bytes) for the operation `label`,
 * and stop() to call once it settled. `stream` defaults to io.stderr.
 */
function progressFor(label, io) {
  const stream = io.stderr;
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: `${label} [{bar}] {percentage}% | {value}/{total} bytes | ETA {eta_formatted}`, hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic
    );
    let started = false;
    return {
      onProgress(done, total) {
        if (!started) {
          bar.start(total, done);
          started = true;
        } else {
          bar.update(done);
        }
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let printed = -1;
  return {
    onProgress(done, total) {
      const tenth = total === 0 ? 10 : Math.floor((done * 10) / total);
      if (tenth === printed) return;
      printed = tenth;
      stream.write(`${label}: ${tenth * 10}% (${size(done)} of ${size(total)})\n`);
    },
    stop() {},
  };
}

/** Runs `fn(onProgress)` with progress for `label`, stopping the bar however it ends. */
async function withProgress(label, io, fn) {
  const p = progressFor(label, io);
  try {
    return await fn(p.onProgress);
  } finally {
    p.stop();
  }
}

module.exports = { progressFor, withProgress };
