// Many deadlines behind one timer: items are kept in buckets of `tickMs` and expire together, at most
// one tick after their deadline. Adding and removing an item is a Map lookup and a Set operation,
// where a timer per item would allocate a Timeout and relink Node's timer lists each time.

/** Something with a deadline. */
export interface Expiring {
  /** Called once, at or up to one tick after the deadline, unless removed first. */
  expire(): void;
}

/** A set of deadlines served by one unref'd timer; resolution `tickMs`. */
export class DeadlineTimers<T extends Expiring> {
  private readonly buckets = new Map<number, Set<T>>();
  private timer: NodeJS.Timeout | undefined;
  /** The bucket the timer is armed for. */
  private armedFor = Infinity;
  private count = 0;

  constructor(private readonly tickMs = 50, private readonly now: () => number = Date.now) {}

  /** Adds `item` expiring at `atMs` (epoch ms); returns the handle `remove` takes. */
  add(item: T, atMs: number): number {
    const slot = Math.ceil(atMs / this.tickMs);
    let bucket = this.buckets.get(slot);
    if (!bucket) this.buckets.set(slot, (bucket = new Set()));
    bucket.add(item);
    this.count++;
    if (slot < this.armedFor) this.arm(slot);
    return slot;
  }

  /** Removes `item` (added with handle `slot`); it will not expire. */
  remove(item: T, slot: number): void {
    const bucket = this.buckets.get(slot);
    if (!bucket?.delete(item)) return;
    this.count--;
    if (bucket.size === 0) this.buckets.delete(slot);
    if (this.count === 0) this.disarm();
  }

  /** Items waiting. */
  get size(): number {
    return this.count;
  }

  private arm(slot: number): void {
    this.disarm();
    this.armedFor = slot;
    this.timer = setTimeout(() => this.fire(), Math.max(0, slot * this.tickMs - this.now()));
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const due = Math.floor(this.now() / this.tickMs);
    const expired: T[] = [];
    let next = Infinity;
    for (const [slot, bucket] of this.buckets) {
      if (slot <= due) {
        for (const item of bucket) expired.push(item);
        this.buckets.delete(slot);
        this.count -= bucket.size;
      } else if (slot < next) {
        next = slot;
      }
    }
    if (next !== Infinity) this.arm(next);
    for (const item of expired) item.expire();
  }
}
