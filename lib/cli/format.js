'use strict';
// Small helpers the CLI's human-readable output shares.

/** `n` bytes in binary units, one decimal: "1.5 MiB". */
function size(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(1)} ${units[u]}`;
}

/** `n` bytes in binary units with the exact count: "1.5 MiB (1572864 bytes)". */
function bytes(n) {
  return n < 1024 ? `${n} B` : `${size(n)} (${n} bytes)`;
}

/** Aligned "label: value" lines. */
function table(rows) {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${(k + ':').padEnd(w + 2)}${v}`).join('\n') + '\n';
}

module.exports = { size, bytes, table };
