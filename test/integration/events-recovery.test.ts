// History and recovery across two real gateway processes on one real Redis.
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { encodeEvent } from '../../src/protocol/codec.js';
import {
  eventsOf, gatewaysFor, httpPublish, recordKinds, publish, subscribe, uniquePrefix, until, waitEvents,
  type Position,
} from '../helpers/events.js';
import { testToken } from '../helpers/gateway.js';
import type { TestClient } from '../helpers/ws-client.js';

const REDIS = process.env.RELAYGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('recovery after a disconnect', () => {
  const prefix = uniquePrefix();
  const { gateways, clients } = gatewaysFor(2, () => ({
    RELAYGATE_REDIS_URL: REDIS,
    RELAYGATE_REDIS_PREFIX: prefix,
    RELAYGATE_HISTORY: 'feeds/**=5:1h,streams/**=1000:1h',
    RELAYGATE_MAX_IN_FLIGHT: '2000',
  }));

  async function publishAll(c: TestClient, topic: string, texts: string[]): Promise<Position[]> {
    const out: Position[] = [];
    for (const text of texts) {
      const ack = await publish(c, topic, text);
      expect(ack.kind).toBe('ack');
      const p = ack.body.position as { offset: number; epoch: string };
      out.push({ offset: Number(p.offset), epoch: p.epoch });
    }
    return out;
  }

  it('resumes cleanly on another gateway: missed events, then the Ack, then live events', async () => {
    const [a, b] = gateways;
    const first = await clients.open(a!);
    const ack0 = await subscribe(first, 'feeds/x');
    expect(ack0.position).toBeUndefined(); // nothing published yet
    const publisher = await clients.open(b!);
    const [p1, p2] = await publishAll(publisher, 'feeds/x', ['e1', 'e2']);
    expect(p1).toMatchObject({ offset: 1 });
    expect(p2).toEqual({ offset: 2, epoch: p1!.epoch });
    const seen = await waitEvents(first, 'feeds/x', 2);
    expect(seen.map((e) => e.position)).toEqual([p1, p2]);
    first.terminate();

    await publishAll(publisher, 'feeds/x', ['e3', 'e4']);
    const second = await clients.open(b!);
    const arrived = recordKinds(second);
    const ack = await subscribe(second, 'feeds/x', { recover: true, since: seen[1]!.position! });
    expect(ack).toEqual({ position: { offset: 4, epoch: p1!.epoch }, replayed: 2, recovered: true });
    await publishAll(publisher, 'feeds/x', ['e5']);
    await waitEvents(second, 'feeds/x', 3);
    expect(eventsOf(second, 'feeds/x').map((e) => [e.text, e.position!.offset])).toEqual([['e3', 3], ['e4', 4], ['e5', 5]]);
    expect(arrived).toEqual(['event', 'event', 'ack', 'event']);
  });

  it('tells a client whose position is older than the history that it must reload, replaying what is held', async () => {
    const [a, b] = gateways;
    const publisher = await clients.open(a!);
    const [p1] = await publishAll(publisher, 'feeds/y', ['y1']);
    await publishAll(publisher, 'feeds/y', ['y2', 'y3', 'y4', 'y5', 'y6', 'y7', 'y8', 'y9']);
    const late = await clients.open(b!);
    const ack = await subscribe(late, 'feeds/y', { recover: true, since: p1! });
    expect(ack).toEqual({ position: { offset: 9, epoch: p1!.epoch }, replayed: 5, recovered: false });
    expect(eventsOf(late, 'feeds/y').map((e) => e.text)).toEqual(['y5', 'y6', 'y7', 'y8', 'y9']);
  });

  it('replays nothing for a position of another epoch and says recovered false', async () => {
    const [a] = gateways;
    const publisher = await clients.open(a!);
    await publishAll(publisher, 'feeds/z', ['z1', 'z2']);
    const c = await clients.open(a!);
    const ack = await subscribe(c, 'feeds/z', { recover: true, since: { offset: 1, epoch: 'not-this-one' } });
    expect(ack).toMatchObject({ replayed: 0, recovered: false, position: { offset: 2 } });
    expect(eventsOf(c, 'feeds/z')).toEqual([]);
  });

  it('answers POST /v1/publish with the position on history topics and {} elsewhere', async () => {
    const [a] = gateways;
    const token = await testToken();
    const kept = await httpPublish(a!, token, 'feeds/http', 'h1');
    expect(kept.status).toBe(200);
    expect(kept.body).toMatchObject({ offset: '1' });
    expect(String(kept.body.epoch)).not.toBe('');
    expect(await httpPublish(a!, token, 'plain/http', 'p1')).toEqual({ status: 200, body: {} });
  });

  it('loses and repeats nothing while resubscribing with recover during a stream of publishes', async () => {
    const [a, b] = gateways;
    const publisher = await clients.open(a!);
    const total = 400;
    let published = 0;
    const pumping = (async () => {
      // Up to 20 in flight, so the stream keeps flowing while the subscriber moves.
      while (published < total) {
        const batch = Array.from({ length: Math.min(20, total - published) }, () => published++);
        await Promise.all(batch.map((i) => publish(publisher, 'streams/live', `s${i}`)));
      }
    })();
    const first = await clients.open(b!);
    await subscribe(first, 'streams/live');
    await until('some events', () => eventsOf(first, 'streams/live').length >= 50);
    first.terminate();
    const before = eventsOf(first, 'streams/live');
    const last = before[before.length - 1]!.position!;
    const second = await clients.open(a!);
    const ack = await subscribe(second, 'streams/live', { recover: true, since: last });
    expect(ack.recovered).toBe(true);
    await pumping;
    await until('the last event', () => eventsOf(second, 'streams/live').some((e) => e.position!.offset === total));
    await new Promise((r) => setTimeout(r, 200));
    const after = eventsOf(second, 'streams/live');
    const offsets = [...before, ...after].map((e) => e.position!.offset);
    const firstOffset = offsets[0]!;
    expect(offsets).toEqual(Array.from({ length: total - firstOffset + 1 }, (_, i) => firstOffset + i));
    expect(after.map((e) => e.text)).toEqual(after.map((e) => `s${e.position!.offset - 1}`));
  });

  it('closes a live subscription with 4010 when an offset is skipped, and a resubscribe with recover fills the hole', async () => {
    const [a, b] = gateways;
    const subscriber = await clients.open(b!);
    await subscribe(subscriber, 'streams/gap');
    const publisher = await clients.open(a!);
    const [p1] = await publishAll(publisher, 'streams/gap', ['g1']);
    await waitEvents(subscriber, 'streams/gap', 1);

    // An event appended to the history whose live message never went out (as when a link drops it).
    const redis = new Redis(REDIS);
    try {
      const channel = `${prefix}:default:streams/gap`;
      const offset = await redis.hincrby(`{${channel}}:meta`, 'top', 1);
      const lost = encodeEvent({ topic: 'streams/gap', payload: Buffer.from('g2'), publishedMs: Date.now(), position: { offset, epoch: p1!.epoch } });
      await redis.xadd(`{${channel}}:stream`, `${offset}-0`, 'e', Buffer.from(lost));
    } finally {
      redis.disconnect();
    }
    await publishAll(publisher, 'streams/gap', ['g3']);
    expect((await subscriber.closed).code).toBe(4010);
    expect(eventsOf(subscriber, 'streams/gap').map((e) => e.text)).toEqual(['g1']);

    const again = await clients.open(b!);
    const ack = await subscribe(again, 'streams/gap', { recover: true, since: p1! });
    expect(ack).toEqual({ position: { offset: 3, epoch: p1!.epoch }, replayed: 2, recovered: true });
    expect(eventsOf(again, 'streams/gap').map((e) => e.text)).toEqual(['g2', 'g3']);
  });
});
