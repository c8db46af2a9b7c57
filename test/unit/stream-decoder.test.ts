import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Code, GatewayError } from '../../src/errors.js';
import type { NodeFrame } from '../../src/protocol/frames.js';
import { encodeDelimitedNodeFrame, NodeStreamDecoder } from '../../src/nodes/node-stream.js';
import { splitAt } from '../helpers/chunks.js';

type Seen = { kind: 'progress'; fraction: number; payload: string } | { kind: 'result'; payload: string; contentType: string } | { kind: 'error'; code: number; message: string };

function collector(limit?: number): { decoder: NodeStreamDecoder; seen: Seen[] } {
  const seen: Seen[] = [];
  const decoder = new NodeStreamDecoder({
    progress: (fraction, payload) => seen.push({ kind: 'progress', fraction, payload: Buffer.from(payload).toString() }),
    terminal: (frame) => {
      if ('result' in frame) seen.push({ kind: 'result', payload: Buffer.from(frame.result.payload).toString(), contentType: frame.result.contentType ?? '' });
      else seen.push({ kind: 'error', code: frame.error.code, message: frame.error.message });
    },
  }, limit);
  return { decoder, seen };
}

const progressArb = fc.record({ fraction: fc.double({ min: 0, max: 1, noNaN: true }), payload: fc.string({ maxLength: 200 }) });
const terminalArb = fc.oneof(
  fc.record({ payload: fc.string({ maxLength: 500 }), contentType: fc.constantFrom('', 'application/json', 'text/plain') }).map((r): NodeFrame => ({ result: { payload: Buffer.from(r.payload), contentType: r.contentType } })),
  fc.record({ code: fc.constantFrom(Code.INVALID_ARGUMENT, Code.INTERNAL, Code.RESOURCE_EXHAUSTED), message: fc.string({ maxLength: 100 }) }).map((e): NodeFrame => ({ error: { code: e.code, message: e.message } })),
);

function expected(progress: { fraction: number; payload: string }[], terminal: NodeFrame): Seen[] {
  const out: Seen[] = progress.map((p) => ({ kind: 'progress', fraction: p.fraction, payload: p.payload }));
  if ('result' in terminal) out.push({ kind: 'result', payload: Buffer.from(terminal.result.payload).toString(), contentType: terminal.result.contentType ?? '' });
  else if ('error' in terminal) out.push({ kind: 'error', code: terminal.error.code, message: terminal.error.message });
  return out;
}

function streamOf(progress: { fraction: number; payload: string }[], terminal: NodeFrame): Buffer {
  return Buffer.concat([
    ...progress.map((p) => encodeDelimitedNodeFrame({ progress: { fraction: p.fraction, payload: Buffer.from(p.payload) } })),
    encodeDelimitedNodeFrame(terminal),
  ]);
}

