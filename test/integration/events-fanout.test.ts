// Three real gateway processes sharing one real Redis: fan-out, order, isolation, slow consumers.
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent } from '../../src/protocol/codec.js';
import {
  eventsOf, gatewaysFor, httpPublish, id, publish, subscribe, uniquePrefix, until, waitEvents,
} from '../helpers/events.js';
import { testToken } from '../helpers/gateway.js';

const REDIS = process.env.RELAYGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('events across three gateways on one Redis', () => {
  const prefix = uniquePrefix();
  const { gateways, clients } = gatewaysFor(3, () => ({
    RELAYGATE_REDIS_URL: REDIS,
    RELAYGATE_REDIS_PREFIX: prefix,
    RELAYGATE_MAX_IN_FLIGHT: '20000',
    RELAYGATE_RATE_LIMIT: '1000000',
    RELAYGATE_RATE_BURST: '1000000',
  }));
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(REDIS);
  });
  afterAll(() => {
    redis?.disconnect();
  });

  it('delivers each event, from WebSocket, HTTP or raw Redis, exactly once to every subscription on every gateway', async () => {
    const [a, b, c] = gateways;
    const subs = [await clients.open(a!), await clients.open(a!), await clients.open(b!), await clients.open(c!), await clients.open(c!, { subprotocol: 'json' })];
    for (const s of subs) await subscribe(s, 'rooms/1');
    const publisher = await clients.open(a!);
    expect((await publish(publisher, 'rooms/1', 'via ws')).kind).toBe('ack');
    expect((await httpPublish(b!, await testToken(), 'rooms/1', 'via http')).status).toBe(200);
    const raw = encodeEvent({ topic: 'ignored', payload: Buffer.from('via raw redis'), contentType: 'text/plain', publishedMs: Date.now() });
    await redis.publish(`${prefix}:default:rooms/1`, Buffer.from(raw));
    // A marker published last: once it arrived everywhere, any duplicate would have arrived too.
    await publish(publisher, 'rooms/1', 'marker');
    for (const s of subs) await waitEvents(s, 'rooms/1', 4);
    for (const s of subs) {
      expect(eventsOf(s, 'rooms/1').map((e) => e.text)).toEqual(['via ws', 'via http', 'via raw redis', 'marker']);
    }
    // One Redis subscription per topic per gateway, however many local subscribers.
    expect(await redis.pubsub('NUMSUB', `${prefix}:default:rooms/1`)).toEqual([`${prefix}:default:rooms/1`, 3]);
  });

  it('takes the raw publish of docs/events.md, made by printf and redis-cli', async () => {
    const [a] = gateways;
    const sub = await clients.open(a!, { tenant: 'acme', subprotocol: 'json' });
    await subscribe(sub, 'resources/printers/7');
    const line = `printf '\\022\\022{"state":"jammed"}\\032\\020application/json' | redis-cli -u ${REDIS} -x PUBLISH ${prefix}:acme:resources/printers/7`;
    execFileSync('sh', ['-c', line]);
    const [event] = await waitEvents(sub, 'resources/printers/7', 1);
    expect(event!.text).toBe('{"state":"jammed"}');
    expect(sub.received.find((f) => f.kind === 'event')!.body.contentType).toBe('application/json');
  });

  it('keeps the order of 10,000 events from one publisher on one topic, on every other gateway', { timeout: 120_000 }, async () => {
    const [a, b, c] = gateways;
    const subB = await clients.open(b!);
    const subC = await clients.open(c!, { subprotocol: 'json' });
    await subscribe(subB, 'ticks');
    await subscribe(subC, 'ticks');
    const publisher = await clients.open(a!);
    const total = 10_000;
    const ids: number[] = [];
    for (let i = 0; i < total; i++) {
      const frameId = id();
      ids.push(frameId);
      publisher.send({ id: frameId, publish: { topic: 'ticks', payload: Buffer.from(String(i)).toString('base64') } });
    }
    const answers = new Set(ids);
    await until('every publish answered', () => publisher.received.filter((f) => answers.has(f.id)).length === total, 40_000);
    expect(publisher.received.filter((f) => answers.has(f.id) && f.kind !== 'ack').map((f) => f.body)).toEqual([]);
    const expected = Array.from({ length: total }, (_, i) => String(i));
    for (const s of [subB, subC]) {
      const got = await waitEvents(s, 'ticks', total, 40_000);
      expect(got.length).toBe(total);
      expect(got.map((e) => e.text)).toEqual(expected);
    }
  });

  it('denies publishing and subscribing without a grant on every path, with the connection kept open', async () => {
    const [a, b] = gateways;
    const limited = await clients.open(a!, { scope: 'subscribe:chat/* publish:chat/*' });
    const denied = await publish(limited, 'rooms/secret', 'nope');
    expect(denied.kind).toBe('error');
    expect(denied.body.code).toBe(7);
    const sub = await limited.request({ id: id(), subscribe: { topic: 'rooms/secret' } });
    expect(sub.kind).toBe('error');
    expect(sub.body.code).toBe(7);
    expect((await publish(limited, 'chat/ok', 'fine')).kind).toBe('ack');

    const limitedToken = await testToken({ scope: 'publish:chat/*' });
    const http = await httpPublish(b!, limitedToken, 'rooms/secret', 'nope');
    expect(http.status).toBe(403);
    expect(http.body.code).toBe('PERMISSION_DENIED');
    expect((await httpPublish(b!, undefined, 'rooms/secret', 'nope')).status).toBe(401);
  });

  it('keeps tenants apart on WebSocket, HTTP and raw Redis paths', async () => {
    const [a, b, c] = gateways;
    const acmeSub = await clients.open(c!, { tenant: 'acme' });
    const globexSub = await clients.open(b!, { tenant: 'globex' });
    await subscribe(acmeSub, 'shared/topic');
    await subscribe(globexSub, 'shared/topic');

    const acmePub = await clients.open(a!, { tenant: 'acme' });
    await publish(acmePub, 'shared/topic', 'acme ws');
    await httpPublish(a!, await testToken({ tenant: 'acme' }), 'shared/topic', 'acme http');
    await redis.publish(`${prefix}:acme:shared/topic`, Buffer.from(encodeEvent({ topic: 'shared/topic', payload: Buffer.from('acme raw'), publishedMs: 0 })));
    // A raw message naming another tenant's topic inside the Event does not cross over either.
    await redis.publish(`${prefix}:acme:shared/topic`, Buffer.from(encodeEvent({ topic: '../globex/shared/topic', payload: Buffer.from('acme raw 2'), publishedMs: 0 })));
    const globexPub = await clients.open(a!, { tenant: 'globex' });
    await publish(globexPub, 'shared/topic', 'globex marker');

    await waitEvents(acmeSub, 'shared/topic', 4);
    await waitEvents(globexSub, 'shared/topic', 1);
    await publish(acmePub, 'shared/topic', 'acme marker');
    await waitEvents(acmeSub, 'shared/topic', 5);
    await new Promise((r) => setTimeout(r, 200));
    expect(eventsOf(acmeSub, 'shared/topic').map((e) => e.text)).toEqual(['acme ws', 'acme http', 'acme raw', 'acme raw 2', 'acme marker']);
    expect(eventsOf(globexSub, 'shared/topic').map((e) => e.text)).toEqual(['globex marker']);
  });
});

