// Stream framing of the node link: each frame is a varint length followed by that many bytes.
// Pure (no sockets): an incremental parser with a frame-size limit, and a batch that collects
// outgoing frames and flushes them once per event-loop turn, so one socket write carries many.

/** Largest frame either side accepts unless its hello announces another limit. */
export const defaultLinkMaxFrameBytes = 64 * 1024 * 1024;

/** The stream cannot be parsed (oversized frame or broken length prefix); the connection must close. */
export class FramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FramingError';
  }
}

/**
 * Splits a byte stream into frames. Frames are handed out as views into the received chunks
 * (copied only when a frame spans chunks), valid for as long as the caller keeps them.
 */
export class FrameParser {
  private parts: Buffer[] = [];
  private buffered = 0;
  /** Bytes needed in `parts` before parsing can progress. */
  private need = 0;
  private failed = false;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: (frame: Buffer) => void,
  ) {}

  /** Bytes held for an incomplete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Feeds the next chunk; calls onFrame for each complete frame. Throws FramingError once the stream is unusable. */
  push(chunk: Buffer): void {
    if (this.failed) throw new FramingError('stream already failed');
    if (this.parts.length > 0) {
      this.parts.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered < this.need) return;
      chunk = Buffer.concat(this.parts, this.buffered);
      this.parts = [];
      this.buffered = 0;
    }
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      // Varint length, at most 5 bytes (frames are below 4 GiB).
      let len = 0;
      let shift = 0;
      let p = pos;
      let complete = false;
      while (p < end) {
        const b = chunk[p++]!;
        len += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) { complete = true; break; }
        shift += 7;
        if (shift >= 35) return this.fail('frame length prefix longer than 5 bytes');
      }
      if (!complete) {
        this.stash(chunk, pos, end - pos + 1);
        return;
      }
      if (len > this.maxFrameBytes) return this.fail(`frame of ${len} bytes exceeds the limit of ${this.maxFrameBytes}`);
      const frameEnd = p + len;
      if (frameEnd > end) {
        this.stash(chunk, pos, frameEnd - pos);
        return;
      }
      this.onFrame(chunk.subarray(p, frameEnd));
      pos = frameEnd;
    }
  }

  private stash(chunk: Buffer, from: number, need: number): void {
    const rest = chunk.subarray(from);
    this.parts = [rest];
    this.buffered = rest.length;
    this.need = need;
  }

  private fail(message: string): never {
    this.failed = true;
    this.parts = [];
    this.buffered = 0;
    throw new FramingError(message);
  }
}

/** Bytes of the varint encoding of `n` (a frame length prefix). */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Schedules `fn` after the current event-loop turn's I/O callbacks. */
export type TurnScheduler = (fn: () => void) => void;

const nextTurn: TurnScheduler = (fn) => { setImmediate(fn); };

/**
 * Outgoing items of one connection, flushed together once per event-loop turn. While paused
 * (the socket asked to wait), items stay queued: everything still here provably never reached
 * the socket.
 */
export class TurnBatch<T> {
  private items: T[] = [];
  private scheduled = false;
  private paused = false;

  constructor(
    private readonly flush: (items: T[]) => void,
    private readonly schedule: TurnScheduler = nextTurn,
  ) {}

  /** Items queued and not yet flushed. */
  get size(): number {
    return this.items.length;
  }

  /** Queues an item; a flush follows this turn unless paused. */
  push(item: T): void {
    this.items.push(item);
    this.arm();
  }

  /** Removes a queued item that is not flushed yet; true when it was still queued (and so never sent). */
  remove(item: T): boolean {
    const i = this.items.indexOf(item);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }

  /** Whether `item` is still queued (not yet handed to the socket). */
  has(item: T): boolean {
    return this.items.includes(item);
  }

  /** Stops flushing until resume(): the socket's buffer is full. */
  pause(): void {
    this.paused = true;
  }

  /** Flushes again (this turn) after a pause. */
  resume(): void {
    this.paused = false;
    this.arm();
  }

  /** Empties the queue without flushing; returns what was queued (never sent). */
  takeAll(): T[] {
    const items = this.items;
    this.items = [];
    return items;
  }

  private arm(): void {
    if (this.scheduled || this.paused || this.items.length === 0) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      if (this.paused || this.items.length === 0) return;
      const items = this.items;
      this.items = [];
      this.flush(items);
    });
  }
}
