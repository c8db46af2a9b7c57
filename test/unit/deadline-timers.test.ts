import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeadlineTimers } from '../../src/timing/deadline-timers.js';
import { InvocationSignal } from '../../src/router/invoke.js';

class Item {
  expired = 0;
  constructor(readonly name: string) {}
  expire(): void {
    this.expired++;
  }
}

describe('DeadlineTimers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires each item once, within one tick after its deadline and never before', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const timers = new DeadlineTimers<Item>(50);
    const a = new Item('a');
    const b = new Item('b');
    const c = new Item('c');
    timers.add(b, 1_000_230);
    timers.add(a, 1_000_100);
    timers.add(c, 1_005_000);
    vi.advanceTimersByTime(99);
    expect(a.expired).toBe(0);
    vi.advanceTimersByTime(1 + 50);
    expect(a.expired).toBe(1);
    expect(b.expired).toBe(0);
    vi.advanceTimersByTime(130);
    expect(b.expired).toBe(1);
    expect(timers.size).toBe(1);
    vi.advanceTimersByTime(10_000);
    expect([a.expired, b.expired, c.expired]).toEqual([1, 1, 1]);
    expect(timers.size).toBe(0);
  });

  it('a removed item never expires, and an empty set holds no timer', () => {
    vi.useFakeTimers({ now: 0 });
    const timers = new DeadlineTimers<Item>(50);
    const a = new Item('a');
    const b = new Item('b');
    const slotA = timers.add(a, 100);
    timers.add(b, 100);
    timers.remove(a, slotA);
    timers.remove(a, slotA); // twice is harmless
    vi.advanceTimersByTime(200);
    expect(a.expired).toBe(0);
    expect(b.expired).toBe(1);
    const c = new Item('c');
    timers.remove(c, timers.add(c, 500));
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an item added with an earlier deadline than every other re-arms the timer', () => {
    vi.useFakeTimers({ now: 0 });
    const timers = new DeadlineTimers<Item>(50);
    const late = new Item('late');
    const early = new Item('early');
    timers.add(late, 60_000);
    timers.add(early, 200);
    vi.advanceTimersByTime(250);
    expect(early.expired).toBe(1);
    expect(late.expired).toBe(0);
  });
});

describe('InvocationSignal', () => {
  it('calls each abort listener once (functions and handler objects), not after removal, and not when added late', () => {
    const signal = new InvocationSignal();
    const calls: string[] = [];
    const fn = (): void => { calls.push('fn'); };
    const obj = { handleEvent: (e: Event) => { calls.push(`obj:${e.type}`); } };
    const removed = (): void => { calls.push('removed'); };
    signal.addEventListener('abort', fn);
    signal.addEventListener('abort', fn); // the same listener twice counts once, as on an AbortSignal
    signal.addEventListener('abort', obj, { once: true });
    signal.addEventListener('abort', removed);
    signal.removeEventListener('abort', removed);
    expect(signal.aborted).toBe(false);
    signal.abort(new Error('why'));
    signal.abort(new Error('again'));
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('why');
    expect(calls).toEqual(['fn', 'obj:abort']);
    signal.addEventListener('abort', fn);
    expect(calls).toEqual(['fn', 'obj:abort']);
  });
});
