'use strict';
// The lazy benchmark's target table: from the children's results to rows of
// (measured, reference, ratio, target, pass), and their printing.

const { MIB, K } = require('./tasks');

const TARGETS = {
  recallSlack: 0.01, // lazy recall@10 >= in-memory recall - 0.01
  bytesPerQuery: MIB, // mean bytes read from storage per query
  lazyOverInmem: 10, // lazy query time with a fifth cached <= 10x in-memory
  warmOverInmem: 0.8, // warm QPS at matched recall >= 0.8x in-memory
  bytesPerVector: 350, // RSS <= cacheSizeMb + 350 B/vector
  openSec: 1, // open to first result (at 1M)
  openVsHnswlib: 5, // ... >= 5x faster than hnswlib-node readIndex
  cacheRatio: 1, // cache bytes / capacityBytes, max under concurrency
};

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const ok = (r) => r && !r.error;
const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? '-' : typeof v === 'number' ? v.toFixed(d) : String(v));
const mib = (b) => (b === null || b === undefined ? '-' : `${(b / MIB).toFixed(b < 10 * MIB ? 3 : 1)} MiB`);

// The best QPS among settings whose recall reaches `target`.
function bestAt(settings, target) {
  let best = null;
  for (const s of settings) if (s.recall >= target - 1e-9 && (!best || s.qps > best.qps)) best = s;
  return best;
}

// Query-by-query comparison of id lists (as sets: order among equal
// distances may differ without the results differing): a flag per query.
function differs(a, b, n) {
  const out = new Uint8Array(n);
  for (let q = 0; q < n; q++) {
    const x = new Set(a.slice(q * K, (q + 1) * K));
    out[q] = b.slice(q * K, (q + 1) * K).some((id) => !x.has(id)) ? 1 : 0;
  }
  return out;
}
const count = (flags) => flags.reduce((a, f) => a + f, 0);

function sameResults(same, lazy, inmem) {
  if (!ok(same)) return { error: same ? same.error : 'not run' };
  const n = same.n;
  const ref = same.runs[0].cold;
  const any = new Uint8Array(n); // queries whose results differ anywhere
  const runs = same.runs.map((r) => {
    const cw = differs(r.cold, r.warm, n), rc = differs(ref, r.cold, n), rw = differs(ref, r.warm, n);
    for (let q = 0; q < n; q++) any[q] |= cw[q] | rc[q] | rw[q];
    return { cacheMb: r.cacheMb, recallCold: r.recallCold, recallWarm: r.recallWarm, coldMeanMs: r.coldMeanMs, notEmptied: r.notEmptied,
      coldVsWarm: count(cw), vsFirstCold: count(rc.map((f, q) => f | rw[q])) };
  });
  return {
    n, runs, queriesDiffering: count(any), identical: count(any) === 0,
    vsSteadyLazy: ok(lazy) ? count(differs(ref, lazy.ids, n)) : null,
    vsInmem: ok(inmem) ? count(differs(ref, inmem.ids, n)) : null,
  };
}

