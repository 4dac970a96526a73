'use strict';
/*
 * 40.types-reflection.js: index.d.ts matches the runtime, both ways.
 *
 * Owns: parsing index.d.ts with the TypeScript compiler API and comparing
 * it with what the package really has: the runtime exports (CommonJS and
 * ESM) with the declared value exports; the members of VectorDB (prototype
 * and static), VectorDB.Cache and the storage classes with their class
 * declarations; and the keys of real results (search, get, cacheStats,
 * loadStats, save, inspect, refresh) with their declared interfaces.
 * Anything declared but missing at runtime, or present at runtime but
 * undeclared, fails by name. (What each member does is other files' job.)
 */
const assert = require('node:assert/strict');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const ts = require('typescript');
const h = require('./helpers');
const s = require('./helpers/session');

const ROOT = path.resolve(__dirname, '..');
const DTS = path.join(ROOT, 'index.d.ts');
const pkg = h.vecvault();
const { VectorDB } = pkg;

/* Node's inspection hook: a convention of console.log, not vecvault's API. */
const EXEMPT = new Set(['Symbol.for(nodejs.util.inspect.custom)']);

let checker;
let exported;
before(function () {
  const program = ts.createProgram([DTS], { target: ts.ScriptTarget.ES2022, lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'], types: [], noEmit: true });
  const diags = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  assert.deepEqual(diags, [], 'index.d.ts compiles on its own');
  checker = program.getTypeChecker();
  exported = new Map(checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(DTS))).map((x) => [x.name, x]));
});

function symbolOf(name) {
  const sym = exported.get(name);
  assert.ok(sym, `index.d.ts exports ${name}`);
  return sym;
}

/* A declared property's name as the runtime spells it: 'search', 'Symbol.dispose'. */
function nameOf(p) {
  const d = p.valueDeclaration || (p.declarations && p.declarations[0]);
  if (d && d.name && ts.isComputedPropertyName(d.name)) return d.name.expression.getText();
  return p.name;
}

/* Declared properties of a type: name -> optional. */
function propsOf(type) {
  const out = new Map();
  for (const p of checker.getPropertiesOfType(type)) out.set(nameOf(p), (p.flags & ts.SymbolFlags.Optional) !== 0);
  return out;
}

/* A runtime key as nameOf spells the declared one. */
function keyName(k) {
  if (typeof k === 'string') return k;
  for (const w of Object.getOwnPropertyNames(Symbol)) if (Symbol[w] === k) return `Symbol.${w}`;
  const reg = Symbol.keyFor(k);
  return reg === undefined ? String(k) : `Symbol.for(${reg})`;
}

/* Both-way difference of declared (name -> optional) and runtime names, as messages. */
function mismatches(what, declared, runtime) {
  const have = new Set([...runtime].map(keyName).filter((k) => !EXEMPT.has(k)));
  const out = [];
  for (const [name, optional] of declared) if (!optional && !have.has(name)) out.push(`${what}.${name}: declared, missing at runtime`);
  for (const name of have) if (!declared.has(name)) out.push(`${what}.${name}: at runtime, not declared`);
  return out.sort();
}

/* The members of a runtime class: prototype (getters included) and own instance properties of `instance`. */
function instanceKeys(cls, instance) {
  const keys = new Set(Reflect.ownKeys(cls.prototype).filter((k) => k !== 'constructor'));
  if (instance) for (const k of Object.keys(instance)) keys.add(k);
  return keys;
}

function staticKeys(cls) {
  return new Set(Reflect.ownKeys(cls).filter((k) => !['length', 'name', 'prototype'].includes(k)));
}

/* The declared instance and static sides of a class symbol. */
function classSides(sym) {
  const instance = propsOf(checker.getDeclaredTypeOfSymbol(sym));
  const ctor = checker.getTypeOfSymbolAtLocation(sym, sym.valueDeclaration);
  const statics = propsOf(ctor);
  statics.delete('prototype');
  return { instance, statics };
}

function interfaceProps(name) {
  return propsOf(checker.getDeclaredTypeOfSymbol(symbolOf(name)));
}

/* The declared element type of an array-typed property of an interface. */
function elementProps(iface, prop) {
  const p = checker.getPropertyOfType(checker.getDeclaredTypeOfSymbol(symbolOf(iface)), prop);
  const t = checker.getTypeOfSymbol(p);
  return propsOf(checker.getIndexTypeOfType(t, ts.IndexKind.Number));
}

