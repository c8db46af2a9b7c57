// One measured case: start the load, warm up, then one window in which every worker counts and
// every process's CPU is read, so each figure says which side was saturated.
import { Histogram, type HistogramData } from './histogram.js';
import { machineSample, procSample, type LoadWorker, type Server } from './procs.js';
import type { WindowResult } from './meter.js';

/** Latency percentiles in microseconds. */
export interface Latency { p50: number; p90: number; p99: number; p999: number; max: number; mean: number }

/** CPU of one process over the window: percent of one core, and µs of CPU per operation. */
export interface ProcessCpu { name: string; role: 'server' | 'client'; pct: number; usPerOp: number }

/** The figures of one case, as the report prints and the JSON keeps them. */
export interface CaseResult {
  label: string;
  system: string;
  opsPerSec: number;
  unit: string;
  ops: number;
  errors: number;
  errorKinds: Record<string, number>;
  lost: number;
  elapsedMs: number;
  latencyUs: Latency;
  cpu: ProcessCpu[];
  /**
   * Operations per second of server CPU (all server processes of the case together): the cost
   * view, which holds even when other processes take cores away during the window.
   */
  opsPerServerCpuSec: number;
  /** Share of all cores busy on the machine, and the part of it from processes outside this run. */
  machineBusyPct: number;
  otherLoadPct: number;
  saturation: string;
  extra: Record<string, number>;
  /** Latency resolution of the tool that measured it (autocannon: 1 ms); ours is 1 µs. */
  latencyResolutionUs: number;
  /** Throughput of every round when the case ran in several (this result is the median round). */
  rounds?: number[];
}