/** The rows of one dataset's table. */
function rows(d) {
  const r = d.results;
  const { lazy, inmem, warm, concurrent } = r;
  const out = [];
  const row = (name, measured, reference, ratio, target, pass, note = '') => out.push({ name, measured, reference, ratio, target, pass, note });
  const inmemRecall = ok(inmem) ? inmem.defaults.recall : null;

  if (ok(lazy) && ok(inmem)) {
    row('recall@10 at defaults, lazy (cache 1/5) vs in memory', fmt(lazy.recall, 4), fmt(inmemRecall, 4), `${fmt(lazy.recall - inmemRecall, 4)}`,
      `>= in-memory - ${TARGETS.recallSlack}`, lazy.recall >= inmemRecall - TARGETS.recallSlack);
  } else row('recall@10 at defaults, lazy vs in memory', '-', '-', '-', '', null, failure(lazy, inmem));

  if (ok(lazy)) {
    const b = lazy.bytesRead;
    row('bytes read from storage per query, mean', mib(b.mean), '', '', `<= ${mib(TARGETS.bytesPerQuery)}`, b.mean <= TARGETS.bytesPerQuery,
      `p50 ${mib(b.p50)}, p99 ${mib(b.p99)}, first query ${mib(b.first)}, at open ${mib(b.atOpen)}`);
  } else row('bytes read from storage per query, mean', '-', '', '', '', null, failure(lazy));

  if (ok(lazy) && ok(inmem)) {
    const l = lazy.latency, m = inmem.defaults;
    const ratio = l.meanMs / m.meanMs;
    row('lazy query, cache 1/5: mean ms (vs in memory)', fmt(l.meanMs, 3), fmt(m.meanMs, 3), `${fmt(ratio, 1)}x`, `<= ${TARGETS.lazyOverInmem}x`, ratio <= TARGETS.lazyOverInmem,
      `p50 ${fmt(l.p50Ms, 3)} / p99 ${fmt(l.p99Ms, 3)} ms lazy; p50 ${fmt(m.p50Ms, 3)} / p99 ${fmt(m.p99Ms, 3)} ms in memory; ratio of p50 ${fmt(l.p50Ms / m.p50Ms, 1)}x`);
  } else row('lazy query, cache 1/5: mean ms (vs in memory)', '-', '-', '-', '', null, failure(lazy, inmem));

  if (ok(warm) && ok(inmem)) {
    const target = inmemRecall;
    const all = (x) => [{ ef: 'default', ...x.defaults }, ...x.sweep];
    const lw = bestAt(all(warm), target), li = bestAt(all(inmem), target);
    const ratio = lw && li ? lw.qps / li.qps : null;
    row(`warm QPS, all cached, at matched recall >= ${fmt(target, 4)}`, lw ? `${fmt(lw.qps, 0)} (ef ${lw.ef})` : 'not reached', li ? `${fmt(li.qps, 0)} (ef ${li.ef})` : '-',
      ratio === null ? '-' : `${fmt(ratio)}x`, `>= ${TARGETS.warmOverInmem}x`, ratio !== null && ratio >= TARGETS.warmOverInmem,
      `at defaults: lazy ${fmt(warm.defaults.qps, 0)} QPS / recall ${fmt(warm.defaults.recall, 4)}, in memory ${fmt(inmem.defaults.qps, 0)} / ${fmt(inmemRecall, 4)}; ` +
      `${atHigh(all(warm), all(inmem))}; ` +
      `evictions while timed ${warm.evictionsWhileTimed}, bytes read ${mib(warm.bytesReadWhileTimed)}`);
  } else row('warm QPS, all cached, at matched recall', '-', '-', '-', '', null, failure(warm, inmem));

  if (ok(lazy)) {
    const net = (lazy.rssAfter - lazy.rssBefore - lazy.capacityBytes) / d.n;
    const gross = (lazy.rssAfter - lazy.capacityBytes) / d.n;
    row('resident memory over the cache bound, B/vector', fmt(net, 0), '', '', `<= ${TARGETS.bytesPerVector}`, net <= TARGETS.bytesPerVector,
      `RSS ${mib(lazy.rssAfter)} after open + ${lazy.latency.n} queries, ${mib(lazy.rssBefore)} before open, cache bound ${mib(lazy.capacityBytes)}; ` +
      `counting node's own ${mib(lazy.rssBefore)}: ${fmt(gross, 0)} B/vector`);
  } else row('resident memory over the cache bound, B/vector', '-', '', '', '', null, failure(lazy));

  const vo = median((r.open || []).filter(ok).map((x) => x.firstResultSec));
  const ho = median((r.hnswlib || []).filter(ok).map((x) => x.firstResultSec));
  if (vo !== null) {
    const ratio = ho === null ? null : ho / vo;
    const at1m = d.n >= 1e6;
    row(`open to first result, s (median of ${(r.open || []).filter(ok).length})`, fmt(vo, 3), ho === null ? '-' : fmt(ho, 3), ratio === null ? '-' : `${fmt(ratio, 1)}x`,
      `< ${TARGETS.openSec} s${at1m ? '' : ' (at 1M)'}, >= ${TARGETS.openVsHnswlib}x`, vo < TARGETS.openSec && ratio !== null && ratio >= TARGETS.openVsHnswlib,
      `reference: hnswlib-node readIndex + first searchKnn; vecvault load alone ${fmt(median(r.open.filter(ok).map((x) => x.loadSec)), 3)} s`);
  } else row('open to first result, s', '-', '-', '-', '', null, failure(...(r.open || [null])));

  if (ok(concurrent)) {
    const worst = Math.max(concurrent.maxRatio, ok(lazy) ? lazy.cache.maxBytes / lazy.capacityBytes : 0);
    row('cache bytes / capacityBytes, max under concurrent searches', fmt(worst, 4), '', '', `<= ${TARGETS.cacheRatio}`, worst <= TARGETS.cacheRatio,
      `${concurrent.samples} samples, ${concurrent.over} over; ${concurrent.inflight} searchAsync in flight + searchBatchAsync (${concurrent.batched} queries, ` +
      `${concurrent.threads} threads); ${concurrent.evictions} evictions, ${mib(concurrent.bytesRead)} read`);
  } else row('cache bytes / capacityBytes, max under concurrent searches', '-', '', '', '', null, failure(concurrent));

  const s = d.same;
  if (s && !s.error) {
    row(`same results cold/warm at 3 cache sizes (${s.n} queries)`, s.identical ? 'identical' : `${s.queriesDiffering} queries differ`, '', '', 'identical', s.identical,
      s.runs.map((x) => `${fmt(x.cacheMb, 1)} MiB: recall cold ${fmt(x.recallCold, 4)} / warm ${fmt(x.recallWarm, 4)}, ${x.coldVsWarm} cold!=warm, ` +
        `${x.vsFirstCold} != smallest cold`).join('; ') + `; ${s.vsInmem} of ${s.n} differ from in memory (information)`);
  } else row('same results cold/warm at 3 cache sizes', '-', '', '', 'identical', null, s ? s.error : 'not run');
  return out;
}

