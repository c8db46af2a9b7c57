// The report of one run: bench/results/<date>-<commit>.md with a table per scenario, the SVG
// charts beside it, and the same figures as JSON. Every figure comes from this run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CaseResult } from './measure.js';
import { barChart, compact, duration, percentileChart } from './svg.js';

/** A target from the product's goals, checked against this run's figures. */
export interface Ratio { name: string; value: number | undefined; target: string; pass: boolean | undefined; detail: string }

export interface Table { title: string; columns: string[]; rows: Array<Array<string | number>> }

export interface ScenarioResult {
  name: string;
  title: string;
  params: Record<string, unknown>;
  cases: CaseResult[];
  tables: Table[];
  ratios: Ratio[];
  notes: string[];
  /** Extra figures that are not cases (connections: RSS per step). */
  data?: Record<string, unknown>;
  charts?: Array<{ name: string; svg: string }>;
}

export interface RunReport {
  startedAt: string;
  command: string;
  machine: Record<string, string | number>;
  params: Record<string, unknown>;
  scenarios: ScenarioResult[];
  failures: Array<{ scenario: string; error: string }>;
}

/** a ÷ b of throughput, and the same ratio per server CPU-second in words (for a ratio's detail). */
export function per(a: CaseResult | undefined, b: CaseResult | undefined): { value: number | undefined; cpu: string } {
  if (!a || !b || b.opsPerSec <= 0) return { value: undefined, cpu: '' };
  const cpu = b.opsPerServerCpuSec > 0 ? a.opsPerServerCpuSec / b.opsPerServerCpuSec : 0;
  return { value: a.opsPerSec / b.opsPerSec, cpu: `; per server CPU-second ${cpu.toFixed(2)}×` };
}

/** A figure reported beside the targets, with no goal of its own. */
export function figure(name: string, value: number | undefined, detail: string): Ratio {
  return { name, value, target: '—', pass: undefined, detail };
}

/** Checks `value` against a minimum (or maximum) and words the result. */
export function ratio(name: string, value: number | undefined, op: '>=' | '<=', bound: number, detail: string): Ratio {
  const pass = value === undefined || !Number.isFinite(value) ? undefined : op === '>=' ? value >= bound : value <= bound;
  return { name, value, target: `${op} ${bound}`, pass, detail };
}

function cpuCell(c: CaseResult, role: 'server' | 'client'): string {
  return c.cpu.filter((p) => p.role === role).map((p) => `${p.name} ${p.pct.toFixed(0)}% (${p.usPerOp.toFixed(1)} µs/op)`).join('<br>') || '—';
}

function throughputCell(c: CaseResult): string {
  const main = `${compact(c.opsPerSec)} ${c.unit}`;
  if (!c.rounds || c.rounds.length < 2) return main;
  return `${main} (rounds ${compact(Math.min(...c.rounds))}–${compact(Math.max(...c.rounds))})`;
}

function lat(c: CaseResult, us: number): string {
  return us < c.latencyResolutionUs ? `< ${duration(c.latencyResolutionUs)}` : duration(us);
}

/** The standard table of cases: throughput, latency, errors, CPU on both sides, saturation. */
export function caseTable(title: string, cases: CaseResult[]): Table {
  return {
    title,
    columns: ['case', 'system', 'throughput', 'p50', 'p99', 'p99.9', 'errors', 'per server CPU-second', 'server CPU (% of a core, µs per op)', 'load generator CPU', 'saturated'],
    rows: cases.map((c) => [
      c.label, c.system, throughputCell(c), lat(c, c.latencyUs.p50), lat(c, c.latencyUs.p99), lat(c, c.latencyUs.p999),
      c.errors + (c.lost ? ` (+${c.lost} lost)` : ''), compact(c.opsPerServerCpuSec), cpuCell(c, 'server'), cpuCell(c, 'client'), c.saturation,
    ]),
  };
}

