// The in-process bus: the embedded default for one gateway. Same contract as RedisBus, history included.
import { randomBytes } from 'node:crypto';
import type { EventBody, StreamPosition } from '../protocol/frames.js';
import type { Bus, BusHandler, HistoryRetention, HistoryState } from './bus.js';

interface Stream {
  epoch: string;
  top: number;
  events: EventBody[];
  expiresAtMs: number;
}

/** A fresh stream epoch: random, short, printable. */
export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/** Bus within one process: events reach this process's handler only, in publish order. */
export class MemoryBus implements Bus {
  private handler: BusHandler | undefined;
  private readonly subscribed = new Map<string, { tenant: string; topic: string }>();
  private readonly streams = new Map<string, Stream>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly now: () => number = Date.now) {
    // Expired histories are dropped in the background so memory tracks the live topics only.
    this.sweeper = setInterval(() => this.sweep(), 30_000);
    this.sweeper.unref();
  }

  setHandler(handler: BusHandler): void {
    this.handler = handler;
  }

  async subscribe(tenant: string, topic: string): Promise<void> {
    this.subscribed.set(key(tenant, topic), { tenant, topic });
  }

  unsubscribe(tenant: string, topic: string): void {
    this.subscribed.delete(key(tenant, topic));
  }

  async publish(tenant: string, topic: string, event: EventBody, retention?: HistoryRetention): Promise<StreamPosition | undefined> {
    const k = key(tenant, topic);
    let delivered: EventBody = { ...event, topic, position: undefined };
    let position: StreamPosition | undefined;
    if (retention) {
      const now = this.now();
      let stream = this.live(k, now);
      if (!stream) {
        stream = { epoch: newEpoch(), top: 0, events: [], expiresAtMs: 0 };
        this.streams.set(k, stream);
      }
      stream.top += 1;
      position = { offset: stream.top, epoch: stream.epoch };
      delivered = { ...delivered, position };
      stream.events.push(delivered);
      if (stream.events.length > retention.size) stream.events.splice(0, stream.events.length - retention.size);
      stream.expiresAtMs = now + retention.ttlMs;
    }
    // Delivered after the publisher's own continuation, like a remote bus, yet in publish order.
    queueMicrotask(() => {
      if (!this.closed && this.subscribed.has(k)) this.handler?.onEvent(tenant, topic, delivered);
    });
    return position;
  }

  async history(tenant: string, topic: string, after: number): Promise<HistoryState> {
    const stream = this.live(key(tenant, topic), this.now());
    if (!stream) return { epoch: '', top: 0, events: [] };
    const events = after === Infinity ? [] : stream.events.filter((e) => e.position!.offset > after);
    return { epoch: stream.epoch, top: stream.top, events };
  }

  ready(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    this.subscribed.clear();
  }

  private live(k: string, now: number): Stream | undefined {
    const stream = this.streams.get(k);
    if (stream && stream.expiresAtMs <= now) {
      this.streams.delete(k);
      return undefined;
    }
    return stream;
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, stream] of this.streams) if (stream.expiresAtMs <= now) this.streams.delete(k);
  }
}

function key(tenant: string, topic: string): string {
  return `${tenant}\u0000${topic}`;
}
