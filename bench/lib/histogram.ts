// A log-linear latency histogram in the HDR style: values (microseconds) land in buckets whose
// width is 1/64 of their power of two, so every recorded value is kept to within 1.6 % at any
// magnitude from 1 µs to hours, in a fixed 4 KiB of counters. Mergeable across processes.

const SUB_BITS = 6;
const SUB = 1 << SUB_BITS; // 64 linear sub-buckets per power of two
const OCTAVES = 32 - SUB_BITS; // values up to 2^32 µs (71 minutes)
const BUCKETS = SUB + OCTAVES * SUB;

/** Serialized form sent between processes: sparse [bucket, count] pairs. */
export interface HistogramData {
  readonly counts: Array<[number, number]>;
  readonly min: number;
  readonly max: number;
  readonly total: number;
  readonly sum: number;
}

function bucketOf(value: number): number {
  const v = value <= 0 ? 0 : value >= 0xffffffff ? 0xffffffff : Math.floor(value);
  if (v < SUB) return v;
  const shift = 31 - Math.clz32(v) - SUB_BITS; // octave above the linear range
  return SUB + shift * SUB + ((v >>> shift) - SUB);
}

function bucketMid(bucket: number): number {
  if (bucket < SUB) return bucket;
  const shift = Math.floor((bucket - SUB) / SUB);
  const sub = (bucket - SUB) % SUB;
  const low = (SUB + sub) * 2 ** shift;
  return shift === 0 ? low : low + 2 ** shift / 2;
}

/** Records latencies in microseconds; percentiles are exact to the bucket (≤ 1.6 % error). */
export class Histogram {
  private counts = new Float64Array(BUCKETS);
  min = Infinity;
  max = 0;
  total = 0;
  sum = 0;

  /** Adds one value (µs). Values beyond 2^32 µs are clamped into the last bucket. */
  record(valueUs: number): void {
    this.counts[bucketOf(valueUs)]! += 1;
    if (valueUs < this.min) this.min = valueUs;
    if (valueUs > this.max) this.max = valueUs;
    this.total++;
    this.sum += valueUs;
  }

  reset(): void {
    this.counts.fill(0);
    this.min = Infinity;
    this.max = 0;
    this.total = 0;
    this.sum = 0;
  }

  /** The value at quantile q (0..1), in µs; 0 when empty. */
  percentile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, bucketMid(i)));
    }
    return this.max;
  }

  mean(): number {
    return this.total === 0 ? 0 : this.sum / this.total;
  }

  merge(other: HistogramData): void {
    for (const [bucket, count] of other.counts) this.counts[bucket]! += count;
    if (other.total > 0) {
      this.min = Math.min(this.min, other.min);
      this.max = Math.max(this.max, other.max);
    }
    this.total += other.total;
    this.sum += other.sum;
  }

  toData(): HistogramData {
    const counts: Array<[number, number]> = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]! > 0) counts.push([i, this.counts[i]!]);
    return { counts, min: this.total ? this.min : 0, max: this.max, total: this.total, sum: this.sum };
  }

  static from(data: readonly HistogramData[]): Histogram {
    const h = new Histogram();
    for (const d of data) h.merge(d);
    return h;
  }
}
