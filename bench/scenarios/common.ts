// What the scenarios share: spreading a load over worker processes, and running one case
// with every worker stopped afterwards, whatever happens.
import type { BenchContext } from '../lib/context.js';
import { measure, summarize, type CaseResult, type MeasureOptions } from '../lib/measure.js';
import type { WindowResult } from '../lib/meter.js';
import { profileTable, readProfileWhenWritten } from '../lib/profile.js';
import type { Table } from '../lib/report.js';
import { LoadWorker, machineSample, procSample, type Server } from '../lib/procs.js';

/** Splits `total` into `parts` near-equal positive shares (fewer parts when total is small). */
export function split(total: number, parts: number): number[] {
  const n = Math.max(1, Math.min(parts, total));
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

/** Starts `shares.length` workers of `role`; config(i, share) gives each one's settings. */
export async function startWorkers(
  label: string, role: string, shares: number[], config: (i: number, share: number) => Record<string, unknown>,
): Promise<{ workers: LoadWorker[]; info: Array<Record<string, number>> }> {
  const started = await Promise.allSettled(shares.map((share, i) => LoadWorker.start(shares.length > 1 ? `${label}-${i + 1}` : label, role, config(i, share))));
  const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value.worker] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(workers.map((w) => w.stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return { workers, info: started.map((s) => (s as PromiseFulfilledResult<{ info: Record<string, number> }>).value.info) };
}

/** Sums a field over worker setup infos. */
export function total(info: Array<Record<string, number>>, field: string): number {
  return info.reduce((a, i) => a + (i[field] ?? 0), 0);
}

/** A case as a scenario describes it; the run adds warm-up, duration and cores. */
export type CaseSpec = Omit<MeasureOptions, 'warmupMs' | 'durationMs' | 'cores'>;

/** Measures one case with the run's warm-up and duration, then stops its workers. */
export async function runCase(ctx: BenchContext, spec: CaseSpec): Promise<CaseResult> {
  try {
    ctx.log(`  ${spec.label} · ${spec.system}`);
    const result = await measure({
      ...spec,
      warmupMs: ctx.params.warmupSec * 1000,
      durationMs: ctx.params.durationSec * 1000,
      cores: ctx.cores,
    });
    ctx.log(`    ${Math.round(result.opsPerSec)} ${spec.unit}, p50 ${Math.round(result.latencyUs.p50)} µs, p99 ${Math.round(result.latencyUs.p99)} µs, errors ${result.errors}; ${result.saturation}`);
    return result;
  } finally {
    await Promise.all(spec.workers.map((w) => w.stop()));
  }
}

/** Runs a one-shot role (autocannon: warm-up and measured run inside the worker), reading server CPU around it. */
export async function runOneShot(ctx: BenchContext, spec: CaseSpec): Promise<CaseResult> {
  try {
    ctx.log(`  ${spec.label} · ${spec.system}`);
    const w = spec.workers[0]!;
    // Server CPU is read over the whole call; the warm-up share is removed by proportion below.
    const pids = [...spec.servers.map((s) => s.pid), w.pid];
    const before = pids.map((pid) => procSample(pid).cpuMs);
    const m0 = machineSample();
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    const win = await w.call('run') as WindowResult;
    const wallMs = performance.now() - t0;
    const after = pids.map((pid) => procSample(pid).cpuMs);
    const m1 = machineSample();
    const self = process.cpuUsage(self0);
    const share = Math.min(1, win.elapsedMs / wallMs);
    const scaled = (arr: number[]): number[] => arr.map((v, i) => before[i]! + (v - before[i]!) * share);
    const result = summarize(
      { ...spec, warmupMs: 0, durationMs: win.elapsedMs, cores: ctx.cores }, [win], win.elapsedMs, before, scaled(after),
      (m1.busyMs - m0.busyMs) * share, (m1.totalMs - m0.totalMs) * share, ((self.user + self.system) / 1000) * share,
    );
    ctx.log(`    ${Math.round(result.opsPerSec)} ${spec.unit}, p50 ${Math.round(result.latencyUs.p50)} µs, p99 ${Math.round(result.latencyUs.p99)} µs, errors ${result.errors}; ${result.saturation}`);
    return result;
  } finally {
    await Promise.all(spec.workers.map((w) => w.stop()));
  }
}

/** A case that can be run again: each round starts fresh workers. */
export interface CaseFactory {
  label: string;
  system: string;
  unit: string;
  servers: Server[];
  /** Starts this round's workers (connections open); `counted` defaults to all. */
  start(): Promise<{ workers: LoadWorker[]; counted?: LoadWorker[] }>;
  /** autocannon-style: the worker runs warm-up and window itself. */
  oneShot?: boolean;
  /** Adds case-specific figures to the result of each round. */
  finish?(result: CaseResult): void;
}

/**
 * Runs the cases in `rounds` interleaved rounds (A B C, A B C, ...) so that a burst of load from
 * other processes hits every system alike, and keeps each case's median round; the spread of
 * the rounds is kept beside it.
 */
export async function compareRounds(ctx: BenchContext, factories: CaseFactory[], rounds = ctx.params.rounds): Promise<CaseResult[]> {
  const results: CaseResult[][] = factories.map(() => []);
  for (let r = 0; r < rounds; r++) {
    if (rounds > 1) ctx.log(`  round ${r + 1}/${rounds}`);
    for (const [i, f] of factories.entries()) {
      const { workers, counted } = await f.start();
      const spec: CaseSpec = { label: f.label, system: f.system, unit: f.unit, servers: f.servers, workers, ...(counted ? { counted } : {}) };
      const result = f.oneShot ? await runOneShot(ctx, spec) : await runCase(ctx, spec);
      f.finish?.(result);
      await quiesce(f.servers);
      results[i]!.push(result);
    }
  }
  return results.map((rs) => {
    const sorted = [...rs].sort((a, b) => a.opsPerSec - b.opsPerSec);
    const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
    return { ...median, rounds: rs.map((x) => x.opsPerSec) };
  });
}

/**
 * With --profile: runs `factory` once against gateways started under --cpu-prof just for this
 * pass, stops them so the profiles are written, and returns one table per gateway.
 */
export async function profilePass(
  ctx: BenchContext, names: string[], startGateway: (name: string) => Promise<Server>, factory: (gateways: Server[]) => CaseFactory,
): Promise<Table[]> {
  ctx.log('  profile pass (gateways under --cpu-prof)');
  const gateways: Server[] = [];
  try {
    for (const name of names) gateways.push(await startGateway(name));
    const [result] = await compareRounds(ctx, [factory(gateways)], 1);
    for (const g of gateways) await g.stop(20_000);
    const tables: Table[] = [];
    for (const name of names) {
      const summary = await readProfileWhenWritten(ctx.profileFile(name));
      if (summary) tables.push(profileTable(`Where ${name}'s time went: ${result!.label}, ${Math.round(result!.opsPerSec)} ${result!.unit} while profiled`, summary));
    }
    return tables;
  } finally {
    for (const g of gateways) await g.stop(1000);
  }
}

/**
 * Waits (at most `maxMs`) until `servers` are idle, so that a backlog one case left behind (events
 * still queued for clients that are gone) does not eat into the next case's window.
 */
export async function quiesce(servers: Server[], maxMs = 15_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  let before = servers.map((s) => procSample(s.pid).cpuMs);
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 300));
    const now = servers.map((s) => procSample(s.pid).cpuMs);
    const busyMs = now.reduce((a, v, i) => a + v - before[i]!, 0);
    before = now;
    if (busyMs <= 30) return; // under 10 % of a core over 300 ms
  }
}
