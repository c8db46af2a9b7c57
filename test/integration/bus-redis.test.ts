import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HistoryPolicy } from '../../src/bus/history-policy.js';
import { EventsHub, topicKey } from '../../src/bus/hub.js';
import { BusMetrics } from '../../src/bus/metrics.js';
import { RedisBus, type RedisBusOptions } from '../../src/bus/redis-bus.js';
import { silentLogger } from '../../src/log.js';
import { encodeEvent } from '../../src/protocol/codec.js';
import { body, busContract, RecordingHandler, settle, type BusFactory } from '../contract/bus.case.js';
import { RecordingFanout, RecordingSession } from '../helpers/recording-fanout.js';
import { RedisServer } from '../helpers/redis.js';

const SHARED_REDIS = process.env.RELAYGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function uniquePrefix(): string {
  return `rgtest-${randomBytes(4).toString('hex')}`;
}

function options(url: string, prefix: string, extra: Partial<RedisBusOptions> = {}): RedisBusOptions {
  return {
    url,
    cluster: false,
    prefix,
    heartbeatMs: 200,
    probeMs: 300,
    instanceId: randomBytes(3).toString('hex'),
    log: silentLogger(),
    ...extra,
  };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function readyBus(url: string, prefix: string, extra: Partial<RedisBusOptions> = {}): Promise<RedisBus> {
  const bus = new RedisBus(options(url, prefix, extra));
  await until('bus ready', () => bus.ready());
  return bus;
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return Number(value?.value ?? 0);
}

busContract('RedisBus', (): BusFactory => {
  const made: RedisBus[] = [];
  const prefix = uniquePrefix();
  return {
    make: async () => {
      const bus = await readyBus(SHARED_REDIS, prefix);
      made.push(bus);
      return bus;
    },
    cleanup: async () => {
      await Promise.all(made.map((b) => b.close()));
    },
  };
});

describe('RedisBus on a shared Redis', () => {
  const buses: RedisBus[] = [];
  const clients: Redis[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
    for (const c of clients.splice(0)) c.disconnect();
  });
  const bus = async (prefix: string, extra: Partial<RedisBusOptions> = {}): Promise<RedisBus> => {
    const b = await readyBus(SHARED_REDIS, prefix, extra);
    buses.push(b);
    return b;
  };
  const client = (): Redis => {
    const c = new Redis(SHARED_REDIS);
    clients.push(c);
    return c;
  };

  it('carries events between instances', async () => {
    const prefix = uniquePrefix();
    const a = await bus(prefix);
    const b = await bus(prefix);
    const got = new RecordingHandler();
    a.setHandler(got);
    await a.subscribe('acme', 'orders/7');
    const position = await b.publish('acme', 'orders/7', body('hello'), { size: 10, ttlMs: 60_000 });
    await b.publish('acme', 'orders/7', body('plain'));
    await got.waitFor(2);
    expect(got.payloads()).toEqual(['hello', 'plain']);
    expect(got.events[0]!.event.position).toEqual(position);
  });

  it('keeps the order of one turn\'s publishes, plain and appended to history alike (they leave together)', async () => {
    const prefix = uniquePrefix();
    const a = await bus(prefix);
    const b = await bus(prefix);
    const got = new RecordingHandler();
    a.setHandler(got);
    await a.subscribe('acme', 'orders/8');
    const retention = { size: 1000, ttlMs: 60_000 };
    const sent: Promise<unknown>[] = [];
    for (let i = 0; i < 400; i++) sent.push(b.publish('acme', 'orders/8', body(`e${i}`), i % 3 === 0 ? retention : undefined));
    const positions = await Promise.all(sent);
    await got.waitFor(400);
    expect(got.payloads()).toEqual(Array.from({ length: 400 }, (_, i) => `e${i}`));
    const offsets = positions.filter((p) => p !== undefined).map((p) => (p as { offset: number }).offset);
    expect(offsets).toEqual(Array.from({ length: 134 }, (_, i) => i + 1));
    expect(got.events.filter((e) => e.event.position).map((e) => e.event.position!.offset)).toEqual(offsets);
  });

  it('listens with one SUBSCRIBE per topic per instance, shared by its sessions, batched per tick, never a pattern', async () => {
    const prefix = uniquePrefix();
    const monitor = await client().monitor();
    const commands: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.some((a) => a.startsWith(prefix))) commands.push(args);
    });
    const b = await bus(prefix);
    const fanout = new RecordingFanout();
    const hub = new EventsHub(b, fanout, { history: HistoryPolicy.parse(undefined), log: silentLogger() });
    const sessions = Array.from({ length: 30 }, () => new RecordingSession(fanout));
    await Promise.all(sessions.map((s) => hub.subscribe(s, 'acme', 'shared', false, undefined)));
    await Promise.all(Array.from({ length: 50 }, (_, i) => hub.subscribe(sessions[0]!, 'acme', `many/${i}`, false, undefined)));
    const admin = client();
    const channel = b.channel('acme', 'shared');
    expect(await admin.pubsub('NUMSUB', channel)).toEqual([channel, 1]);

    await b.publish('acme', 'shared', body('one'));
    await until('delivery', () => sessions.every((s) => s.eventTexts().length === 1));
    expect(fanout.published.filter((p) => p.key === topicKey('acme', 'shared'))).toHaveLength(1);

    for (const s of sessions.slice(1)) hub.unsubscribe(s, 'acme', 'shared');
    await settle(100);
    expect(await admin.pubsub('NUMSUB', channel)).toEqual([channel, 1]);
    hub.dropSession(sessions[0]!);
    await until('last local subscriber gone', async () => ((await admin.pubsub('NUMSUB', channel)) as unknown[])[1] === 0);

    const subscribes = commands.filter((c) => c[0]!.toLowerCase() === 'subscribe');
    const unsubscribes = commands.filter((c) => c[0]!.toLowerCase() === 'unsubscribe');
    expect(commands.some((c) => c[0]!.toLowerCase() === 'psubscribe')).toBe(false);
    // probe channel + 'shared' in the first batch, the 50 'many/*' topics in a second one.
    expect(subscribes.length).toBeLessThanOrEqual(3);
    expect(subscribes.flatMap((c) => c.slice(1)).filter((ch) => ch === channel)).toHaveLength(1);
    expect(subscribes.some((c) => c.length === 51)).toBe(true);
    expect(unsubscribes.length).toBe(1);
    expect(unsubscribes[0]!.slice(1)).toHaveLength(51);
    await hub.close();
  });

  it('delivers a raw PUBLISH of an encoded Event from any client; the channel decides tenant and topic', async () => {
    const prefix = uniquePrefix();
    const b = await bus(prefix);
    const got = new RecordingHandler();
    b.setHandler(got);
    await b.subscribe('acme', 'devices/1');
    const raw = encodeEvent({ topic: 'spoofed/elsewhere', payload: Buffer.from('{"t":21}'), contentType: 'application/json', publishedMs: 1234 });
    await client().publish(`${prefix}:acme:devices/1`, Buffer.from(raw));
    await got.waitFor(1);
    expect(got.events[0]).toMatchObject({ tenant: 'acme', topic: 'devices/1', event: { topic: 'devices/1', contentType: 'application/json', publishedMs: 1234 } });
    expect(got.payloads()).toEqual(['{"t":21}']);
  });

  it('counts and drops malformed raw messages, and keeps delivering', async () => {
    const prefix = uniquePrefix();
    const registry = new Registry();
    const b = await bus(prefix, { metrics: new BusMetrics(registry) });
    const got = new RecordingHandler();
    b.setHandler(got);
    await b.subscribe('acme', 'x');
    const c = client();
    await c.publish(`${prefix}:acme:x`, Buffer.from([0x0a, 0xff, 0xff, 0xff])); // length beyond the end
    await c.publish(`${prefix}:acme:x`, Buffer.from([0x07])); // wire type 7 does not exist
    await c.publish(`${prefix}:acme:x`, Buffer.from(encodeEvent({ topic: '', payload: Buffer.from('fine'), publishedMs: 0 })));
    await got.waitFor(1);
    expect(got.payloads()).toEqual(['fine']);
    expect(await metricValue(registry, 'relaygate_events_dropped_total', { reason: 'malformed' })).toBe(2);
  });

  it('does not mistake a busy subscriber link for a dead one', { timeout: 120_000 }, async () => {
    const prefix = uniquePrefix();
    const registry = new Registry();
    const b = await bus(prefix, { heartbeatMs: 50, probeMs: 60_000, metrics: new BusMetrics(registry) });
    let received = 0;
    b.setHandler({
      onEvent() {
        received++;
        const until = process.hrtime.bigint() + 20_000n; // 20 µs of work per event: a loaded gateway
        while (process.hrtime.bigint() < until);
      },
      onBreak() {},
      onResync() {},
    });
    await b.subscribe('acme', 'flood');
    const total = 40_000;
    const raw = Buffer.from(encodeEvent({ topic: '', payload: Buffer.from('x'.repeat(64)), publishedMs: 0 }));
    const c = client();
    const pipeline = c.pipeline();
    for (let i = 0; i < total; i++) pipeline.publish(`${prefix}:acme:flood`, raw);
    await pipeline.exec();
    await until('every event', () => received === total, 90_000);
    expect(await metricValue(registry, 'relaygate_bus_reconnects_total', { link: 'subscriber' })).toBe(0);
    expect(await metricValue(registry, 'relaygate_bus_lost_windows_total')).toBe(0);
  });

  it('keeps history in one slot-tagged stream with a TTL, published and appended atomically', async () => {
    const prefix = uniquePrefix();
    const b = await bus(prefix);
    await b.publish('acme', 'h/1', body('a'), { size: 5, ttlMs: 30_000 });
    const admin = client();
    const channel = b.channel('acme', 'h/1');
    const ttl = await admin.pttl(`{${channel}}:stream`);
    expect(ttl).toBeGreaterThan(20_000);
    expect(await admin.pttl(`{${channel}}:meta`)).toBeGreaterThan(20_000);
    expect(await admin.xlen(`{${channel}}:stream`)).toBe(1);
  });
});

