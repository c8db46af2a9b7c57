import { describe, expect, it } from 'vitest';
import type { HistoryState } from '../../src/bus/bus.js';
import { planJoin } from '../../src/bus/recovery.js';
import type { EventBody } from '../../src/protocol/frames.js';

const E = 'ep0';
const ev = (offset: number, epoch = E): EventBody => ({ topic: 't', payload: Buffer.from(`e${offset}`), publishedMs: 0, position: { offset, epoch } });
const raw = (text: string): EventBody => ({ topic: 't', payload: Buffer.from(text), publishedMs: 0 });
const state = (top: number, held: number[], epoch = E): HistoryState => ({ epoch, top, events: held.map((o) => ev(o, epoch)) });
const offsets = (events: EventBody[]): Array<number | string> => events.map((e) => e.position?.offset ?? Buffer.from(e.payload).toString());

describe('planJoin', () => {
  it('without recover: no replay, the Ack names the newest position seen', () => {
    expect(planJoin(state(5, []), [], false, undefined, true)).toEqual({ replay: [], ack: { position: { offset: 5, epoch: E } } });
    expect(planJoin(state(5, []), [ev(5), ev(6)], false, undefined, true).ack).toEqual({ position: { offset: 6, epoch: E } });
    expect(planJoin(state(0, [], ''), [], false, undefined, true)).toEqual({ replay: [], ack: {} });
    // A stream born while the read was in flight.
    expect(planJoin(state(0, [], ''), [ev(1, 'new')], false, undefined, true).ack).toEqual({ position: { offset: 1, epoch: 'new' } });
  });

  it.each([
    ['clean resume', state(5, [3, 4, 5]), [], { offset: 2, epoch: E }, [3, 4, 5], true, 5],
    ['nothing missed', state(5, [3, 4, 5]), [], { offset: 5, epoch: E }, [], true, 5],
    ['trimmed', state(9, [5, 6, 7, 8, 9]), [], { offset: 2, epoch: E }, [5, 6, 7, 8, 9], false, 9],
    ['from the start, all held', state(3, [1, 2, 3]), [], undefined, [1, 2, 3], true, 3],
    ['from the start, head trimmed', state(4, [2, 3, 4]), [], undefined, [2, 3, 4], false, 4],
    ['captured overlap deduplicated', state(4, [3, 4]), [ev(4), ev(5), ev(6)], { offset: 2, epoch: E }, [3, 4, 5, 6], true, 6],
    ['captured hole', state(4, [3, 4]), [ev(6)], { offset: 2, epoch: E }, [3, 4, 6], false, 6],
    ['raw captured events kept in arrival order', state(3, [3]), [raw('r1'), ev(4)], { offset: 2, epoch: E }, [3, 'r1', 4], true, 4],
    ['other epoch', state(3, [1, 2, 3]), [], { offset: 2, epoch: 'old' }, [], false, 3],
    ['position ahead of the stream', state(3, [1, 2, 3]), [], { offset: 7, epoch: E }, [], false, 3],
    ['held events end before the top', state(6, [3, 4]), [], { offset: 2, epoch: E }, [3, 4], false, 6],
  ] as const)('%s', (_name, history, captured, since, replayed, recovered, top) => {
    const plan = planJoin(history, [...captured], true, since, true);
    expect(offsets(plan.replay)).toEqual(replayed);
    expect(plan.ack).toEqual({ position: { offset: top, epoch: E }, replayed: replayed.length, recovered });
  });

  it('an empty stream proves nothing was lost only on a topic configured to keep history', () => {
    expect(planJoin(state(0, [], ''), [], true, undefined, true).ack).toEqual({ position: undefined, replayed: 0, recovered: true });
    expect(planJoin(state(0, [], ''), [], true, undefined, false).ack).toEqual({ position: undefined, replayed: 0, recovered: false });
  });
});
