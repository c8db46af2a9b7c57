// What every load role measures over a window: operations, errors, a latency histogram and the
// worker's own CPU time, so the report can tell whether the load generator kept up.
import { Histogram, type HistogramData } from './histogram.js';

/**
 * Microseconds on the machine's monotonic clock (CLOCK_MONOTONIC, shared by every process on
 * this host): publish-to-receive latency is measured across processes with it. Read straight
 * from hrtime: deriving it from performance.now() plus an offset taken at start-up was off by up
 * to a millisecond per process (the first performance.now() call is slow). Callers read it once
 * per publish and once per socket read, not per delivery.
 */
export function monoUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

/** One window's figures from one worker. */
export interface WindowResult {
  ops: number;
  errors: number;
  /** Deliveries a subscriber never saw (a gap in the publisher's sequence). */
  lost: number;
  elapsedMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  histogram: HistogramData;
  errorKinds: Record<string, number>;
  extra: Record<string, number>;
}

/** Counts and times operations between `begin` and `end`. */
export class Meter {
  readonly histogram = new Histogram();
  ops = 0;
  errors = 0;
  lost = 0;
  errorKinds: Record<string, number> = {};
  extra: Record<string, number> = {};
  private t0 = performance.now();
  private cpu0 = process.cpuUsage();

  begin(): void {
    this.histogram.reset();
    this.ops = 0;
    this.errors = 0;
    this.lost = 0;
    this.errorKinds = {};
    this.t0 = performance.now();
    this.cpu0 = process.cpuUsage();
  }

  error(kind: string): void {
    this.errors++;
    this.errorKinds[kind] = (this.errorKinds[kind] ?? 0) + 1;
  }

  end(): WindowResult {
    const cpu = process.cpuUsage(this.cpu0);
    return {
      ops: this.ops,
      errors: this.errors,
      lost: this.lost,
      elapsedMs: performance.now() - this.t0,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      histogram: this.histogram.toData(),
      errorKinds: { ...this.errorKinds },
      extra: { ...this.extra },
    };
  }
}
