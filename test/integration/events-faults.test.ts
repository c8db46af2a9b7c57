// Redis faults under two real gateway processes: Redis killed and restarted under load, and a
// half-open Redis (process frozen with SIGSTOP).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connect, eventsOf, gatewaysFor, positionOf, publish, readyz, subscribe, until, waitEvents,
  type Position,
} from '../helpers/events.js';
import type { GatewayProcess } from '../helpers/gateway.js';
import { RedisServer } from '../helpers/redis.js';
import type { TestClient } from '../helpers/ws-client.js';

/**
 * A subscriber as a careful client writes it: on any close it reconnects and resubscribes with
 * recover from the last position it saw, retrying while the gateway answers UNAVAILABLE.
 */
class ResilientSubscriber {
  readonly texts: string[] = [];
  readonly offsets: number[] = [];
  readonly acks: Array<{ replayed: number; recovered: boolean }> = [];
  readonly closeCodes: number[] = [];
  private last: Position | undefined;
  private client: TestClient | undefined;
  private stopped = false;
  private taken = 0;

  constructor(private readonly gateway: GatewayProcess, private readonly topic: string) {}

  async start(): Promise<void> {
    await this.attach(false);
  }

  private async attach(recover: boolean): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      try {
        const c = await connect(this.gateway);
        this.client = c;
        this.taken = 0;
        const ack = await subscribe(c, this.topic, recover && this.last ? { recover: true, since: this.last } : {});
        if (recover) this.acks.push({ replayed: ack.replayed, recovered: ack.recovered });
        if (!this.last && ack.position) this.last = ack.position;
        void c.closed.then(({ code }) => {
          this.drain(c);
          this.closeCodes.push(code);
          if (!this.stopped) void this.attach(true);
        });
        return;
      } catch {
        this.client?.terminate();
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Moves newly received events of the current connection into the record. */
  drain(c: TestClient | undefined = this.client): void {
    if (!c) return;
    const events = eventsOf(c, this.topic);
    for (const e of events.slice(this.taken)) {
      this.texts.push(e.text);
      this.offsets.push(e.position!.offset);
      this.last = e.position;
    }
    this.taken = events.length;
  }

  stop(): void {
    this.stopped = true;
    this.client?.terminate();
  }
}

describe('Redis faults', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    // Append-only with fsync on every write: what Redis acknowledged survives SIGKILL.
    redis = await RedisServer.start({ persistent: true });
  });
  afterAll(async () => {
    await redis?.stop();
  });
  const { gateways } = gatewaysFor(2, () => ({ RELAYGATE_REDIS_URL: redis.url, RELAYGATE_HISTORY: 'load/**=100000:1h' }));

  it('Redis killed and restarted under load: subscribers resume, every acknowledged event arrives once, nothing else', async () => {
    const [a, b] = gateways;
    const subs = [new ResilientSubscriber(a!, 'load/feed'), new ResilientSubscriber(b!, 'load/feed')];
    for (const s of subs) await s.start();

    const publisher = await connect(a!);
    const acked: string[] = [];
    const attempted = new Set<string>();
    let stop = false;
    let failures = 0;
    const pump = (async () => {
      for (let i = 0; !stop; i++) {
        for (let attempt = 0; !stop; attempt++) {
          const text = `m${i}.${attempt}`;
          attempted.add(text);
          const reply = await publish(publisher, 'load/feed', text);
          if (reply.kind === 'ack') {
            acked.push(text);
            break;
          }
          expect(reply.body.code).toBe(14); // UNAVAILABLE, with a retry hint
          failures++;
          await new Promise((r) => setTimeout(r, Number(reply.body.retryAfterMs ?? 100) / 5));
        }
      }
    })();

    await until('load before the fault', () => acked.length >= 150);
    await redis.kill();
    for (const g of gateways) await until('readyz reports the bus down', async () => !(await readyz(g.port)).bus);
    expect((await readyz(a!.port)).status).toBe(503);
    await new Promise((r) => setTimeout(r, 500));
    await redis.restart();
    for (const g of gateways) await until('readyz reports the bus back', async () => (await readyz(g.port)).bus, 30_000);
    const resumedAt = acked.length;
    await until('load after the fault', () => acked.length >= resumedAt + 150, 30_000);
    stop = true;
    await pump;
    publisher.terminate();
    expect(failures).toBeGreaterThan(0);

    for (const s of subs) {
      await until('every acknowledged event at the subscriber', () => {
        s.drain();
        const got = new Set(s.texts);
        return acked.every((t) => got.has(t));
      }, 30_000);
      s.stop();
      expect(new Set(s.texts).size).toBe(s.texts.length); // no duplicates
      expect(s.texts.every((t) => attempted.has(t))).toBe(true); // nothing invented
      // Offsets ascend without holes from where the subscription began.
      expect(s.offsets).toEqual(s.offsets.map((_, i) => s.offsets[0]! + i));
      // Every resumption was a clean one: the history survived, so nothing was lost.
      expect(s.acks.every((ack) => ack.recovered)).toBe(true);
    }
  });

  it('notices a frozen (half-open) Redis within seconds, reports not ready, and recovers when it thaws', async () => {
    const [a, b] = gateways;
    const subscriber = await connect(b!);
    await subscribe(subscriber, 'load/halfopen');
    const publisher = await connect(a!);
    expect((await publish(publisher, 'load/halfopen', 'before')).kind).toBe('ack');
    await waitEvents(subscriber, 'load/halfopen', 1);

    redis.pause();
    const frozenAt = Date.now();
    try {
      for (const g of gateways) await until('readyz reports the bus down', async () => !(await readyz(g.port)).bus, 15_000);
      // Heartbeat 200 ms x 3 misses, probe 300 ms: seconds, where TCP keepalive would take minutes.
      expect(Date.now() - frozenAt).toBeLessThan(10_000);
    } finally {
      redis.resume();
    }
    for (const g of gateways) await until('readyz reports the bus back', async () => (await readyz(g.port)).bus, 30_000);
    const ack = await publish(publisher, 'load/halfopen', 'after');
    expect(ack.kind).toBe('ack');
    // The subscription either continues or, if events may have been lost, is closed with 4010.
    const outcome = await Promise.race([
      waitEvents(subscriber, 'load/halfopen', 2).then((events) => events.map((e) => e.text)),
      subscriber.closed.then(({ code }) => code),
    ]);
    if (typeof outcome === 'number') expect(outcome).toBe(4010);
    else expect(outcome).toEqual(['before', 'after']);
    expect(positionOf(ack.body.position)!.offset).toBe(2);
    subscriber.terminate();
    publisher.terminate();
  });
});

