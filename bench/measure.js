'use strict';
// Shared measuring helpers for the benchmark scripts: a monotonic clock and
// how much CPU other processes took while we were timing.

const fs = require('fs');
const os = require('os');

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


// ---- shared by session.js and lazy.js ----

const path = require('path');
const { execFileSync } = require('child_process');

const REPO = path.join(__dirname, '..');

// VmRSS and VmHWM (peak) of this process, in bytes.
function memStatus() {
  try {
    const s = fs.readFileSync('/proc/self/status', 'utf8');
    const kb = (name) => Number((new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(s) || [])[1]) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return { rss: process.memoryUsage.rss(), peak: process.resourceUsage().maxRSS * 1024 };
  }
}

// du: allocated bytes (st_blocks) and apparent bytes of a file or directory.
function diskUsage(p) {
  const st = fs.lstatSync(p);
  let out = { allocated: st.blocks * 512, apparent: st.size, files: st.isFile() ? 1 : 0 };
  if (st.isDirectory()) {
    for (const e of fs.readdirSync(p)) {
      const d = diskUsage(path.join(p, e));
      out = { allocated: out.allocated + d.allocated, apparent: out.apparent + d.apparent, files: out.files + d.files };
    }
  }
  return out;
}

function readVersion(dir) {
  try { return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version; } catch { return null; }
}

function machineInfo() {
  let commit = null;
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { /* no commits yet */ }
  const cpus = os.cpus();
  return { cpu: cpus[0] && cpus[0].model, cores: cpus.length, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.version, platform: `${os.platform()}-${os.arch()}`, commit };
}

// Runs one measurement in a child process that prints its result as one JSON
// line, and resolves with that object. A crash, OOM or timeout of one child
// must not end the run: it resolves with { error } instead (stderr's last
// lines, stack frames and bracketed log lines left out). stderr is echoed.
function runJsonChild(cmd, argv, { timeoutMin, cwd, label = '' }) {
  const { spawn } = require('child_process');
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
    let stdout = '', stderr = '';
    child.stdout.on('data', (b) => { stdout += b; });
    child.stderr.on('data', (b) => { stderr += b; process.stderr.write(b); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMin * 60e3);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop();
      if (code === 0 && line) {
        try { return resolve(JSON.parse(line)); } catch { /* fall through */ }
      }
      const why = signal ? `killed by ${signal}` : `exit code ${code}`;
      const last = stderr.trim().split('\n').filter((l) => !l.startsWith('[') && !/^\s+at /.test(l)).slice(-3).join(' | ');
      resolve({ error: `${label}${why}${last ? ': ' + last : ''}` });
    });
  });
}

module.exports = { now, cpuSnapshot, otherLoad, parseOptions, memStatus, diskUsage, readVersion, machineInfo, runJsonChild };
