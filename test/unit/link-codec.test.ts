import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../src/protocol/codec.js';
import { decodeLinkFrame, encodeLinkBatch, encodeLinkFrame, type LinkMessage } from '../../src/protocol/link-codec.js';
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
    const frame = decodeLinkFrame(body) as { result: { payload: Buffer } };
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
    expect((f as { request: { payload: Buffer; deadlineMs: number } }).request.payload.equals(payload)).toBe(true);
    expect((f as { request: { deadlineMs: number } }).request.deadlineMs).toBe(2 ** 31);
  });
});