describe('Redis restarted empty (no persistence)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  const { gateways, clients } = gatewaysFor(2, () => ({ RELAYGATE_REDIS_URL: redis.url, RELAYGATE_HISTORY: 'load/**=1000:1h' }));

  it('tells live subscribers of history topics (4010) and the resubscribe says recovered false', async () => {
    const [a, b] = gateways;
    const subscriber = await clients.open(b!);
    await subscribe(subscriber, 'load/volatile');
    const publisher = await clients.open(a!);
    for (let i = 1; i <= 3; i++) expect((await publish(publisher, 'load/volatile', `v${i}`)).kind).toBe('ack');
    const seen = await waitEvents(subscriber, 'load/volatile', 3);

    await redis.restart(); // all history gone
    for (const g of gateways) await until('readyz reports the bus back', async () => (await readyz(g.port)).bus, 30_000);
    const after = await publish(publisher, 'load/volatile', 'after restart');
    expect(after.kind).toBe('ack');
    expect(positionOf(after.body.position)!.offset).toBe(1); // a new epoch
    // The subscriber cannot be told "nothing was lost": its stream is gone.
    expect((await subscriber.closed).code).toBe(4010);

    const again = await clients.open(b!);
    const ack = await subscribe(again, 'load/volatile', { recover: true, since: seen[2]!.position! });
    expect(ack).toMatchObject({ replayed: 0, recovered: false, position: positionOf(after.body.position) });
  });
});