describe('RedisBus faults on a private redis-server', () => {
  let server: RedisServer;
  const buses: RedisBus[] = [];
  beforeAll(async () => {
    server = await RedisServer.start({ persistent: true });
  });
  afterAll(async () => {
    await server.stop();
  });
  afterEach(async () => {
    server.resume();
    await Promise.all(buses.splice(0).map((b) => b.close()));
  });

  it('keeps a publisher\'s order on a Redis that has not loaded the history script, before and after a restart', async () => {
    const prefix = uniquePrefix();
    const b = await readyBus(server.url, prefix);
    buses.push(b);
    const got = new RecordingHandler();
    b.setHandler(got);
    await b.subscribe('acme', 'feed');
    const retention = { size: 1000, ttlMs: 60_000 };
    const publishSpread = async (from: number, count: number): Promise<Array<{ offset: number; epoch: string } | undefined>> => {
      const sent: Promise<{ offset: number; epoch: string } | undefined>[] = [];
      for (let i = from; i < from + count; i++) {
        sent.push(b.publish('acme', 'feed', body(`e${i}`), retention));
        // Later turns' publishes go out while the first ones' answers come back.
        if (i % 10 === 9) await new Promise((r) => setImmediate(r));
      }
      return Promise.all(sent);
    };
    const flush = server.client();
    await flush.script('FLUSH');
    flush.disconnect();
    const first = await publishSpread(0, 200);
    expect(first.map((p) => p!.offset)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    await got.waitFor(200);
    expect(got.payloads()).toEqual(Array.from({ length: 200 }, (_, i) => `e${i}`));

    // A new connection to a restarted Redis loads the script again with its first append.
    await server.restart();
    await until('bus ready after the restart', () => b.ready());
    const second = await publishSpread(200, 200);
    const start = second[0]!.offset;
    expect(second.map((p) => p!.offset)).toEqual(Array.from({ length: 200 }, (_, i) => start + i));
    await got.waitFor(400);
    expect(got.payloads()).toEqual(Array.from({ length: 400 }, (_, i) => `e${i}`));
  });

  it('goes unready when Redis dies, fails publishes fast, then reconnects, resubscribes and resyncs', async () => {
    const registry = new Registry();
    const prefix = uniquePrefix();
    const b = await readyBus(server.url, prefix, { metrics: new BusMetrics(registry) });
    buses.push(b);
    const got = new RecordingHandler();
    b.setHandler(got);
    await b.subscribe('acme', 'live');
    await server.kill();
    await until('not ready', () => !b.ready());
    await expect(b.publish('acme', 'live', body('while down'))).rejects.toMatchObject({ code: 14 });
    await expect(b.subscribe('acme', 'other')).rejects.toMatchObject({ code: 14 });
    await server.restart();
    await until('ready again', () => b.ready());
    await until('resync', () => got.resyncs.length === 1);
    expect(got.resyncs[0]).toEqual([{ tenant: 'acme', topic: 'live' }]);
    expect(got.breaks).toBe(1);
    const publisher = await readyBus(server.url, prefix);
    buses.push(publisher);
    await publisher.publish('acme', 'live', body('after restart'));
    await got.waitFor(1);
    expect(got.payloads()).toEqual(['after restart']);
    expect(await metricValue(registry, 'relaygate_bus_lost_windows_total')).toBe(1);
    expect(await metricValue(registry, 'relaygate_bus_connected', { link: 'subscriber' })).toBe(1);
  });

  it('notices a half-open link within seconds (Redis frozen with SIGSTOP) and recovers when it thaws', async () => {
    const prefix = uniquePrefix();
    const registry = new Registry();
    const b = await readyBus(server.url, prefix, { heartbeatMs: 250, probeMs: 500, metrics: new BusMetrics(registry) });
    buses.push(b);
    const got = new RecordingHandler();
    b.setHandler(got);
    await b.subscribe('acme', 'frozen');
    server.pause();
    const pausedAt = Date.now();
    await until('not ready while frozen', () => !b.ready(), 10_000);
    // Three missed heartbeats (750 ms) or one lost probe (500 ms) plus scheduling slack; the
    // kernel's TCP keepalive would take minutes.
    // The heartbeat tears the silent subscriber link down (the kernel still holds it open).
    await until('subscriber link dropped', async () => (await metricValue(registry, 'relaygate_bus_connected', { link: 'subscriber' })) === 0, 10_000);
    expect(Date.now() - pausedAt).toBeLessThan(8000);
    server.resume();
    await until('ready after thaw', () => b.ready(), 20_000);
    const publisher = await readyBus(server.url, prefix);
    buses.push(publisher);
    await publisher.publish('acme', 'frozen', body('thawed'));
    await got.waitFor(1);
    expect(got.payloads()).toEqual(['thawed']);
    // The silent link was torn down and dialled again, not merely waited out.
    expect(await metricValue(registry, 'relaygate_bus_reconnects_total', { link: 'subscriber' })).toBeGreaterThanOrEqual(1);
    expect(await metricValue(registry, 'relaygate_bus_lost_windows_total')).toBeGreaterThanOrEqual(1);
  });

  it('closes promptly even when Redis does not answer', async () => {
    const b = await readyBus(server.url, uniquePrefix());
    server.pause();
    const started = Date.now();
    await b.close();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(b.ready()).toBe(false);
  });
});
