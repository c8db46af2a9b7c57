// The benchmark's load generator speaks the wire protocol with its own minimal encoder and
// scanner (so it costs less than the gateway it measures); these tests hold it to the product's codec.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { Histogram } from '../../bench/lib/histogram.js';
import { monoUs } from '../../bench/lib/meter.js';
import {
  FrameReader, FrameTemplate, MAX_ID, MIN_ID, Opcode, ServerKind, findBytesField, findVarintField, invokeFrame, maskedFrame, publishFrame,
  scanServerFrame, subscribeFrame, type ServerFrameScan,
} from '../../bench/lib/wire.js';
import { decodeClientFrame, encodeServerFrame } from '../../src/protocol/codec.js';

function unmask(frame: Buffer): { opcode: number; payload: Buffer } {
  const len7 = frame[1]! & 0x7f;
  const hl = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
  const len = len7 < 126 ? len7 : len7 === 126 ? frame.readUInt16BE(2) : Number(frame.readBigUInt64BE(2));
  const mask = frame.subarray(hl, hl + 4);
  const payload = Buffer.alloc(len);
  for (let i = 0; i < len; i++) payload[i] = frame[hl + 4 + i]! ^ mask[i & 3]!;
  expect(frame[1]! & 0x80).toBe(0x80);
  expect(frame.length).toBe(hl + 4 + len);
  return { opcode: frame[0]! & 0x0f, payload };
}

const scan = (): ServerFrameScan => ({ id: 0, kind: 0, bodyStart: 0, bodyEnd: 0 });

describe('bench wire: client frames', () => {
  it.each([0, 64, 125, 126, 16 * 1024, 70_000])('an Invoke template with a %i-byte payload decodes with every patched id', (size) => {
    const payload = Buffer.alloc(size, 7);
    const template = new FrameTemplate(invokeFrame('echo', payload), Buffer.from([0x12, 0x34, 0x56, 0x78]));
    for (const id of [MIN_ID, 300, 9999, MAX_ID]) {
      const out = Buffer.alloc(template.length * 2);
      expect(template.writeTo(out, template.length, id)).toBe(out.length);
      const { opcode, payload: bytes } = unmask(out.subarray(template.length));
      expect(opcode).toBe(Opcode.binary);
      const frame = decodeClientFrame(bytes);
      expect(frame).toMatchObject({ id, kind: 'invoke', invoke: { function: 'echo' } });
      if (frame.kind === 'invoke') expect(Buffer.from(frame.invoke.payload).equals(payload)).toBe(true);
    }
  });

  it('Subscribe and Publish frames decode as the gateway reads them', () => {
    expect(decodeClientFrame(unmask(maskedFrame(Opcode.binary, subscribeFrame('bench/fanout'), Buffer.from([1, 2, 3, 4]))).payload))
      .toMatchObject({ id: MIN_ID, kind: 'subscribe', topic: 'bench/fanout' });
    const p = decodeClientFrame(publishFrame('bench/x', Buffer.from('hello')));
    expect(p).toMatchObject({ id: MIN_ID, kind: 'publish', topic: 'bench/x' });
    if (p.kind === 'publish') expect(Buffer.from(p.payload).toString()).toBe('hello');
  });
});

describe('bench wire: server frames', () => {
  it('scans id, kind and bodies of frames the product encodes', () => {
    const s = scan();
    const result = Buffer.from(encodeServerFrame({ id: 4242, result: { payload: new Uint8Array([1, 2, 3]), nodeId: 'n1' } }));
    expect(scanServerFrame(result, 0, result.length, s)).toBe(true);
    expect([s.id, s.kind]).toEqual([4242, ServerKind.result]);
    const [ps, pe] = findBytesField(result, s.bodyStart, s.bodyEnd, 1)!;
    expect([...result.subarray(ps, pe)]).toEqual([1, 2, 3]);

    const error = Buffer.from(encodeServerFrame({ id: 9, error: { code: 8, message: 'busy', retryAfterMs: 100 } }));
    expect(scanServerFrame(error, 0, error.length, s)).toBe(true);
    expect([s.id, s.kind, findVarintField(error, s.bodyStart, s.bodyEnd, 1)]).toEqual([9, ServerKind.error, 8]);

    const payload = Buffer.alloc(12);
    payload.writeDoubleLE(123.5, 0);
    payload.writeUInt32LE(77, 8);
    const event = Buffer.concat([Buffer.from('junk'), Buffer.from(encodeServerFrame({ id: 0, event: { topic: 'bench/t', payload, publishedMs: 5 } }))]);
    expect(scanServerFrame(event, 4, event.length, s)).toBe(true);
    expect([s.id, s.kind]).toEqual([0, ServerKind.event]);
    const [a, b] = findBytesField(event, s.bodyStart, s.bodyEnd, 2)!;
    expect(event.readDoubleLE(a)).toBe(123.5);
    expect(event.readUInt32LE(a + 8)).toBe(77);
    expect(b - a).toBe(12);
  });

  it('rejects truncated frames instead of reading past them', () => {
    const result = Buffer.from(encodeServerFrame({ id: 300, result: { payload: new Uint8Array(50) } }));
    expect(scanServerFrame(result, 0, result.length - 10, scan())).toBe(false);
  });
});