/** Throughput and latency charts of a scenario's cases. */
export function caseCharts(scenario: string, unit: string, cases: CaseResult[]): Array<{ name: string; svg: string }> {
  return [
    { name: `${scenario}-throughput`, svg: barChart(`${scenario}: throughput`, unit, cases.map((c) => ({ label: c.label, system: c.system, value: c.opsPerSec }))) },
    { name: `${scenario}-latency`, svg: percentileChart(`${scenario}: latency percentiles`, cases.map((c) => ({ label: c.label, system: c.system, p50: c.latencyUs.p50, p99: c.latencyUs.p99, p999: c.latencyUs.p999 }))) },
  ];
}

function mdTable(t: Table): string {
  const esc = (v: string | number): string => String(v).replace(/\|/g, '\\|');
  return [`| ${t.columns.join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`, ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

function fmtRatio(r: Ratio): string {
  const value = r.value === undefined || !Number.isFinite(r.value) ? 'not measured' : r.value >= 100 ? r.value.toFixed(0) : r.value.toFixed(2);
  const verdict = r.pass === undefined ? '—' : r.pass ? 'met' : '**missed**';
  return `| ${r.name} | ${value} | ${r.target} | ${verdict} | ${r.detail} |`;
}

/** Writes <base>.md, <base>.json and <base>-<chart>.svg into `dir`; returns the paths. */
export function writeReport(dir: string, base: string, report: RunReport): { md: string; json: string; svgs: string[] } {
  mkdirSync(dir, { recursive: true });
  const svgs: string[] = [];
  const md: string[] = [
    `# relaygate benchmark ${base}`,
    '',
    `Command: \`${report.command}\` (started ${report.startedAt}). Every figure below comes from this one run; peers and baselines ran on the same machine in the same run.`,
    '',
    '## Machine and software',
    '',
    mdTable({ title: '', columns: ['item', 'value'], rows: Object.entries(report.machine) }),
    '',
    '## Parameters',
    '',
    mdTable({ title: '', columns: ['parameter', 'value'], rows: Object.entries(report.params).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]) }),
    '',
  ];
  const all = report.scenarios.flatMap((s) => s.cases);
  if (all.length) {
    const others = all.map((c) => c.otherLoadPct);
    md.push(`Machine sharing: during the measured windows, processes outside this run took ${(others.reduce((a, b) => a + b, 0) / others.length).toFixed(0)}% of all cores on average (at most ${Math.max(...others).toFixed(0)}%). Ratios are given both as throughput and per second of server CPU, which does not depend on that.`, '');
  }
  const ratios = report.scenarios.flatMap((s) => s.ratios);
  if (ratios.length) {
    md.push('## Targets', '', '| target | measured | goal | verdict | how |', '|---|---|---|---|---|', ...ratios.map(fmtRatio), '');
  }
  if (report.failures.length) {
    md.push('## Scenarios that failed', '', ...report.failures.map((f) => `- **${f.scenario}**: ${f.error.split('\n')[0]}`), '');
  }
  for (const s of report.scenarios) {
    md.push(`## ${s.title}`, '');
    md.push(`Parameters: ${Object.entries(s.params).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`).join(', ')}`, '');
    for (const t of s.tables) md.push(...(t.title ? [`### ${t.title}`, ''] : []), mdTable(t), '');
    for (const chart of s.charts ?? []) {
      const file = `${base}-${chart.name}.svg`;
      writeFileSync(join(dir, file), chart.svg);
      svgs.push(join(dir, file));
      md.push(`![${chart.name}](${file})`, '');
    }
    if (s.notes.length) md.push(...s.notes.map((n) => `- ${n}`), '');
  }
  const mdPath = join(dir, `${base}.md`);
  const jsonPath = join(dir, `${base}.json`);
  writeFileSync(mdPath, md.join('\n'));
  const json = { ...report, scenarios: report.scenarios.map(({ charts: _charts, ...rest }) => rest) };
  writeFileSync(jsonPath, JSON.stringify(json, null, 1));
  return { md: mdPath, json: jsonPath, svgs };
}
