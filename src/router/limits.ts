// Per-connection limits as pure state machines: a token bucket and a sliding strike counter.
// Time is passed in (epoch ms), so they are unit-tested without clocks.

/** Token bucket: `take` succeeds while tokens remain; tokens refill at `ratePerSecond` up to `burst`. */
export class TokenBucket {
  private tokens: number;
  private updatedMs: number;

  constructor(private readonly ratePerSecond: number, private readonly burst: number, nowMs: number) {
    this.tokens = burst;
    this.updatedMs = nowMs;
  }

  /** Takes one token; returns 0 on success, else the milliseconds until a token is available (>= 1). */
  take(nowMs: number): number {
    if (nowMs > this.updatedMs) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.updatedMs) * this.ratePerSecond) / 1000);
      this.updatedMs = nowMs;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond));
  }
}

/** Counts strikes within a sliding window; `strike` reports whether the limit is now reached. */
export class StrikeWindow {
  private readonly times: number[] = [];

  constructor(private readonly limit: number, private readonly windowMs: number) {}

  /** Records a strike at `nowMs`; true when `limit` strikes fall within the window ending now. */
  strike(nowMs: number): boolean {
    this.times.push(nowMs);
    const oldest = nowMs - this.windowMs;
    while (this.times.length > 0 && this.times[0]! <= oldest) this.times.shift();
    // Only the last `limit` strikes matter; the array never grows beyond that.
    if (this.times.length > this.limit) this.times.splice(0, this.times.length - this.limit);
    return this.times.length >= this.limit;
  }
}