function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const hl = payload.length < 126 ? 2 : payload.length < 65536 ? 4 : 10;
  const out = Buffer.alloc(hl + payload.length);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (hl === 2) out[1] = payload.length;
  else if (hl === 4) { out[1] = 126; out.writeUInt16BE(payload.length, 2); }
  else { out[1] = 127; out.writeBigUInt64BE(BigInt(payload.length), 2); }
  payload.copy(out, hl);
  return out;
}

describe('bench wire: FrameReader', () => {
  const messages = [Buffer.from('a'), Buffer.alloc(200, 2), Buffer.alloc(70_000, 3), Buffer.alloc(0)];
  const stream = Buffer.concat([
    serverFrame(Opcode.binary, messages[0]!),
    serverFrame(Opcode.ping, Buffer.from('p')),
    serverFrame(Opcode.binary, messages[1]!),
    serverFrame(Opcode.binary, messages[2]!.subarray(0, 30_000), false),
    serverFrame(Opcode.continuation, messages[2]!.subarray(30_000)),
    serverFrame(Opcode.text, messages[3]!),
  ]);

  it.each([1, 2, 3, 7, 100, 4096, stream.length])('hands out every message whole when the stream arrives in %i-byte reads', (chunk) => {
    const seen: Array<[number, Buffer]> = [];
    const reader = new FrameReader((op, buf, start, end) => seen.push([op, Buffer.from(buf.subarray(start, end))]), (why) => { throw new Error(why); });
    for (let i = 0; i < stream.length; i += chunk) reader.push(stream.subarray(i, i + chunk));
    expect(seen.map(([op]) => op)).toEqual([Opcode.binary, Opcode.ping, Opcode.binary, Opcode.binary, Opcode.text]);
    expect(seen[0]![1].equals(messages[0]!)).toBe(true);
    expect(seen[2]![1].equals(messages[1]!)).toBe(true);
    expect(seen[3]![1].equals(messages[2]!)).toBe(true);
    expect(seen[4]![1].length).toBe(0);
  });

  it('reports a masked server frame as a protocol error', () => {
    const errors: string[] = [];
    new FrameReader(() => {}, (why) => errors.push(why)).push(Buffer.from([0x82, 0x81, 0, 0, 0, 0, 1]));
    expect(errors).toEqual(['masked server frame']);
  });
});

describe('bench histogram', () => {
  it('percentiles stay within 1.6 % of the exact value, and merge like one histogram', () => {
    const values = Array.from({ length: 20_000 }, (_, i) => Math.round(10 + ((i * 7919) % 20_000) ** 1.3));
    const a = new Histogram();
    const b = new Histogram();
    values.forEach((v, i) => (i % 2 ? a : b).record(v));
    const merged = Histogram.from([a.toData(), b.toData()]);
    const sorted = [...values].sort((x, y) => x - y);
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const exact = sorted[Math.ceil(q * sorted.length) - 1]!;
      expect(Math.abs(merged.percentile(q) - exact) / exact).toBeLessThan(0.016);
    }
    expect(merged.total).toBe(values.length);
    expect(merged.max).toBe(sorted.at(-1));
    expect(merged.min).toBe(sorted[0]);
  });
});

describe('bench clock', () => {
  it('monoUs agrees across processes: a child reads a time between the parent\'s readings around its run', () => {
    const script = `process.stdout.write(String(Number(process.hrtime.bigint()) / 1000))`;
    // The child reads the clock the way monoUs does; the parent brackets the whole run.
    const before = monoUs();
    const child = Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
    const after = monoUs();
    expect(child).toBeGreaterThan(before);
    expect(child).toBeLessThan(after);
    // It is the monotonic clock itself, not an estimate of it: no per-process offset error.
    const a = monoUs();
    const h = Number(process.hrtime.bigint()) / 1000;
    const b = monoUs();
    expect(h).toBeGreaterThanOrEqual(a);
    expect(h).toBeLessThanOrEqual(b);
  });
});
