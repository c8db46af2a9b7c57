import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameParser, FramingError, TurnBatch, varintSize } from '../../src/protocol/link-framing.js';

function prefixed(frames: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const header: number[] = [];
    let n = f.length;
    while (n >= 0x80) { header.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
    header.push(n);
    parts.push(Buffer.from(header), f);
  }
  return Buffer.concat(parts);
}

function split(stream: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) { chunks.push(stream.subarray(from, p)); from = p; }
  chunks.push(stream.subarray(from));
  return chunks;
}

describe('FrameParser', () => {
  it('reassembles any sequence of frames however the stream is cut', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (frames, cuts) => {
        const bufs = frames.map((f) => Buffer.from(f));
        const got: Buffer[] = [];
        const parser = new FrameParser(1024, (f) => got.push(Buffer.from(f)));
        for (const chunk of split(prefixed(bufs), cuts)) parser.push(chunk);
        expect(got).toEqual(bufs);
        expect(parser.pendingBytes).toBe(0);
      },
    ));
  });

  it('hands out frames within one chunk as views, without copying', () => {
    const stream = prefixed([Buffer.from('abc'), Buffer.from('defg')]);
    const seen: Buffer[] = [];
    new FrameParser(100, (f) => seen.push(f)).push(stream);
    expect(seen.map((f) => f.toString())).toEqual(['abc', 'defg']);
    expect(seen[0]!.buffer).toBe(stream.buffer);
  });

  it('accepts a frame of exactly the limit and rejects one byte more, before buffering it', () => {
    const ok: Buffer[] = [];
    new FrameParser(200, (f) => ok.push(f)).push(prefixed([Buffer.alloc(200, 1)]));
    expect(ok).toHaveLength(1);
    const parser = new FrameParser(200, () => { throw new Error('no frame expected'); });
    // Only the length prefix of the oversized frame arrives: refused at once.
    expect(() => parser.push(prefixed([Buffer.alloc(201)]).subarray(0, 2))).toThrow(FramingError);
    expect(() => parser.push(Buffer.from([0]))).toThrow(/already failed/);
  });

  it('rejects a length prefix longer than five bytes', () => {
    const parser = new FrameParser(1 << 30, () => {});
    expect(() => parser.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(/longer than 5 bytes/);
  });

  it('waits for a length prefix split across chunks', () => {
    const got: string[] = [];
    const parser = new FrameParser(1 << 20, (f) => got.push(f.toString()));
    const stream = prefixed([Buffer.alloc(300, 'x'), Buffer.from('y')]);
    parser.push(stream.subarray(0, 1));
    expect(parser.pendingBytes).toBe(1);
    parser.push(stream.subarray(1, 2));
    parser.push(stream.subarray(2));
    expect(got).toEqual(['x'.repeat(300), 'y']);
  });

  it('varintSize gives the length of the prefix', () => {
    const table: [number, number][] = [[0, 1], [127, 1], [128, 2], [16383, 2], [16384, 3], [2 ** 21 - 1, 3], [2 ** 21, 4], [2 ** 28, 5], [2 ** 32 - 1, 5]];
    for (const [n, size] of table) expect(varintSize(n)).toBe(size);
  });
});

describe('TurnBatch', () => {
  function manualScheduler(): { run: () => void; schedule: (fn: () => void) => void; pending: () => number } {
    const queue: (() => void)[] = [];
    return {
      schedule: (fn) => { queue.push(fn); },
      run: () => { for (const fn of queue.splice(0)) fn(); },
      pending: () => queue.length,
    };
  }

  it('flushes everything pushed in one turn with a single flush call', () => {
    const s = manualScheduler();
    const flushed: number[][] = [];
    const batch = new TurnBatch<number>((items) => flushed.push(items), s.schedule);
    batch.push(1); batch.push(2); batch.push(3);
    expect(s.pending()).toBe(1);
    s.run();
    expect(flushed).toEqual([[1, 2, 3]]);
    batch.push(4);
    s.run();
    expect(flushed).toEqual([[1, 2, 3], [4]]);
  });

  it('keeps items queued while paused and tells which never left', () => {
    const s = manualScheduler();
    const flushed: string[][] = [];
    const batch = new TurnBatch<string>((items) => flushed.push(items), s.schedule);
    batch.pause();
    batch.push('a'); batch.push('b');
    s.run();
    expect(flushed).toEqual([]);
    expect(batch.has('a')).toBe(true);
    expect(batch.remove('a')).toBe(true);
    expect(batch.remove('a')).toBe(false);
    batch.resume();
    s.run();
    expect(flushed).toEqual([['b']]);
    expect(batch.has('b')).toBe(false);
  });

  it('takeAll empties the queue without flushing', () => {
    const s = manualScheduler();
    const flushed: number[][] = [];
    const batch = new TurnBatch<number>((items) => flushed.push(items), s.schedule);
    batch.push(1); batch.push(2);
    expect(batch.takeAll()).toEqual([1, 2]);
    s.run();
    expect(flushed).toEqual([]);
    expect(batch.size).toBe(0);
  });

  it('uses setImmediate by default: one flush per event-loop turn', async () => {
    const flushed: number[][] = [];
    const batch = new TurnBatch<number>((items) => flushed.push(items));
    batch.push(1);
    await Promise.resolve();
    batch.push(2);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(flushed).toEqual([[1, 2]]);
  });
});
