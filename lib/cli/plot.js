'use strict';
// The recall/QPS plot `vecvault bench --plot` writes: one self-contained SVG
// (no scripts, fonts or links), recall@k across, queries per second up on a
// log scale, one labelled point per efSearch.

const W = 720;
const H = 480;
const PAD = { left: 80, right: 72, top: 64, bottom: 64 };

function escapeXml(s) {
  return String(s).replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]);
}

/** Round to a few significant digits, so coordinates stay short. */
const fmt = (n) => String(Math.round(n * 10) / 10);

/** The recall axis: from a tenth at or below the lowest recall (at least 0.1 wide) to 1. */
function recallRange(results) {
  const low = Math.min(...results.map((r) => r.recall));
  const from = Math.max(0, Math.min(0.9, Math.floor(low * 10) / 10));
  return [from, 1];
}

/** The QPS axis: whole decades around every point. */
function qpsRange(results) {
  const logs = results.map((r) => Math.log10(Math.max(r.qps, 1e-3)));
  const from = Math.floor(Math.min(...logs));
  let to = Math.ceil(Math.max(...logs));
  if (to === from) to = from + 1;
  return [from, to];
}

/** QPS ticks: every decade, and 2x and 5x between them when there are few decades. */
function qpsTicks(y0, y1) {
  const ticks = [];
  for (let d = y0; d <= y1; d++) {
    for (const m of y1 - y0 <= 2 ? [1, 2, 5] : [1]) if (d < y1 || m === 1) ticks.push(m * 10 ** d);
  }
  return ticks;
}

function qpsLabel(v) {
  return v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : String(v);
}

/**
 * The SVG text for `bench`'s results: { title, subtitle, k, results:
 * [{ efSearch, recall, qps }] } (results in efSearch order).
 */
function benchSvg({ title, subtitle, k, results }) {
  const [x0, x1] = recallRange(results);
  const [y0, y1] = qpsRange(results);
  const pw = W - PAD.left - PAD.right;
  const ph = H - PAD.top - PAD.bottom;
  const X = (recall) => PAD.left + ((recall - x0) / (x1 - x0)) * pw;
  const Y = (qps) => PAD.top + ph - ((Math.log10(Math.max(qps, 1e-3)) - y0) / (y1 - y0)) * ph;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<title>${escapeXml(title)}</title>`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  out.push(`<text x="${W / 2}" y="44" text-anchor="middle" fill="#555">${escapeXml(subtitle)}</text>`);

  out.push('<g class="grid" stroke="#ddd" stroke-width="1">');
  const step = x1 - x0 > 0.35 ? 0.1 : 0.05;
  const xticks = [];
  for (let t = x0; t <= x1 + 1e-9; t += step) xticks.push(Math.round(t * 100) / 100);
  for (const t of xticks) out.push(`<line x1="${fmt(X(t))}" y1="${PAD.top}" x2="${fmt(X(t))}" y2="${PAD.top + ph}"/>`);
  const yticks = qpsTicks(y0, y1);
  for (const t of yticks) out.push(`<line x1="${PAD.left}" y1="${fmt(Y(t))}" x2="${PAD.left + pw}" y2="${fmt(Y(t))}"/>`);
  out.push('</g>');

  out.push(`<g class="axes" stroke="black" stroke-width="1.5"><line x1="${PAD.left}" y1="${PAD.top + ph}" x2="${PAD.left + pw}" y2="${PAD.top + ph}"/><line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${PAD.top + ph}"/></g>`);
  out.push('<g class="ticks">');
  for (const t of xticks) out.push(`<text x="${fmt(X(t))}" y="${PAD.top + ph + 18}" text-anchor="middle">${t.toFixed(2)}</text>`);
  for (const t of yticks) out.push(`<text x="${PAD.left - 8}" y="${fmt(Y(t) + 4)}" text-anchor="end">${qpsLabel(t)}</text>`);
  out.push('</g>');
  out.push(`<text x="${PAD.left + pw / 2}" y="${H - 18}" text-anchor="middle">recall@${k}</text>`);
  out.push(`<text x="20" y="${PAD.top + ph / 2}" text-anchor="middle" transform="rotate(-90 20 ${PAD.top + ph / 2})">queries per second (log scale)</text>`);

  const pts = results.map((r) => `${fmt(X(r.recall))},${fmt(Y(r.qps))}`).join(' ');
  out.push(`<polyline class="curve" points="${pts}" fill="none" stroke="#1f77b4" stroke-width="2"/>`);
  out.push('<g class="points">');
  for (const r of results) {
    const cx = fmt(X(r.recall));
    const cy = fmt(Y(r.qps));
    out.push(`<circle cx="${cx}" cy="${cy}" r="4.5" fill="#1f77b4" data-ef="${r.efSearch}"><title>efSearch ${r.efSearch}: recall ${r.recall.toFixed(4)}, ${Math.round(r.qps)} QPS</title></circle>`);
    out.push(`<text class="label" x="${fmt(X(r.recall) + 7)}" y="${fmt(Y(r.qps) - 7)}">ef=${r.efSearch}</text>`);
  }
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}

module.exports = { benchSvg };
