#!/usr/bin/env node
// Checks the include layering of the engine sources (csrc/), run by
// `make -C test/c layering` and so by `make check` and `npm test`.
//
// Rules (docs/ARCHITECTURE.md, "arrows point one way"):
//   1. The folder include graph has no cycle: no folder includes a file of
//      a folder that, directly or through others, includes it back. An edge
//      A -> B exists when a file in A has `#include "..."` resolving to a
//      file in B (relative to the including file first, then to csrc/, as
//      the compiler's -Icsrc does). Files directly in csrc/ form the folder
//      ".". Each cycle is printed with the #include lines that make it.
//   2. Only csrc/napi holds C++ files (.cc .cpp .cxx .hpp .hh .hxx).
//   3. Outside csrc/napi, no file includes node_api.h, napi.h (or the other
//      Node-API headers), a C++ header (no extension, or .hpp/.hh/.hxx) or
//      any file of csrc/napi.
//
// Known cycles can be listed, edge by edge, in an allow-list file (default
// test/c/layering-allow.txt): lines "from -> to", '#' starts a comment.
// When every edge of every cycle is listed, the check prints
// "layering: N cycle(s) (known, being removed)" and passes; an edge of a
// cycle that is not listed fails it, and so does any breach of rules 2-3.
// Listed edges that are no longer part of a cycle are reported, so the
// list can shrink to empty.
//
//   node scripts/check-layering.js [--root DIR] [--allow FILE]
//
// Exit status: 0 clean (or only allowed cycles), 1 violations, 2 usage.
'use strict';
const fs = require('fs');
const path = require('path');

const repo = path.join(__dirname, '..');
const CPP_EXT = /\.(cc|cpp|cxx|hpp|hh|hxx)$/;
const SRC_EXT = /\.(c|h|cc|cpp|cxx|hpp|hh|hxx)$/;
const NODE_HEADERS = new Set(['node_api.h', 'node_api_types.h', 'js_native_api.h', 'js_native_api_types.h',
  'napi.h', 'napi-inl.h', 'node.h', 'uv.h', 'v8.h']);
const BINDING = 'napi';

function parseArgs(argv) {
  const opt = { root: path.join(repo, 'csrc'), allow: path.join(repo, 'test/c/layering-allow.txt') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if ((a === '--root' || a === '--allow') && i + 1 < argv.length) opt[a.slice(2)] = path.resolve(argv[++i]);
    else {
      process.stderr.write(`usage: check-layering.js [--root DIR] [--allow FILE]\nunknown argument: ${a}\n`);
      process.exit(2);
    }
  }
  return opt;
}

function walk(root) {
  const files = [];
  (function rec(dir) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) rec(p);
      else if (SRC_EXT.test(e.name)) files.push(p);
    }
  })(root);
  return files.sort();
}

// Blanks comments, keeping newlines so line numbers stay right: an include
// inside a comment is not an include.
function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (m) => m.replace(/[^\n]/g, ' '));
}

function includesOf(file) {
  const out = [];
  const lines = stripComments(fs.readFileSync(file, 'utf8')).split('\n');
  const raw = fs.readFileSync(file, 'utf8').split('\n');
  const re = /^\s*#\s*include\s*([<"])([^>"]+)[>"]/;
  lines.forEach((line, i) => {
    const m = re.exec(line);
    if (m) out.push({ quoted: m[1] === '"', name: m[2], line: i + 1, text: raw[i].trim() });
  });
  return out;
}

function folderOf(root, file) {
  const d = path.relative(root, path.dirname(file)).split(path.sep).join('/');
  return d === '' ? '.' : d;
}

// The top-level folder under root: csrc/napi/x/y.h belongs to "napi".
function topOf(folder) {
  return folder.split('/')[0];
}

function resolve(root, file, name) {
  for (const base of [path.dirname(file), root]) {
    const p = path.resolve(base, name);
    if (p.startsWith(root + path.sep) && fs.existsSync(p) && fs.statSync(p).isFile()) return p;
  }
  return null;
}

function isCppHeader(name) {
  return CPP_EXT.test(name) || !/\.[A-Za-z]+$/.test(path.basename(name));
}