describe('40 index.d.ts matches the runtime', function () {
  afterEach(() => {
    s.closeTracked();
    s.cleanupTmp();
  });

  it("the package's exports: CommonJS and ESM against the declared value exports", async function () {
    const declared = new Map();
    for (const [name, sym] of exported) if (sym.flags & ts.SymbolFlags.Value) declared.set(name, false);
    const esm = await import(pathToFileURL(path.join(ROOT, 'lib', 'index.mjs')).href);
    const esmKeys = new Set(Object.keys(esm).filter((k) => k !== 'default'));
    assert.deepEqual([...mismatches('require("vecvault")', declared, new Set(Object.keys(pkg))), ...mismatches('import "vecvault"', declared, esmKeys)], []);
  });

  it('VectorDB: prototype and static members against the class declaration', function () {
    const { instance, statics } = classSides(symbolOf('VectorDB'));
    const db = s.newDb({ dimension: 4, threads: 1 });
    assert.deepEqual([...mismatches('VectorDB.prototype', instance, instanceKeys(VectorDB, db)), ...mismatches('VectorDB', statics, staticKeys(VectorDB))], []);
  });

  it('VectorDB.Cache and the storage classes against their declarations', function () {
    const cacheSym = checker.getExportsOfModule(symbolOf('VectorDB')).find((x) => x.name === 'Cache');
    const cache = new VectorDB.Cache({ maxMb: 1 });
    const storage = new pkg.MemoryStorage();
    const dirStorage = new pkg.DirStorage(s.tmpDir('refl'));
    const fault = new pkg.FaultStorage(storage, {});
    const out = [];
    const check = (what, sym, cls, instance) => {
      const { instance: inst, statics } = classSides(sym);
      out.push(...mismatches(`${what}.prototype`, inst, instanceKeys(cls, instance)), ...mismatches(what, statics, staticKeys(cls)));
    };
    check('VectorDB.Cache', cacheSym, VectorDB.Cache, cache);
    check('MemoryStorage', symbolOf('MemoryStorage'), pkg.MemoryStorage, storage);
    check('DirStorage', symbolOf('DirStorage'), pkg.DirStorage, dirStorage);
    check('FaultStorage', symbolOf('FaultStorage'), pkg.FaultStorage, fault);
    assert.deepEqual(out, []);
  });

  it('VecvaultError: its own declared members are on every error', function () {
    const err = h.throwsCode(() => s.newDb({ dimension: 0 }), 'ERR_INVALID_ARGUMENT');
    const own = classSides(symbolOf('VecvaultError')).instance;
    for (const name of ['code', 'name', 'message', 'stack']) {
      assert.ok(own.has(name), `VecvaultError declares ${name}`);
      assert.ok(name in err, `a VecvaultError has ${name}`);
    }
  });

  it('result shapes: search, get, cacheStats, save, loadStats, inspect and refresh against their interfaces', async function () {
    const db = s.newDb({ dimension: 4, encryptAtRest: false, threads: 1 });
    s.fill(db, 12, { seed: 2, unicode: false });
    const q = [0.1, 0.2, 0.3, 0.4];
    const dir = s.freshPath('refl');
    const saved = await db.save(dir);
    const back = await s.loadDb(dir, { lazy: true });
    const info = await VectorDB.inspect(dir);
    const refreshed = await back.refresh();
    const out = [
      ...mismatches('SearchResult', interfaceProps('SearchResult'), new Set(Object.keys(db.search(q, 1)[0]))),
      ...mismatches('SearchResultWithVector', interfaceProps('SearchResultWithVector'), new Set(Object.keys(db.search(q, 1, { includeVector: true })[0]))),
      ...mismatches('StoredItem', interfaceProps('StoredItem'), new Set(Object.keys(db.get('v1')))),
      ...mismatches('CacheStats', interfaceProps('CacheStats'), new Set(Object.keys(back.cacheStats()))),
      ...mismatches('SaveStats', interfaceProps('SaveStats'), new Set(Object.keys(saved))),
      ...mismatches('LoadStats', interfaceProps('LoadStats'), new Set(Object.keys(back.loadStats))),
      ...mismatches('SessionInfo', interfaceProps('SessionInfo'), new Set(Object.keys(info))),
      ...mismatches('SessionInfo.chunks[]', elementProps('SessionInfo', 'chunks'), new Set(Object.keys(info.chunks[0]))),
      ...mismatches('refresh()', new Map([['generation', false], ['changed', false]]), new Set(Object.keys(refreshed))),
    ];
    assert.deepEqual(out, []);
  });
});
