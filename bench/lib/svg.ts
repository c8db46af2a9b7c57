// Hand-written SVG charts for the report: horizontal throughput bars and latency percentiles on a
// log scale. Plain SVG 1.1, no scripts, readable in any browser and on GitHub.

const palette: Record<string, string> = {
  relaygate: '#2563eb',
  'relaygate (binary link)': '#7c3aed',
  'node direct (HTTP)': '#6b7280',
  'socket.io': '#dc2626',
  'socket.io + redis-adapter': '#dc2626',
  'bare redis→ioredis→uWS': '#059669',
  'bare uWS topics': '#d97706',
  'bare uWS': '#d97706',
};
const fallback = ['#0891b2', '#be185d', '#4d7c0f', '#9333ea'];

function colorOf(system: string, i: number): string {
  return palette[system] ?? fallback[i % fallback.length]!;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A compact number: 1.23 M, 45.6 k, 789. */
export function compact(n: number, digits = 3): string {
  const abs = Math.abs(n);
  if (abs >= 1e6) return `${(n / 1e6).toPrecision(digits)} M`;
  if (abs >= 1e3) return `${(n / 1e3).toPrecision(digits)} k`;
  if (abs >= 100 || n === 0) return n.toFixed(0);
  return n.toPrecision(digits);
}

/** Microseconds as a readable duration. */
export function duration(us: number): string {
  if (us >= 1e6) return `${(us / 1e6).toPrecision(3)} s`;
  if (us >= 1e3) return `${(us / 1e3).toPrecision(3)} ms`;
  return `${us.toFixed(0)} µs`;
}

export interface BarRow { label: string; system: string; value: number }

/** Horizontal bars, one per row, labelled with their values. */
export function barChart(title: string, unit: string, rows: BarRow[]): string {
  const labelW = 300;
  const plotW = 420;
  const rowH = 22;
  const top = 40;
  const height = top + rows.length * rowH + 30;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const systems = [...new Set(rows.map((r) => r.system))];
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 110}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const w = Math.max(1, (r.value / max) * plotW);
    out.push(`<text x="${labelW - 8}" y="${y + 14}" text-anchor="end">${esc(r.label)}</text>`);
    out.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${colorOf(r.system, systems.indexOf(r.system))}"/>`);
    out.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 14}">${esc(compact(r.value))}</text>`);
  });
  out.push(`<text x="${labelW}" y="${height - 8}" fill="#555">${esc(unit)}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

export interface PercentileRow { label: string; system: string; p50: number; p99: number; p999: number }

/** p50, p99 and p99.9 per row on a log axis (µs): a bar to p99 with marks at p50 and p99.9. */
export function percentileChart(title: string, rows: PercentileRow[]): string {
  const labelW = 300;
  const plotW = 420;
  const rowH = 22;
  const top = 40;
  const height = top + rows.length * rowH + 46;
  const values = rows.flatMap((r) => [r.p50, r.p99, r.p999]).filter((v) => v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(1, Math.min(...values, 1e9)))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(10, ...values))));
  const x = (v: number): number => labelW + (Math.log10(Math.max(lo, v) / lo) / Math.log10(hi / lo)) * plotW;
  const systems = [...new Set(rows.map((r) => r.system))];
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 40}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let v = lo; v <= hi; v *= 10) {
    out.push(`<line x1="${x(v).toFixed(1)}" y1="${top}" x2="${x(v).toFixed(1)}" y2="${top + rows.length * rowH}" stroke="#ddd"/>`);
    out.push(`<text x="${x(v).toFixed(1)}" y="${top + rows.length * rowH + 14}" text-anchor="middle" fill="#555">${esc(duration(v))}</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const color = colorOf(r.system, systems.indexOf(r.system));
    out.push(`<text x="${labelW - 8}" y="${y + 14}" text-anchor="end">${esc(r.label)}</text>`);
    out.push(`<rect x="${x(r.p50).toFixed(1)}" y="${y + 6}" width="${Math.max(1, x(r.p99) - x(r.p50)).toFixed(1)}" height="${rowH - 12}" fill="${color}" opacity="0.75"/>`);
    out.push(`<rect x="${x(r.p50).toFixed(1)}" y="${y + 3}" width="2" height="${rowH - 6}" fill="#111"/>`);
    out.push(`<circle cx="${x(r.p999).toFixed(1)}" cy="${y + rowH / 2}" r="3.5" fill="none" stroke="#111"/>`);
  });
  out.push(`<text x="${labelW}" y="${height - 8}" fill="#555">| p50   ▬ p50…p99   ○ p99.9 (log scale)</text>`);
  out.push('</svg>');
  return out.join('\n');
}
