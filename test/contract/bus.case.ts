// The Bus contract: every implementation (MemoryBus, RedisBus, RedisBus on a cluster) passes these.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bus, BusHandler } from '../../src/bus/bus.js';
import type { EventBody } from '../../src/protocol/frames.js';

/** Records what a bus hands up, and waits for it. */
export class RecordingHandler implements BusHandler {
  readonly events: Array<{ tenant: string; topic: string; event: EventBody }> = [];
  readonly resyncs: Array<ReadonlyArray<{ tenant: string; topic: string }>> = [];
  breaks = 0;

  onEvent(tenant: string, topic: string, event: EventBody): void {
    this.events.push({ tenant, topic, event });
  }

  onBreak(): void {
    this.breaks++;
  }

  onResync(topics: ReadonlyArray<{ tenant: string; topic: string }>): void {
    this.resyncs.push(topics);
  }

  payloads(topic?: string): string[] {
    return this.events.filter((e) => topic === undefined || e.topic === topic).map((e) => Buffer.from(e.event.payload).toString());
  }

  async waitFor(count: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} events, got ${this.events.length}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** An event body as a publisher hands it to the bus. */
export function body(text: string, topic = ''): EventBody {
  return { topic, payload: Buffer.from(text), contentType: 'text/plain', publishedMs: Date.now() };
}

/** Waits long enough for a remote bus to deliver anything still in flight (used to prove absence). */
export async function settle(ms = 200): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export interface BusFactory {
  /** A fresh bus; buses made by one factory within a test share one backend. */
  make(): Promise<Bus>;
  /** Closes what the factory made for the current test. */
  cleanup(): Promise<void>;
}

/** Runs the Bus contract against the implementation `factory` makes. */
export function busContract(name: string, factory: () => BusFactory): void {
  describe(`Bus contract: ${name}`, () => {
    let f: BusFactory;
    let bus: Bus;
    let handler: RecordingHandler;
    let n = 0;
    // A tenant per test keeps tests on a shared backend apart.
    let tenant: string;

    beforeEach(async () => {
      f = factory();
      bus = await f.make();
      handler = new RecordingHandler();
      bus.setHandler(handler);
      tenant = `t${process.pid}-${Date.now().toString(36)}-${n++}`;
    });
    afterEach(async () => {
      await f.cleanup();
    });

    it('delivers events on a subscribed topic, in publish order, with the topic taken from the channel', async () => {
      await bus.subscribe(tenant, 'orders/1');
      for (let i = 0; i < 200; i++) void bus.publish(tenant, 'orders/1', body(`e${i}`, 'ignored/topic'));
      await handler.waitFor(200);
      expect(handler.payloads()).toEqual(Array.from({ length: 200 }, (_, i) => `e${i}`));
      expect(handler.events.every((e) => e.tenant === tenant && e.topic === 'orders/1' && e.event.topic === 'orders/1')).toBe(true);
      expect(handler.events[0]!.event.contentType).toBe('text/plain');
      expect(handler.events[0]!.event.position).toBeUndefined();
    });

    it('delivers nothing for topics not subscribed, other tenants, or after unsubscribe', async () => {
      await bus.subscribe(tenant, 'a');
      await bus.publish(tenant, 'b', body('other topic'));
      await bus.publish(`${tenant}x`, 'a', body('other tenant'));
      await bus.publish(tenant, 'a', body('one'));
      await handler.waitFor(1);
      bus.unsubscribe(tenant, 'a');
      await bus.subscribe(tenant, 'marker');
      await bus.publish(tenant, 'a', body('after unsubscribe'));
      await bus.publish(tenant, 'marker', body('marker'));
      await handler.waitFor(2);
      await settle();
      expect(handler.payloads()).toEqual(['one', 'marker']);
    });

    it('subscribing twice listens once', async () => {
      await Promise.all([bus.subscribe(tenant, 'dup'), bus.subscribe(tenant, 'dup')]);
      await bus.subscribe(tenant, 'dup');
      await bus.publish(tenant, 'dup', body('x'));
      await handler.waitFor(1);
      await settle();
      expect(handler.payloads()).toEqual(['x']);
    });

    it('subscribe, unsubscribe and subscribe again in one tick leaves the topic subscribed', async () => {
      const first = bus.subscribe(tenant, 'flip');
      bus.unsubscribe(tenant, 'flip');
      const second = bus.subscribe(tenant, 'flip');
      await Promise.all([first.catch(() => undefined), second]);
      await bus.publish(tenant, 'flip', body('still here'));
      await handler.waitFor(1);
      expect(handler.payloads()).toEqual(['still here']);
    });

    it('an unsubscribe called off in the same tick leaves a confirmed subscription in place', async () => {
      await bus.subscribe(tenant, 'steady');
      bus.unsubscribe(tenant, 'steady');
      await bus.subscribe(tenant, 'steady');
      await settle(50);
      await bus.publish(tenant, 'steady', body('kept'));
      await handler.waitFor(1);
      expect(handler.payloads()).toEqual(['kept']);
    });

    it('assigns consecutive offsets in one epoch to history topics and delivers them with positions', async () => {
      await bus.subscribe(tenant, 'h');
      const retention = { size: 100, ttlMs: 60_000 };
      const positions = [];
      for (let i = 0; i < 5; i++) positions.push(await bus.publish(tenant, 'h', body(`h${i}`), retention));
      expect(positions.map((p) => p!.offset)).toEqual([1, 2, 3, 4, 5]);
      const epoch = positions[0]!.epoch;
      expect(epoch).toMatch(/^\S{4,}$/);
      expect(positions.every((p) => p!.epoch === epoch)).toBe(true);
      await handler.waitFor(5);
      expect(handler.events.map((e) => e.event.position)).toEqual(positions);
      expect(handler.payloads()).toEqual(['h0', 'h1', 'h2', 'h3', 'h4']);
    });

    it('reads history after an offset, in order, trimmed to exactly the configured size', async () => {
      const retention = { size: 3, ttlMs: 60_000 };
      for (let i = 1; i <= 5; i++) await bus.publish(tenant, 'h', body(`h${i}`), retention);
      const all = await bus.history(tenant, 'h', 0);
      expect(all.top).toBe(5);
      expect(all.events.map((e) => e.position!.offset)).toEqual([3, 4, 5]);
      expect(all.events.map((e) => Buffer.from(e.payload).toString())).toEqual(['h3', 'h4', 'h5']);
      expect(all.events.every((e) => e.topic === 'h' && e.position!.epoch === all.epoch)).toBe(true);
      const after4 = await bus.history(tenant, 'h', 4);
      expect(after4.events.map((e) => e.position!.offset)).toEqual([5]);
      const topOnly = await bus.history(tenant, 'h', Infinity);
      expect(topOnly).toEqual({ epoch: all.epoch, top: 5, events: [] });
    });

    it('keeps no history for topics published without retention', async () => {
      expect(await bus.publish(tenant, 'plain', body('p'))).toBeUndefined();
      expect(await bus.history(tenant, 'plain', 0)).toEqual({ epoch: '', top: 0, events: [] });
    });

    it('starts a new epoch once the history expired', async () => {
      const retention = { size: 10, ttlMs: 1000 };
      const first = await bus.publish(tenant, 'short', body('1'), retention);
      await new Promise((r) => setTimeout(r, 1300));
      expect((await bus.history(tenant, 'short', 0)).epoch).toBe('');
      const second = await bus.publish(tenant, 'short', body('2'), retention);
      expect(second!.offset).toBe(1);
      expect(second!.epoch).not.toBe(first!.epoch);
    });

    it('is ready while connected and not after close', async () => {
      expect(bus.ready()).toBe(true);
      await bus.close();
      expect(bus.ready()).toBe(false);
    });
  });
}