// Folder graph: edges[from][to] = [{ file, line, text }].
function buildGraph(root, files, problems) {
  const edges = new Map();
  const rel = (f) => 'csrc/' + path.relative(root, f).split(path.sep).join('/');
  for (const file of files) {
    const from = topOf(folderOf(root, file));
    if (CPP_EXT.test(file) && from !== BINDING)
      problems.push(`${rel(file)}: a C++ file outside csrc/${BINDING}`);
    for (const inc of includesOf(file)) {
      const where = `${rel(file)}:${inc.line}: ${inc.text}`;
      const target = inc.quoted ? resolve(root, file, inc.name) : null;
      if (from !== BINDING) {
        if (NODE_HEADERS.has(path.basename(inc.name)))
          problems.push(`${where}: only csrc/${BINDING} may include Node-API headers`);
        else if (!target && isCppHeader(inc.name))
          problems.push(`${where}: only csrc/${BINDING} may include C++ headers`);
        else if (target && topOf(folderOf(root, target)) === BINDING)
          problems.push(`${where}: the engine must not include the binding (csrc/${BINDING})`);
      }
      if (!target) continue;
      const to = topOf(folderOf(root, target));
      if (to === from) continue;
      if (!edges.has(from)) edges.set(from, new Map());
      const m = edges.get(from);
      if (!m.has(to)) m.set(to, []);
      m.get(to).push({ where });
    }
  }
  return edges;
}

// Tarjan's strongly connected components; those with more than one folder
// are the cycles.
function cycles(edges) {
  const nodes = new Set(edges.keys());
  for (const m of edges.values()) for (const t of m.keys()) nodes.add(t);
  let index = 0;
  const idx = new Map(), low = new Map(), onStack = new Set(), stack = [], out = [];
  function strong(v) {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of (edges.get(v) || new Map()).keys()) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  }
  for (const v of [...nodes].sort()) if (!idx.has(v)) strong(v);
  return out;
}

// A shortest folder path from src to dst inside one component, e.g.
// ["session", "db"]; used to show the loop an edge closes.
function pathWithin(edges, comp, src, dst) {
  const inComp = new Set(comp);
  const prev = new Map([[src, null]]);
  const queue = [src];
  while (queue.length) {
    const v = queue.shift();
    if (v === dst) {
      const p = [];
      for (let x = v; x !== null; x = prev.get(x)) p.unshift(x);
      return p;
    }
    for (const w of (edges.get(v) || new Map()).keys()) {
      if (inComp.has(w) && !prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [src, dst];
}

function readAllowList(file) {
  const allowed = new Set();
  if (!fs.existsSync(file)) return allowed;
  fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    const s = line.replace(/#.*/, '').trim();
    if (!s) return;
    const m = /^([\w./-]+)\s*->\s*([\w./-]+)$/.exec(s);
    if (!m) throw new Error(`${file}:${i + 1}: expected "from -> to", got "${s}"`);
    allowed.add(`${m[1]} -> ${m[2]}`);
  });
  return allowed;
}

function main() {
  const opt = parseArgs(process.argv.slice(2));
  const problems = [];
  const edges = buildGraph(opt.root, walk(opt.root), problems);
  const allowed = readAllowList(opt.allow);
  const comps = cycles(edges);
  const cycleEdges = new Set();
  let unlisted = 0;
  const report = [];
  for (const comp of comps) {
    const inComp = new Set(comp);
    report.push(`cycle between ${comp.join(', ')}:`);
    for (const from of comp) {
      for (const [to, sites] of edges.get(from) || new Map()) {
        if (!inComp.has(to)) continue;
        const key = `${from} -> ${to}`;
        cycleEdges.add(key);
        const known = allowed.has(key);
        if (!known) unlisted++;
        const loop = [from, ...pathWithin(edges, comp, to, from)].join(' -> ');
        report.push(`  ${key}  ${known ? '(listed in the allow-list)' : 'NEW, not in the allow-list'}; loop: ${loop}`);
        for (const s of sites) report.push(`    ${s.where}`);
      }
    }
  }
  const stale = [...allowed].filter((e) => !cycleEdges.has(e));
  const fail = problems.length > 0 || unlisted > 0;
  const out = fail ? process.stderr : process.stdout;
  if (comps.length && (fail || process.env.V === '1')) out.write(report.join('\n') + '\n');
  for (const p of problems) process.stderr.write(p + '\n');
  for (const e of stale)
    process.stdout.write(`layering: "${e}" is listed in ${path.relative(repo, opt.allow)} but is no longer part of a cycle: remove it\n`);
  if (fail) {
    process.stderr.write(`layering: FAILED: ${comps.length} cycle(s), ${unlisted} edge(s) not in the allow-list, ` +
      `${problems.length} other problem(s)\n`);
    process.exit(1);
  }
  if (comps.length)
    process.stdout.write(`layering: ${comps.length} cycle(s) (known, being removed): ${[...cycleEdges].join(', ')}\n`);
  else process.stdout.write('layering: no cycles between csrc/ folders\n');
}

main();