// The same comparison at a recall worth having, for data where the defaults
// reach little (information, not a target).
function atHigh(lazySettings, inmemSettings, target = 0.85) {
  const lw = bestAt(lazySettings, target), li = bestAt(inmemSettings, target);
  if (!lw || !li) return `recall ${target} not reached by ${!lw ? 'lazy' : 'in memory'} in the sweep`;
  return `at recall >= ${target}: lazy ${fmt(lw.qps, 0)} (ef ${lw.ef}), in memory ${fmt(li.qps, 0)} (ef ${li.ef}), ${fmt(lw.qps / li.qps)}x`;
}

function failure(...rs) {
  const bad = rs.find((x) => !ok(x));
  return bad ? `failed: ${bad.error || 'not run'}` : '';
}

const verdict = (p) => (p === true ? 'pass' : p === false ? 'FAIL' : 'n/a');
const pad = (s, w) => (String(s).length >= w ? String(s) : String(s) + ' '.repeat(w - String(s).length));

function printDataset(d, p = (s = '') => console.log(s)) {
  p();
  p(`== ${d.describe}: n ${d.n}, session format v${d.sessionVersion} (engine writes v${d.engineVersion}), cache 1/5 = ${fmt(d.cacheMb, 1)} MiB, ` +
    `everything cached = ${fmt(d.fullCacheMb, 1)} MiB, ${d.queries} queries`);
  const w = [58, 22, 18, 10, 30, 6];
  p(['row', 'measured', 'in memory / peer', 'ratio', 'target', ''].map((x, i) => pad(x, w[i])).join(' '));
  for (const r of d.rows) {
    p([r.name, r.measured, r.reference, r.ratio, r.target, verdict(r.pass)].map((x, i) => pad(x, w[i])).join(' '));
    if (r.note) p(`    ${r.note}`);
  }
  const loads = Object.entries(d.results).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).filter(ok).map((x) => [k, x.otherLoad]))
    .filter(([, l]) => typeof l === 'number' && l > 0.2);
  if (loads.length) p(`WARNING: other processes used CPU during ${[...new Set(loads.map(([k]) => k))].join(', ')} (up to ${fmt(Math.max(...loads.map(([, l]) => l)), 2)} cores): timings are noisy`);
  const builds = new Set(Object.values(d.results).flatMap((v) => (Array.isArray(v) ? v : [v])).filter(ok).map((x) => x.addon).filter(Boolean));
  if (builds.size > 1) p(`WARNING: the addon was rebuilt during this run (${builds.size} builds measured)`);
}

module.exports = { TARGETS, rows, sameResults, printDataset, median };
