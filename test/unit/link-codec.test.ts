import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../src/protocol/codec.js';
import { decodeLinkFrame, encodeLinkBatch, encodeLinkChunks, encodeLinkFrame, linkFrameSizeBound, type LinkMessage } from '../../src/protocol/link-codec.js';
import { FrameParser } from '../../src/protocol/link-framing.js';

function roundTrip(frames: LinkMessage[]): LinkMessage[] {
  const out: LinkMessage[] = [];
  new FrameParser(1 << 20, (f) => out.push(decodeLinkFrame(f))).push(encodeLinkBatch(frames));
  return out;
}

describe('link codec', () => {
  it('round-trips every frame kind through one batch', () => {
    const frames: LinkMessage[] = [
      { id: 0, hello: { version: 1, nodeId: 'n1', functions: ['echo', 'sleep'], weight: 2.5, maxInFlight: 64, maxFrameBytes: 1024, gatewayId: '', draining: false } },
      { id: 7, request: { function: 'echo', payload: Buffer.from('hi'), contentType: 'text/plain', deadlineMs: 1500, subject: 'u1', tenant: 't', metadata: { a: '1', 'trace-id': 'x' }, requestId: 'r-7' } },
      { id: 7, progress: { fraction: 0.5, payload: Buffer.from('half') } },
      { id: 7, result: { payload: Buffer.from('done'), contentType: 'text/plain', nodeId: 'n1', durationMs: 12 } },
      { id: 8, error: { code: 8, message: 'busy', retryAfterMs: 250 } },
      { id: 9, cancel: {} },
      { id: 0, drain: { reason: 'shutting down' } },
      { id: 0, ping: { nonce: 42 } },
      { id: 0, pong: { nonce: 42 } },
    ];
    const got = roundTrip(frames);
    expect(got.map((f) => JSON.parse(JSON.stringify(f, (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString() : v))))).toEqual(
      JSON.parse(JSON.stringify(frames, (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString() : v))),
    );
  });

  it('fills defaults for absent fields', () => {
    const [req] = roundTrip([{ id: 1, request: { function: 'f', payload: Buffer.alloc(0), contentType: '', deadlineMs: 0, subject: '', tenant: '', metadata: {}, requestId: '' } }]);
    expect(req).toMatchObject({ id: 1, request: { function: 'f', contentType: '', deadlineMs: 0, metadata: {} } });
    expect((req as { request: { payload: Uint8Array } }).request.payload).toHaveLength(0);
    const [res] = roundTrip([{ id: 2, result: { payload: Buffer.alloc(0) } }]);
    expect(res).toMatchObject({ id: 2, result: { contentType: '', nodeId: '', durationMs: 0 } });
  });

  it('decodes payloads as views into the received bytes', () => {
    const bytes = encodeLinkFrame({ id: 3, result: { payload: Buffer.from('zero-copy') } });
    const body = bytes.subarray(1);
    const frame = decodeLinkFrame(body) as unknown as { result: { payload: Buffer } };
    expect(frame.result.payload.toString()).toBe('zero-copy');
    expect(frame.result.payload.buffer).toBe(body.buffer);
  });

  it('rejects garbage and bodiless frames with DecodeError', () => {
    expect(() => decodeLinkFrame(Buffer.from([0xff, 0xff, 0xff]))).toThrow(DecodeError);
    expect(() => decodeLinkFrame(Buffer.alloc(0))).toThrow(/no body/);
    expect(() => decodeLinkFrame(Buffer.from([0x08, 0x05]))).toThrow(/no body/);
  });

  it('keeps large ids and payloads intact', () => {
    const payload = Buffer.alloc(300_000, 7);
    const [f] = roundTrip([{ id: 0xffffffff, request: { function: 'echo', payload, contentType: '', deadlineMs: 2 ** 31, subject: '', tenant: '', metadata: {}, requestId: 'r' } }]);
    expect(f!.id).toBe(0xffffffff);
    expect((f as unknown as { request: { payload: Buffer } }).request.payload.equals(payload)).toBe(true);
    expect((f as { request: { deadlineMs: number } }).request.deadlineMs).toBe(2 ** 31);
  });

  it('sends large payloads as their own chunks, uncopied, and the stream still decodes to the same frames', () => {
    const big = Buffer.alloc(20_000, 9);
    const frames: LinkMessage[] = [
      { id: 0, ping: { nonce: 1 } },
      { id: 300, request: { function: 'echo', payload: big, contentType: 'x/y', deadlineMs: 5, subject: 's', tenant: 't', metadata: { k: 'v' }, requestId: 'r' } },
      { id: 301, result: { payload: big, contentType: 'a/b', nodeId: 'n', durationMs: 3 } },
      { id: 302, progress: { fraction: 0.25, payload: big } },
      { id: 303, result: { payload: Buffer.from('small') } },
    ];
    const chunks = encodeLinkChunks(frames, 8192);
    const direct = chunks.filter((c) => c.buffer === big.buffer);
    expect(direct).toHaveLength(3);
    const got: LinkMessage[] = [];
    const parser = new FrameParser(1 << 20, (f) => got.push(decodeLinkFrame(Buffer.from(f))));
    for (const c of chunks) parser.push(c);
    expect(got).toEqual(roundTrip(frames));
  });

  it('chunked and single-buffer encodings decode identically for any payload sizes and threshold', () => {
    const body = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a));
    const frame: fc.Arbitrary<LinkMessage> = fc.oneof(
      fc.record({ id: fc.integer({ min: 1, max: 2 ** 32 - 1 }), payload: body, fn: fc.string({ maxLength: 20 }) })
        .map(({ id, payload, fn }) => ({ id, request: { function: fn, payload, contentType: '', deadlineMs: 9, subject: '', tenant: 'x', metadata: {}, requestId: 'q' } })),
      fc.record({ id: fc.nat(), payload: body }).map(({ id, payload }) => ({ id, result: { payload, contentType: 'c', nodeId: '', durationMs: 0 } })),
      fc.record({ id: fc.nat(), payload: body, fraction: fc.double({ min: 0, max: 1, noNaN: true }) }).map(({ id, payload, fraction }) => ({ id, progress: { fraction, payload } })),
      fc.nat().map((nonce) => ({ id: 0, pong: { nonce } })),
    );
    fc.assert(fc.property(fc.array(frame, { maxLength: 12 }), fc.integer({ min: 0, max: 700 }), (frames, direct) => {
      const decode = (chunks: Buffer[]): LinkMessage[] => {
        const out: LinkMessage[] = [];
        const parser = new FrameParser(1 << 20, (f) => out.push(decodeLinkFrame(Buffer.from(f))));
        for (const c of chunks) parser.push(c);
        return out;
      };
      expect(decode(encodeLinkChunks(frames, direct))).toEqual(decode([encodeLinkBatch(frames)]));
    }));
  });

  it('linkFrameSizeBound never underestimates the encoded size', () => {
    const text = fc.string({ maxLength: 40, unit: 'binary' });
    const bytes = fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a));
    const frame: fc.Arbitrary<LinkMessage> = fc.oneof(
      fc.record({ id: fc.integer({ min: 0, max: 2 ** 32 - 1 }), fn: text, payload: bytes, ct: text, sub: text, ten: text, rid: text, md: fc.dictionary(text, text, { maxKeys: 4 }), dl: fc.nat() })
        .map((r) => ({ id: r.id, request: { function: r.fn, payload: r.payload, contentType: r.ct, deadlineMs: r.dl, subject: r.sub, tenant: r.ten, metadata: r.md, requestId: r.rid } })),
      fc.record({ id: fc.nat(), payload: bytes, ct: text, node: text, d: fc.nat() }).map((r) => ({ id: r.id, result: { payload: r.payload, contentType: r.ct, nodeId: r.node, durationMs: r.d } })),
      fc.record({ id: fc.nat(), payload: bytes, f: fc.double({ noNaN: true }) }).map((r) => ({ id: r.id, progress: { fraction: r.f, payload: r.payload } })),
      fc.record({ id: fc.nat(), code: fc.nat({ max: 16 }), message: text, ra: fc.nat() }).map((r) => ({ id: r.id, error: { code: r.code, message: r.message, retryAfterMs: r.ra } })),
    );
    fc.assert(fc.property(frame, (f) => {
      expect(linkFrameSizeBound(f)).toBeGreaterThanOrEqual(encodeLinkFrame(f).length);
    }));
  });
});