export interface MeasureOptions {
  label: string;
  system: string;
  unit: string;
  servers: Server[];
  /** Workers that generate load; all are started, marked and collected. */
  workers: LoadWorker[];
  /** The workers whose ops are the case's throughput (default: all). */
  counted?: LoadWorker[];
  warmupMs: number;
  durationMs: number;
  cores: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs one case: start → warm-up → measured window → collect. The caller stops the workers. */
export async function measure(o: MeasureOptions): Promise<CaseResult> {
  await Promise.all(o.workers.map((w) => w.call('start')));
  await sleep(o.warmupMs);
  const pids = [...o.servers.map((s) => s.pid), ...o.workers.map((w) => w.pid)];
  const before = pids.map((pid) => procSample(pid).cpuMs);
  const self0 = process.cpuUsage();
  const m0 = machineSample();
  const t0 = performance.now();
  await Promise.all(o.workers.map((w) => w.call('mark')));
  await sleep(o.durationMs);
  const windows = await Promise.all(o.workers.map((w) => w.call('collect') as Promise<WindowResult>));
  const wallMs = performance.now() - t0;
  const m1 = machineSample();
  const selfCpu = process.cpuUsage(self0);
  const after = pids.map((pid) => procSample(pid).cpuMs);
  return summarize(o, windows, wallMs, before, after, m1.busyMs - m0.busyMs, m1.totalMs - m0.totalMs, (selfCpu.user + selfCpu.system) / 1000);
}

/** Combines worker windows (also used for one-shot autocannon runs). */
export function summarize(
  o: MeasureOptions, windows: WindowResult[], wallMs: number, before: number[], after: number[],
  machineBusyMs: number, machineTotalMs: number, orchestratorCpuMs: number,
): CaseResult {
  const counted = new Set((o.counted ?? o.workers).map((w) => w.pid));
  let ops = 0;
  let errors = 0;
  let lost = 0;
  const errorKinds: Record<string, number> = {};
  const extra: Record<string, number> = {};
  const histograms: HistogramData[] = [];
  let elapsedSum = 0;
  let elapsedN = 0;
  let given: Latency | undefined;
  let resolution = 1;
  o.workers.forEach((w, i) => {
    const win = windows[i]!;
    errors += win.errors;
    for (const [k, v] of Object.entries(win.errorKinds)) errorKinds[k] = (errorKinds[k] ?? 0) + v;
    for (const [k, v] of Object.entries(win.extra)) extra[k] = (extra[k] ?? 0) + v;
    if (!counted.has(w.pid)) return;
    ops += win.ops;
    lost += win.lost;
    histograms.push(win.histogram);
    elapsedSum += win.elapsedMs;
    elapsedN++;
    const p = (win as WindowResult & { percentilesUs?: Latency }).percentilesUs;
    if (p) { given = { ...p, max: p.max ?? 0, mean: p.mean ?? 0 }; resolution = 1000; }
  });
  const elapsedMs = elapsedN ? elapsedSum / elapsedN : wallMs;
  const h = Histogram.from(histograms);
  const latencyUs: Latency = given ?? { p50: h.percentile(0.5), p90: h.percentile(0.9), p99: h.percentile(0.99), p999: h.percentile(0.999), max: h.max, mean: h.mean() };

  const cpu: ProcessCpu[] = [];
  const perOp = (ms: number): number => (ops > 0 ? (ms * 1000) / ops : 0);
  o.servers.forEach((s, i) => {
    const ms = after[i]! - before[i]!;
    cpu.push({ name: s.name, role: 'server', pct: (ms / wallMs) * 100, usPerOp: perOp(ms) });
  });
  o.workers.forEach((w, i) => {
    const win = windows[i]!;
    const ms = win.cpuUserMs + win.cpuSystemMs;
    cpu.push({ name: w.label, role: 'client', pct: (ms / win.elapsedMs) * 100, usPerOp: perOp(ms) });
  });
  const serverMs = o.servers.reduce((a, _s, i) => a + after[i]! - before[i]!, 0);
  const ourMs = after.reduce((a, b, i) => a + b - before[i]!, 0) + orchestratorCpuMs;
  const machineBusyPct = machineTotalMs > 0 ? (machineBusyMs / machineTotalMs) * 100 : 0;
  const otherLoadPct = machineTotalMs > 0 ? Math.max(0, ((machineBusyMs - ourMs) / machineTotalMs) * 100) : 0;
  return {
    label: o.label, system: o.system, unit: o.unit,
    opsPerSec: elapsedMs > 0 ? (ops * 1000) / elapsedMs : 0,
    ops, errors, errorKinds, lost, elapsedMs, latencyUs, cpu, machineBusyPct, otherLoadPct,
    opsPerServerCpuSec: serverMs > 0 ? (ops * 1000) / serverMs : 0,
    saturation: saturation(cpu, machineBusyPct, otherLoadPct, o.cores),
    extra,
    latencyResolutionUs: resolution,
  };
}

/** Which side ran out of CPU: a single-threaded process near a full core, or the whole machine. */
export function saturation(cpu: ProcessCpu[], machineBusyPct: number, otherLoadPct: number, cores: number): string {
  const hot = cpu.filter((p) => p.pct >= 85).sort((a, b) => b.pct - a.pct);
  const clients = cpu.filter((p) => p.role === 'client');
  const clientTotal = clients.reduce((a, p) => a + p.pct, 0);
  const parts: string[] = [];
  const hotServers = hot.filter((p) => p.role === 'server');
  const hotClients = hot.filter((p) => p.role === 'client');
  if (hotServers.length) parts.push(`server-bound: ${hotServers.map((p) => `${p.name} ${p.pct.toFixed(0)}%`).join(', ')}`);
  if (hotClients.length) parts.push(`CLIENT-BOUND: ${hotClients.map((p) => `${p.name} ${p.pct.toFixed(0)}%`).join(', ')}`);
  if (machineBusyPct >= 90) parts.push(`all ${cores} cores busy (${machineBusyPct.toFixed(0)}%; other processes ${otherLoadPct.toFixed(0)}%)`);
  if (!parts.length) parts.push(`no process saturated; machine ${machineBusyPct.toFixed(0)}% busy`);
  parts.push(`load generator ${clientTotal.toFixed(0)}% of a core in total`);
  return parts.join('; ');
}
