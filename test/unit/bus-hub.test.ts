import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HistoryRetention, HistoryState } from '../../src/bus/bus.js';
import { HistoryPolicy } from '../../src/bus/history-policy.js';
import { EventsHub, topicKey } from '../../src/bus/hub.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { BusMetrics } from '../../src/bus/metrics.js';
import { Close } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { AckBody, EventBody, StreamPosition } from '../../src/protocol/frames.js';
import { RecordingFanout, RecordingSession } from '../helpers/recording-fanout.js';

const text = (s: string): Uint8Array => Buffer.from(s);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A MemoryBus whose history reads let a hook run (e.g. more publishes) before they answer, like a slow remote read. */
class SlowReadBus extends MemoryBus {
  beforeRead: (() => Promise<void>) | undefined;
  override async history(tenant: string, topic: string, after: number): Promise<HistoryState> {
    const state = await super.history(tenant, topic, after);
    const hook = this.beforeRead;
    this.beforeRead = undefined;
    if (hook) await hook();
    return state;
  }
}

describe('EventsHub over MemoryBus', () => {
  let bus: SlowReadBus;
  let fanout: RecordingFanout;
  let hub: EventsHub;

  beforeEach(() => {
    bus = new SlowReadBus();
    fanout = new RecordingFanout();
    hub = new EventsHub(bus, fanout, { history: HistoryPolicy.parse(['feeds/**=3:1h', 'rooms/*=100:1h']), log: silentLogger() });
  });
  afterEach(() => hub.close());

  async function subscribe(s: RecordingSession, topic: string, recover = false, since?: StreamPosition, tenant = 't'): Promise<AckBody> {
    const ack = await hub.subscribe(s, tenant, topic, recover, since);
    s.send({ id: 1, ack }); // as the router does, in the same microtask run
    return ack;
  }

  it('hands each event to the fan-out once, whatever the number of local subscribers', async () => {
    const a = new RecordingSession(fanout);
    const b = new RecordingSession(fanout);
    await subscribe(a, 'news');
    await subscribe(b, 'news');
    for (let i = 0; i < 3; i++) await hub.publish('t', 'news', text(`n${i}`), 'text/plain');
    await tick();
    expect(fanout.published.map((p) => p.key)).toEqual([topicKey('t', 'news'), topicKey('t', 'news'), topicKey('t', 'news')]);
    expect(a.eventTexts()).toEqual(['n0', 'n1', 'n2']);
    expect(b.eventTexts()).toEqual(['n0', 'n1', 'n2']);
    expect(fanout.published.every((p) => 'event' in p.frame && p.frame.id === 0 && p.frame.event.topic === 'news')).toBe(true);
  });

  it('counts publishes by entry path, and events received and delivered by kind', async () => {
    const registry = new Registry();
    const h = new EventsHub(new MemoryBus(), fanout, { history: HistoryPolicy.parse(['rooms/*=10:1h']), log: silentLogger(), metrics: new BusMetrics(registry) });
    const a = new RecordingSession(fanout);
    const b = new RecordingSession(fanout);
    await h.subscribe(a, 't', 'news', false, undefined);
    await h.subscribe(b, 't', 'news', false, undefined);
    await h.subscribe(a, 't', 'rooms/1', false, undefined);
    await h.publish('t', 'news', text('1'), '', { source: 'ws' });
    await h.publish('t', 'news', text('2'), '', { source: 'http' });
    await h.publish('t', 'rooms/1', text('3'), '', { source: 'ws' });
    await tick();
    const value = async (name: string, labels: Record<string, string>): Promise<number> => {
      const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
      return Number(metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0);
    };
    expect(await value('relaygate_events_published_total', { source: 'ws' })).toBe(2);
    expect(await value('relaygate_events_published_total', { source: 'http' })).toBe(1);
    expect(await value('relaygate_events_received_total', { kind: 'plain' })).toBe(2);
    expect(await value('relaygate_events_received_total', { kind: 'history' })).toBe(1);
    expect(await value('relaygate_events_delivered_total', { kind: 'plain' })).toBe(4);
    expect(await value('relaygate_events_delivered_total', { kind: 'history' })).toBe(1);
    // A second scrape adds only what happened since the first.
    await h.publish('t', 'news', text('4'), '', { source: 'ws' });
    await tick();
    expect(await value('relaygate_events_published_total', { source: 'ws' })).toBe(3);
    expect(await value('relaygate_events_published_total', { source: 'http' })).toBe(1);
    expect(await value('relaygate_events_received_total', { kind: 'plain' })).toBe(3);
    expect(await value('relaygate_events_delivered_total', { kind: 'plain' })).toBe(6);
    expect(await value('relaygate_events_delivered_total', { kind: 'history' })).toBe(1);
    expect(await value('relaygate_subscriptions', {})).toBe(3);
    h.dropSession(a);
    expect(await value('relaygate_subscriptions', {})).toBe(1);
    await h.close();
  });

  it('keeps tenants apart and stops listening when the last local subscriber leaves', async () => {
    const a = new RecordingSession(fanout);
    const b = new RecordingSession(fanout);
    await subscribe(a, 'news', false, undefined, 'acme');
    await subscribe(b, 'news', false, undefined, 'acme');
    await hub.publish('globex', 'news', text('other tenant'), '');
    hub.unsubscribe(a, 'acme', 'news');
    await hub.publish('acme', 'news', text('b only'), '');
    await tick();
    hub.dropSession(b);
    await hub.publish('acme', 'news', text('nobody'), '');
    await tick();
    expect(a.eventTexts()).toEqual([]);
    expect(b.eventTexts()).toEqual(['b only']);
    expect(fanout.published).toHaveLength(1);
  });

  it('answers Subscribe on a history topic with the stream top', async () => {
    await hub.publish('t', 'rooms/1', text('x'), '');
    const p2 = await hub.publish('t', 'rooms/1', text('y'), '');
    const s = new RecordingSession(fanout);
    const ack = await subscribe(s, 'rooms/1');
    expect(ack).toEqual({ position: p2 });
    expect(s.eventTexts()).toEqual([]);
  });

  it('replays what was missed, then the Ack, then live events', async () => {
    const positions: StreamPosition[] = [];
    for (let i = 1; i <= 5; i++) positions.push((await hub.publish('t', 'rooms/a', text(`r${i}`), ''))!);
    const s = new RecordingSession(fanout);
    const ack = await subscribe(s, 'rooms/a', true, positions[1]);
    expect(ack).toEqual({ position: positions[4], replayed: 3, recovered: true });
    await hub.publish('t', 'rooms/a', text('r6'), '');
    await tick();
    expect(s.kinds()).toEqual(['event', 'event', 'event', 'ack', 'event']);
    expect(s.eventTexts()).toEqual(['r3', 'r4', 'r5', 'r6']);
    const offsets = s.frames.flatMap((f) => ('event' in f ? [f.event.position!.offset] : []));
    expect(offsets).toEqual([3, 4, 5, 6]);
  });

  it('loses and repeats nothing published while the history read is in flight', async () => {
    for (let i = 1; i <= 2; i++) await hub.publish('t', 'rooms/b', text(`r${i}`), '');
    const s = new RecordingSession(fanout);
    bus.beforeRead = async () => {
      for (let i = 3; i <= 5; i++) await hub.publish('t', 'rooms/b', text(`r${i}`), '');
      await tick();
    };
    const ack = await subscribe(s, 'rooms/b', true, { offset: 0, epoch: '' });
    await hub.publish('t', 'rooms/b', text('r6'), '');
    await tick();
    expect(s.eventTexts()).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    expect(ack).toMatchObject({ replayed: 5, recovered: true, position: { offset: 5 } });
  });

  it('without recover, events published during the read precede the Ack position and are not sent', async () => {
    await hub.publish('t', 'rooms/c', text('r1'), '');
    const s = new RecordingSession(fanout);
    bus.beforeRead = async () => {
      await hub.publish('t', 'rooms/c', text('r2'), '');
      await tick();
    };
    const ack = await subscribe(s, 'rooms/c');
    await hub.publish('t', 'rooms/c', text('r3'), '');
    await tick();
    expect(ack.position!.offset).toBe(2);
    expect(s.eventTexts()).toEqual(['r3']);
  });

  it('says recovered false when the position is older than the history holds, yet replays what it holds', async () => {
    const first = await hub.publish('t', 'feeds/x', text('f1'), '');
    for (let i = 2; i <= 6; i++) await hub.publish('t', 'feeds/x', text(`f${i}`), '');
    const s = new RecordingSession(fanout);
    const ack = await subscribe(s, 'feeds/x', true, first);
    expect(ack).toMatchObject({ replayed: 3, recovered: false, position: { offset: 6 } });
    expect(s.eventTexts()).toEqual(['f4', 'f5', 'f6']);
  });

  it('says recovered false and replays nothing for a position of another epoch', async () => {
    await hub.publish('t', 'feeds/y', text('f1'), '');
    const s = new RecordingSession(fanout);
    const ack = await subscribe(s, 'feeds/y', true, { offset: 1, epoch: 'another' });
    expect(ack).toMatchObject({ replayed: 0, recovered: false, position: { offset: 1 } });
    expect(s.eventTexts()).toEqual([]);
  });

  it('recovers nothing on a topic without history: recovered false', async () => {
    await hub.publish('t', 'plain', text('gone'), '');
    const s = new RecordingSession(fanout);
    expect(await subscribe(s, 'plain', true, undefined)).toEqual({ position: undefined, replayed: 0, recovered: false });
  });

  it('keeps job topics in history when published as jobs', async () => {
    const pos = await hub.publish('t', 'jobs/42', text('progress'), '', { job: true });
    expect(pos).toMatchObject({ offset: 1 });
    expect(await hub.publish('t', 'jobs/43', text('not a job'), '')).toBeUndefined();
    const s = new RecordingSession(fanout);
    const ack = await subscribe(s, 'jobs/42', true, undefined);
    expect(ack).toMatchObject({ replayed: 1, recovered: true });
    expect(s.eventTexts()).toEqual(['progress']);
  });

  it('closes the live sessions of a topic with 4010 when its offsets skip, and only those', async () => {
    const p = (await hub.publish('t', 'rooms/g', text('1'), ''))!;
    const a = new RecordingSession(fanout);
    const other = new RecordingSession(fanout);
    await subscribe(a, 'rooms/g');
    await subscribe(other, 'rooms/h');
    const event = (offset: number): EventBody => ({ topic: 'rooms/g', payload: text(String(offset)), publishedMs: 0, position: { offset, epoch: p.epoch } });
    hub.onEvent('t', 'rooms/g', event(2));
    expect(a.closedWith).toBeUndefined();
    hub.onEvent('t', 'rooms/g', event(2)); // a repeat is dropped, not delivered twice
    expect(a.eventTexts()).toEqual(['2']);
    hub.onEvent('t', 'rooms/g', event(4));
    expect(a.closedWith).toBe(Close.BUS_GAP);
    expect(other.closedWith).toBeUndefined();
  });

  it('takes a new epoch starting at 1 as an expired stream, unless the bus broke since: then as a gap', async () => {
    const p = (await hub.publish('t', 'rooms/e', text('1'), ''))!;
    const a = new RecordingSession(fanout);
    await subscribe(a, 'rooms/e');
    const fresh = (epoch: string, offset = 1): EventBody => ({ topic: 'rooms/e', payload: text(epoch), publishedMs: 0, position: { offset, epoch } });
    hub.onEvent('t', 'rooms/e', fresh('second'));
    expect(a.closedWith).toBeUndefined();
    expect(a.eventTexts()).toEqual(['second']);
    hub.onEvent('t', 'rooms/e', fresh('third', 2)); // another epoch not starting at 1
    expect(a.closedWith).toBe(Close.BUS_GAP);

    const b = new RecordingSession(fanout);
    await subscribe(b, 'rooms/e');
    hub.onBreak();
    hub.onEvent('t', 'rooms/e', fresh('after a restart'));
    expect(b.closedWith).toBe(Close.BUS_GAP);
    void p;
  });

  it('closes live history subscriptions with 4010 on resync when the stream moved on meanwhile', async () => {
    await hub.publish('t', 'rooms/r', text('1'), '');
    const a = new RecordingSession(fanout);
    await subscribe(a, 'rooms/r');
    const quiet = new RecordingSession(fanout);
    await subscribe(quiet, 'rooms/q');
    await hub.publish('t', 'rooms/q', text('q1'), '');
    await tick();
    // Events appended while this instance was not listening:
    bus.unsubscribe('t', 'rooms/r');
    await hub.publish('t', 'rooms/r', text('2'), '');
    await bus.subscribe('t', 'rooms/r');
    hub.onResync([{ tenant: 't', topic: 'rooms/r' }, { tenant: 't', topic: 'rooms/q' }]);
    await tick();
    expect(a.closedWith).toBe(Close.BUS_GAP);
    expect(quiet.closedWith).toBeUndefined();
  });

  it('a session closed by its own replay (slow consumer) is dropped, and the topic released', async () => {
    for (let i = 1; i <= 3; i++) await hub.publish('t', 'rooms/slow', text(`r${i}`), '');
    const s = new RecordingSession(fanout);
    let sent = 0;
    s.send = (frame) => {
      if (++sent === 2) {
        s.close(Close.SLOW_CONSUMER);
        hub.dropSession(s); // as the router does when the transport reports the close
        return false;
      }
      s.frames.push(frame);
      return true;
    };
    await hub.subscribe(s, 't', 'rooms/slow', true, { offset: 0, epoch: '' });
    expect(fanout.subscriberCount(topicKey('t', 'rooms/slow'))).toBe(0);
    await hub.publish('t', 'rooms/slow', text('r4'), '');
    await tick();
    expect(fanout.published.filter((p) => p.key === topicKey('t', 'rooms/slow'))).toHaveLength(0);
  });

  it('a subscription whose session left during the bus round trip never joins', async () => {
    const s = new RecordingSession(fanout);
    const pending = hub.subscribe(s, 't', 'rooms/z', false, undefined);
    hub.dropSession(s);
    await pending;
    expect(fanout.subscriberCount(topicKey('t', 'rooms/z'))).toBe(0);
  });

  it('rejects a subscribe with UNAVAILABLE when the bus cannot subscribe, leaving no trace', async () => {
    const failing = new (class extends MemoryBus {
      override async subscribe(): Promise<void> {
        throw new Error('link down');
      }
    })();
    const h = new EventsHub(failing, fanout, { history: HistoryPolicy.parse(undefined), log: silentLogger() });
    const s = new RecordingSession(fanout);
    await expect(h.subscribe(s, 't', 'x', false, undefined)).rejects.toMatchObject({ code: 14 });
    expect(fanout.subscriberCount(topicKey('t', 'x'))).toBe(0);
    await h.close();
  });
});