describe('NodeStreamDecoder', () => {
  it('decodes progress then one terminal frame however the body is split', () => {
    fc.assert(fc.property(fc.array(progressArb, { maxLength: 12 }), terminalArb, fc.array(fc.nat(), { maxLength: 40 }), (progress, terminal, cuts) => {
      const { decoder, seen } = collector();
      for (const chunk of splitAt(streamOf(progress, terminal), cuts)) decoder.push(chunk);
      decoder.end();
      expect(seen).toEqual(expected(progress, terminal));
      expect(decoder.complete).toBe(true);
    }));
  });

  it('decodes byte by byte', () => {
    const stream = streamOf([{ fraction: 0.5, payload: 'half' }], { result: { payload: Buffer.from('done'), contentType: 'text/plain' } });
    const { decoder, seen } = collector();
    for (const byte of stream) decoder.push(Buffer.from([byte]));
    decoder.end();
    expect(seen).toEqual([{ kind: 'progress', fraction: 0.5, payload: 'half' }, { kind: 'result', payload: 'done', contentType: 'text/plain' }]);
  });

  it('reports a stream cut anywhere before its terminal frame as INTERNAL, never as a result', () => {
    const stream = streamOf([{ fraction: 0.25, payload: 'a' }, { fraction: 0.75, payload: 'b' }], { result: { payload: Buffer.from('final') } });
    for (let cut = 0; cut < stream.length; cut++) {
      const { decoder, seen } = collector();
      decoder.push(stream.subarray(0, cut));
      expect(() => decoder.end()).toThrow(GatewayError);
      try { decoder.end(); } catch (err) { expect((err as GatewayError).code).toBe(Code.INTERNAL); }
      expect(seen.some((s) => s.kind === 'result')).toBe(false);
    }
  });

  it('says whether the stream was truncated inside a frame or simply ended early', () => {
    const one = encodeDelimitedNodeFrame({ progress: { fraction: 0.1, payload: Buffer.from('x') } });
    const early = collector();
    early.decoder.push(one);
    expect(() => early.decoder.end()).toThrow(/without a result or error/);
    const inside = collector();
    inside.decoder.push(one.subarray(0, one.length - 1));
    expect(() => inside.decoder.end()).toThrow(/truncated inside a frame/);
  });

  it('refuses a huge length prefix at once, before buffering the frame', () => {
    const { decoder } = collector(1024);
    // varint for 1 GiB
    expect(() => decoder.push(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x04]))).toThrow(/exceeds the limit/);
    expect(decoder.pendingBytes).toBe(0);
    // the stream stays failed
    expect(() => decoder.push(Buffer.from([0]))).toThrow(GatewayError);
    expect(() => decoder.end()).toThrow(GatewayError);
  });

  it('accepts a frame at exactly the limit and refuses one byte more', () => {
    const frame = encodeDelimitedNodeFrame({ result: { payload: Buffer.alloc(100, 7) } });
    const bodyLength = frame.length - 1; // one-byte prefix (100+ bytes < 128)
    const ok = collector(bodyLength);
    ok.decoder.push(frame);
    ok.decoder.end();
    expect(ok.seen).toHaveLength(1);
    const tight = collector(bodyLength - 1);
    expect(() => tight.decoder.push(frame)).toThrow(/exceeds the limit/);
  });

  it('rejects a length prefix longer than five bytes', () => {
    const { decoder } = collector();
    expect(() => decoder.push(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]))).toThrow(GatewayError);
  });

  it('rejects anything after the terminal frame', () => {
    const { decoder, seen } = collector();
    const stream = Buffer.concat([
      encodeDelimitedNodeFrame({ result: { payload: Buffer.from('r') } }),
      encodeDelimitedNodeFrame({ progress: { fraction: 1, payload: Buffer.from('late') } }),
    ]);
    expect(() => decoder.push(stream)).toThrow(/after the terminal frame/);
    expect(seen).toEqual([{ kind: 'result', payload: 'r', contentType: '' }]);
  });

  it('rejects an empty frame and a malformed one', () => {
    const empty = collector();
    expect(() => empty.decoder.push(Buffer.from([0]))).toThrow(/no body/);
    const bad = collector();
    expect(() => bad.decoder.push(Buffer.from([3, 0x0a, 0xff, 0xff]))).toThrow(GatewayError);
  });

  it('clamps progress fractions into 0..1', () => {
    const { decoder, seen } = collector();
    decoder.push(Buffer.concat([
      encodeDelimitedNodeFrame({ progress: { fraction: 7, payload: new Uint8Array(0) } }),
      encodeDelimitedNodeFrame({ progress: { fraction: -1, payload: new Uint8Array(0) } }),
      encodeDelimitedNodeFrame({ error: { code: Code.INVALID_ARGUMENT, message: 'bad n' } }),
    ]));
    decoder.end();
    expect(seen).toEqual([
      { kind: 'progress', fraction: 1, payload: '' },
      { kind: 'progress', fraction: 0, payload: '' },
      { kind: 'error', code: Code.INVALID_ARGUMENT, message: 'bad n' },
    ]);
  });
});
