// The benchmark harness's own logic: how loads are split, how a publisher is paced, how gaps in
// deliveries are counted, and how a case is judged saturated.
import { describe, expect, it } from 'vitest';
import { Histogram } from '../../bench/lib/histogram.js';
import { saturation, type ProcessCpu } from '../../bench/lib/measure.js';
import { DeliveryTracker, PublishPacer, stampedPayload } from '../../bench/load/fanout-payload.js';
import { loopbackSources, sourcesFor } from '../../bench/load/role.js';
import { split } from '../../bench/scenarios/common.js';

describe('split', () => {
  it.each([[10, 3, [4, 3, 3]], [2, 4, [1, 1]], [19_500, 2, [9750, 9750]], [1, 1, [1]]])('splits %i over %i workers as %j', (total, parts, want) => {
    expect(split(total, parts)).toEqual(want);
  });
});

describe('loopback sources', () => {
  it('binds no source address below 25,000 connections per server port, and one per 25,000 above', () => {
    expect(sourcesFor(19_500)).toBe(0);
    expect(sourcesFor(60_000)).toBe(3);
    expect(loopbackSources(0)).toEqual([undefined]);
    expect(loopbackSources(2)).toEqual(['127.0.0.1', '127.0.0.2']);
  });
});

describe('DeliveryTracker', () => {
  const meter = (): { ops: number; lost: number; histogram: Histogram } => ({ ops: 0, lost: 0, histogram: new Histogram() });
  const deliver = (t: DeliveryTracker, conn: number, seq: number): void => {
    const p = stampedPayload(64, seq);
    t.delivered(conn, p, 0, p.length, Number(process.hrtime.bigint()) / 1000 + 50);
  };

  it('counts deliveries, latency and every sequence gap per connection', () => {
    const m = meter();
    const t = new DeliveryTracker(2, m);
    for (const seq of [1, 2, 5, 6]) deliver(t, 0, seq); // 3 and 4 lost
    for (const seq of [1, 2, 3]) deliver(t, 1, seq);
    expect(m.ops).toBe(7);
    expect(m.lost).toBe(2);
    expect(m.histogram.total).toBe(7);
    expect(m.histogram.min).toBeGreaterThanOrEqual(50);
    expect(t.progress()).toBe(3); // the slowest connection has seen 3
    expect(t.progress()).toBeUndefined(); // unchanged since the last report
  });
});

describe('PublishPacer', () => {
  it('keeps at most `window` unacknowledged and never runs `maxLag` ahead of the slowest subscriber', () => {
    const p = new PublishPacer(4, 6);
    let sent = 0;
    while (p.canSend()) { p.sent(); p.inFlight++; sent++; }
    expect(sent).toBe(4);
    p.inFlight = 0; // all acked
    while (p.canSend()) { p.sent(); p.inFlight++; }
    expect(p.seq).toBe(6); // the lag bound stops it
    p.slowest = 5;
    p.inFlight = 0;
    expect(p.canSend()).toBe(true);
  });

  it('with a rate, sends only on credit', () => {
    const p = new PublishPacer(16, 1000, 100);
    expect(p.canSend()).toBe(false);
  });
});

describe('saturation', () => {
  const cpu = (name: string, role: 'server' | 'client', pct: number): ProcessCpu => ({ name, role, pct, usPerOp: 1 });

  it('names the saturated server, flags a saturated load generator, and reports a busy machine', () => {
    expect(saturation([cpu('gateway', 'server', 97), cpu('client', 'client', 40)], 70, 5, 2)).toBe('server-bound: gateway 97%; load generator 40% of a core in total');
    expect(saturation([cpu('gateway', 'server', 60), cpu('client-1', 'client', 92)], 95, 10, 2))
      .toBe('CLIENT-BOUND: client-1 92%; all 2 cores busy (95%; other processes 10%); load generator 92% of a core in total');
    expect(saturation([cpu('gateway', 'server', 30)], 40, 0, 2)).toBe('no process saturated; machine 40% busy; load generator 0% of a core in total');
  });
});
