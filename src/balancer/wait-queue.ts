// The bounded FIFO of requests waiting for a node slot. Pure: the compute service owns the timers.

/** One waiting request; `value` is the caller's. */
export interface QueueEntry<T> {
  readonly value: T;
  /** @internal */ prev: QueueEntry<T> | undefined;
  /** @internal */ next: QueueEntry<T> | undefined;
  /** @internal */ queued: boolean;
}

/** Arrival-ordered, bounded, O(1) removal of any entry (a request whose client left or cancelled). */
export class WaitQueue<T> {
  private head: QueueEntry<T> | undefined;
  private tail: QueueEntry<T> | undefined;
  private count = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.count;
  }

  /** Appends `value`; undefined when the queue is full (the caller answers RESOURCE_EXHAUSTED). */
  push(value: T): QueueEntry<T> | undefined {
    if (this.count >= this.capacity) return undefined;
    const entry: QueueEntry<T> = { value, prev: this.tail, next: undefined, queued: true };
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
    this.count++;
    return entry;
  }

  /** Removes `entry`; false when it had already left the queue. */
  remove(entry: QueueEntry<T>): boolean {
    if (!entry.queued) return false;
    entry.queued = false;
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = entry.next = undefined;
    this.count--;
    return true;
  }

  /** Entries in arrival order; removing the current entry while iterating is safe. */
  *entries(): IterableIterator<QueueEntry<T>> {
    let entry = this.head;
    while (entry) {
      const next = entry.next;
      if (entry.queued) yield entry;
      entry = entry.queued ? entry.next : next;
    }
  }

  /** Empties the queue, returning what was waiting, oldest first. */
  takeAll(): T[] {
    const values: T[] = [];
    for (const entry of this.entries()) {
      values.push(entry.value);
      entry.queued = false;
      entry.prev = entry.next = undefined;
    }
    this.head = this.tail = undefined;
    this.count = 0;
    return values;
  }
}
