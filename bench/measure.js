'use strict';
// Shared measuring helpers for the benchmark scripts: a monotonic clock and
// how much CPU other processes took while we were timing.

const fs = require('fs');

/** Seconds, monotonic. */
function now() {
  return Number(process.hrtime.bigint()) / 1e9;
}

// CPU used by *other* processes (in cores) between two snapshots: machine-wide
// busy time from /proc/stat minus this process's own CPU time. Timings taken
// while it is well above 0 shared the cores with someone else.
function cpuSnapshot() {
  let busy = null;
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    busy = (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) / 100; // USER_HZ is 100 on Linux
  } catch { /* not Linux */ }
  const u = process.cpuUsage();
  return { t: now(), busy, own: (u.user + u.system) / 1e6 };
}

function otherLoad(a, b) {
  if (a.busy === null || b.busy === null || b.t - a.t < 0.05) return null;
  return Math.max(0, (b.busy - a.busy) - (b.own - a.own)) / (b.t - a.t);
}

/**
 * Reads `--name value` / `--name=value` options into `o` (defaults in
 * place), using `names` (flag -> key); `flags` (flag -> key) are booleans.
 * `-h`/`--help` sets o.help. `positive` keys must parse as numbers > 0.
 */
function parseOptions(script, argv, o, names, flags = {}, positive = []) {
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i], v;
    if (a === '-h' || a === '--help') { o.help = true; continue; }
    if (Object.hasOwn(flags, a)) { o[flags[a]] = true; continue; }
    const eq = a.indexOf('=');
    if (eq > 0) { v = a.slice(eq + 1); a = a.slice(0, eq); }
    const key = names[a];
    if (!key) throw new Error(`${script}: unknown argument ${a} (try --help)`);
    if (v === undefined) {
      if (i + 1 >= argv.length) throw new Error(`${script}: ${a} needs a value`);
      v = argv[++i];
    }
    o[key] = v;
  }
  for (const key of positive) {
    o[key] = Number(o[key]);
    if (!(o[key] > 0)) throw new RangeError(`${script}: --${key} must be a positive number`);
  }
  return o;
}

module.exports = { now, cpuSnapshot, otherLoad, parseOptions };