describe('HistoryPolicy', () => {
  it('matches patterns in grant syntax, first rule wins', () => {
    const p = HistoryPolicy.parse(['resources/*/live=10:1m', 'resources/**=1000:1h', 'exact=5:10s'], '7:2m');
    const r = (t: string): HistoryRetention | undefined => p.retentionFor(t);
    expect(r('resources/a/live')).toEqual({ size: 10, ttlMs: 60_000 });
    expect(r('resources/a/b/c')).toEqual({ size: 1000, ttlMs: 3_600_000 });
    expect(r('resources')).toBeUndefined();
    expect(r('exact')).toEqual({ size: 5, ttlMs: 10_000 });
    expect(r('exact/more')).toBeUndefined();
    expect(p.job).toEqual({ size: 7, ttlMs: 120_000 });
  });

  it.each([
    ['resources/**', 'expected pattern=size:ttl'],
    ['a/**/b=1:1m', '"**" may only end'],
    ['a=0:1m', 'history size'],
    ['a=10:soon', 'history ttl'],
    ['a=10:10ms', 'history ttl'],
    ['a b=1:1m', 'bad segment'],
  ])('rejects %s naming the setting', (entry, problem) => {
    expect(() => HistoryPolicy.parse([entry])).toThrow(new RegExp(`^RELAYGATE_HISTORY: .*${problem.replace(/[*]/g, '\\*')}`));
  });

  it('rejects a bad RELAYGATE_JOB_HISTORY', () => {
    expect(() => HistoryPolicy.parse(undefined, '64')).toThrow(/^RELAYGATE_JOB_HISTORY: /);
  });
});