describe('slow consumers', () => {
  const { gateways, clients } = gatewaysFor(2, () => ({ RELAYGATE_REDIS_URL: REDIS, RELAYGATE_REDIS_PREFIX: uniquePrefix(), RELAYGATE_MAX_BACKPRESSURE: '1mb' }));

  it('closes a stalled subscriber with 4008 while another subscriber on the same gateway keeps receiving', async () => {
    const [a, b] = gateways;
    const stalled = await clients.open(b!);
    const healthy = await clients.open(b!);
    await subscribe(stalled, 'bulk');
    await subscribe(healthy, 'bulk');
    // Stop reading: the gateway's send buffer for this socket fills once the kernel's buffers are full.
    (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const publisher = await clients.open(a!);
    const chunk = Buffer.alloc(64 * 1024, 120).toString('base64');
    const total = 400; // ~26 MB: well past the kernel's socket buffers plus the 1 MB limit
    // Paced in windows the healthy reader keeps up with, as a live feed would be.
    for (let sent = 0; sent < total; sent += 10) {
      for (let i = 0; i < 10; i++) publisher.send({ id: id(), publish: { topic: 'bulk', payload: chunk } });
      await waitEvents(healthy, 'bulk', sent + 10, 30_000);
    }
    expect(eventsOf(healthy, 'bulk')).toHaveLength(total);
    expect(healthy.ws.readyState).toBe(1);
    (stalled.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await stalled.closed;
    expect(closed.code).toBe(4008);
    expect(eventsOf(stalled, 'bulk').length).toBeLessThan(total);
  });
});
