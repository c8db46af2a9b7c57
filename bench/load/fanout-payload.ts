// The payload every fan-out publisher sends: [float64 LE publish time µs][uint32 LE sequence],
// padded to the configured size, so each delivery yields its publish-to-receive latency and any
// gap in the sequence is counted as lost.
import { monoUs } from '../lib/meter.js';

export const HEADER_BYTES = 12;

/** A payload stamped now with `seq`. */
export function stampedPayload(size: number, seq: number): Buffer {
  const out = Buffer.alloc(Math.max(HEADER_BYTES, size), 0x62);
  out.writeDoubleLE(monoUs(), 0);
  out.writeUInt32LE(seq, 8);
  return out;
}

/** Tracks one subscriber worker's deliveries: latency, per-connection sequence, gaps. */
export class DeliveryTracker {
  readonly lastSeq: Uint32Array;
  private lastReported = -1;

  constructor(connections: number, private readonly meter: { ops: number; lost: number; histogram: { record(v: number): void } }) {
    this.lastSeq = new Uint32Array(connections);
  }

  /** One delivery to connection `index`, its payload at buf[start, end). */
  delivered(index: number, buf: Buffer, start: number, end: number, nowUs: number): void {
    if (end - start < HEADER_BYTES) return;
    const sentUs = buf.readDoubleLE(start);
    const seq = buf.readUInt32LE(start + 8);
    const last = this.lastSeq[index]!;
    if (seq > last + 1) this.meter.lost += seq - last - 1;
    if (seq > last) this.lastSeq[index] = seq;
    this.meter.ops++;
    this.meter.histogram.record(nowUs - sentUs);
  }

  /** The lowest sequence every connection has reached, when it changed since the last call. */
  progress(): number | undefined {
    let min = 0xffffffff;
    for (let i = 0; i < this.lastSeq.length; i++) if (this.lastSeq[i]! < min) min = this.lastSeq[i]!;
    if (this.lastSeq.length === 0 || min === this.lastReported) return undefined;
    this.lastReported = min;
    return min;
  }
}

/**
 * Publisher pacing: `window` publishes awaiting their ack, never more than `maxLag` ahead of the
 * slowest subscriber and, when `ratePerSec` > 0, no faster than that rate (an open-loop load for
 * measuring latency below saturation).
 */
/** The pacing settings every publisher role takes. */
export interface PublishPacing {
  payloadBytes: number;
  window: number;
  maxLag: number;
  /** Publishes per second; 0 = as fast as the window and lag allow. */
  ratePerSec?: number;
}

export class PublishPacer {
  seq = 0;
  inFlight = 0;
  slowest = 0;
  private credit = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly window: number, readonly maxLag: number, readonly ratePerSec = 0) {}

  canSend(): boolean {
    return this.inFlight < this.window && this.seq - this.slowest < this.maxLag && (this.ratePerSec <= 0 || this.credit >= 1);
  }

  /** The harness's note of the slowest subscriber's sequence number, which bounds the lag. */
  heard(message: { minSeq?: unknown }): void {
    if (typeof message.minSeq === 'number' && message.minSeq > this.slowest) this.slowest = message.minSeq;
  }

  /** Call for every publish sent. */
  sent(): void {
    this.seq++;
    if (this.ratePerSec > 0) this.credit--;
  }

  /** With a rate, adds credit every few milliseconds and calls `pump`. */
  start(pump: () => void): void {
    if (this.ratePerSec <= 0) { pump(); return; }
    let last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      this.credit = Math.min(this.credit + ((now - last) / 1000) * this.ratePerSec, Math.max(1, this.window));
      last = now;
      pump();
    }, 2);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
