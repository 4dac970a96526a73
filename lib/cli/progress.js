'use strict';
// Progress for long CLI operations, on stderr so stdout stays the result:
// a cli-progress bar on a TTY, plain lines at every tenth otherwise (logs
// and CI keep a record, and no control characters end up in them). A bar
// stops as soon as the command's signal aborts (Ctrl-C), so the terminal is
// left clean however the operation unwinds.
const cliProgress = require('cli-progress');
const { size } = require('./format');

/** Bars drawn now: stopAll() ends them when the process must exit at once. */
const drawn = new Set();

/** How `done`/`total` read: bytes (the default) or a count of `unit`. */
function amount(n, unit) {
  return unit === 'bytes' ? size(n) : `${n} ${unit}`;
}

function barFor(label, stream, unit) {
  const bar = new cliProgress.SingleBar(
    { stream, format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted}`, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic
  );
  let state = 'new';
  const stop = () => {
    if (state === 'drawn') bar.stop();
    drawn.delete(stop);
    state = 'stopped';
  };
  return {
    onProgress(done, total) {
      if (state === 'stopped') return;
      if (state === 'new') {
        bar.start(total, done);
        state = 'drawn';
        drawn.add(stop);
      } else {
        bar.setTotal(total);
        bar.update(done);
      }
    },
    stop,
  };
}

function linesFor(label, stream, unit) {
  let printed = -1;
  let stopped = false;
  return {
    onProgress(done, total) {
      const tenth = total === 0 ? 10 : Math.floor((done * 10) / total);
      if (stopped || tenth === printed) return;
      printed = tenth;
      stream.write(`${label}: ${tenth * 10}% (${amount(done, unit)} of ${amount(total, unit)})\n`);
    },
    stop() {
      stopped = true;
    },
  };
}

/**
 * An onProgress(done, total) callback for the operation `label`, and stop()
 * to call once it settled. `unit`: what done and total count ('bytes', or
 * e.g. 'objects'). Progress goes to io.stderr and stops when io.signal aborts.
 */
function progressFor(label, io, { unit = 'bytes' } = {}) {
  const stream = io.stderr;
  const p = stream.isTTY ? barFor(label, stream, unit) : linesFor(label, stream, unit);
  const signal = io.signal;
  if (!signal) return p;
  if (signal.aborted) p.stop();
  const stop = () => {
    signal.removeEventListener('abort', stop);
    p.stop();
  };
  signal.addEventListener('abort', stop, { once: true });
  return { onProgress: p.onProgress, stop };
}

/**
 * Runs `fn(onProgress, signal)` with progress for `label`, stopping the bar
 * however it ends; `signal` is io.signal, for fn to hand to the operation.
 */
async function withProgress(label, io, fn, options) {
  const p = progressFor(label, io, options);
  try {
    return await fn(p.onProgress, io.signal);
  } finally {
    p.stop();
  }
}

/** Stops every bar still drawn (before an immediate exit), restoring the cursor. */
function stopAll() {
  for (const stop of [...drawn]) stop();
}

module.exports = { progressFor, withProgress, stopAll };
