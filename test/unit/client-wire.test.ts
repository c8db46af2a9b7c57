// The client's encoder and decoder against the gateway's codec: what one writes, the other reads.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeReply, encodeRequest, ServerFrameError } from '../../src/client/wire.js';
import { closeAdvice } from '../../src/client/client.js';
import { decodeClientFrame, decodeClientFrameJson, encodeFor, type Subprotocol } from '../../src/protocol/codec.js';
import type { ClientFrame, ServerFrame } from '../../src/protocol/frames.js';
import { Code } from '../../src/errors.js';

const text = (s: string) => new TextEncoder().encode(s);
const subprotocols: Subprotocol[] = ['proto', 'json'];

function gatewayDecode(subprotocol: Subprotocol, encoded: Uint8Array | string): ClientFrame {
  return subprotocol === 'proto' ? decodeClientFrame(encoded as Uint8Array) : decodeClientFrameJson(encoded as string);
}

function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, function (this: Record<string, unknown>, key: string, value: unknown) {
    const raw = this[key];
    return raw instanceof Uint8Array ? Array.from(raw) : value;
  }));
}

const requests: ClientFrame[] = [
  { id: 1, kind: 'invoke', invoke: { function: 'sha256', payload: text('hello'), contentType: 'text/plain', timeoutMs: 2500, jobTopic: 'jobs/9', metadata: { trace: 'abc', 'x-y': 'z' } } },
  { id: 2, kind: 'invoke', invoke: { function: 'f', payload: new Uint8Array(0), contentType: '', timeoutMs: 0, jobTopic: '', metadata: {} } },
  { id: 3, kind: 'cancel', targetId: 1 },
  { id: 4, kind: 'subscribe', topic: 'resources/printers/7', recover: true, since: { offset: 2 ** 40, epoch: 'e-1' } },
  { id: 5, kind: 'subscribe', topic: 'a', recover: false, since: undefined },
  { id: 6, kind: 'unsubscribe', topic: 'a' },
  { id: 7, kind: 'publish', topic: 'chat/r', payload: new Uint8Array([0, 255, 1, 254]), contentType: 'application/octet-stream' },
  { id: 8, kind: 'ping', clientTimeMs: 1_763_900_000_123 },
  { id: 0xffffffff, kind: 'refresh', token: 'h.p.s' },
];

const replies: ServerFrame[] = [
  { id: 0, welcome: { sessionId: 's1', gatewayId: 'g1', serverTimeMs: 1_763_900_000_000, maxFrameBytes: 1_048_576, maxInFlight: 256, tokenExpiresMs: 1_763_903_600_000 } },
  { id: 1, result: { payload: text('digest'), contentType: 'text/plain', nodeId: 'node-a', durationMs: 12 } },
  { id: 1, result: { payload: new Uint8Array(0) } },
  { id: 1, progress: { fraction: 0.25, payload: text('quarter') } },
  { id: 0, event: { topic: 'r/1', payload: text('{"a":1}'), contentType: 'application/json', position: { offset: 2 ** 40 + 1, epoch: 'e-1' }, publishedMs: 1_763_900_000_001 } },
  { id: 0, event: { topic: 'r/2', payload: text('x'), publishedMs: 5 } },
  { id: 2, error: { code: Code.PERMISSION_DENIED, message: 'subscribe not granted: r/1' } },
  { id: 2, error: { code: Code.RESOURCE_EXHAUSTED, message: 'slow down', retryAfterMs: 750 } },
  { id: 4, ack: { position: { offset: 3, epoch: 'e-2' }, replayed: 2, recovered: true } },
  { id: 4, ack: {} },
  { id: 8, pong: { clientTimeMs: 1, serverTimeMs: 2 } },
  { id: 0, goAway: { reconnectWithinMs: 5000, reason: 'gateway shutting down' } },
];

describe('client requests, as the gateway reads them', () => {
  for (const subprotocol of subprotocols) {
    it.each(requests)(`${subprotocol}: %s`, (frame) => {
      const encoded = encodeRequest(subprotocol, frame);
      expect(typeof encoded).toBe(subprotocol === 'proto' ? 'object' : 'string');
      expect(plain(gatewayDecode(subprotocol, encoded))).toEqual(plain(frame));
    });
  }

  it('sends 64-bit integers as strings in JSON', () => {
    const json = JSON.parse(encodeRequest('json', requests[7]!) as string) as { ping: { clientTimeMs: unknown } };
    expect(json.ping.clientTimeMs).toBe('1763900000123');
  });

  it('round-trips any request of any kind in both subprotocols', () => {
    const str = fc.oneof(fc.constant('0'), fc.constant(''), fc.string({ maxLength: 16 }));
    const uint = fc.oneof(fc.constant(0), fc.nat({ max: 2 ** 32 - 1 }));
    const int53 = fc.oneof(fc.constant(0), fc.nat({ max: Number.MAX_SAFE_INTEGER }));
    const bytes = fc.uint8Array({ maxLength: 32 });
    const meta = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), str, { maxKeys: 4 }).map((d) => Object.assign(Object.create(null) as Record<string, string>, d));
    const body = fc.oneof(
      fc.record({ kind: fc.constant('invoke' as const), invoke: fc.record({ function: str, payload: bytes, contentType: str, timeoutMs: uint, jobTopic: str, metadata: meta }) }),
      fc.record({ kind: fc.constant('cancel' as const), targetId: uint }),
      fc.record({ kind: fc.constant('subscribe' as const), topic: str, recover: fc.boolean(), since: fc.option(fc.record({ offset: int53, epoch: str }), { nil: undefined }) }),
      fc.record({ kind: fc.constant('unsubscribe' as const), topic: str }),
      fc.record({ kind: fc.constant('publish' as const), topic: str, payload: bytes, contentType: str }),
      fc.record({ kind: fc.constant('ping' as const), clientTimeMs: int53 }),
      fc.record({ kind: fc.constant('refresh' as const), token: str }),
    );
    fc.assert(fc.property(fc.constantFrom(...subprotocols), fc.integer({ min: 1, max: 0xffffffff }), body, (sp, id, b) => {
      const frame = { id, ...b } as ClientFrame;
      expect(plain(gatewayDecode(sp, encodeRequest(sp, frame)))).toEqual(plain(frame));
    }), { numRuns: 2_000 });
  });

  it('round-trips arbitrary publishes in both subprotocols, "0" included', () => {
    const segment = fc.oneof(fc.constant('0'), fc.stringMatching(/^[A-Za-z0-9._~-]{1,10}$/));
    fc.assert(fc.property(fc.constantFrom(...subprotocols), fc.integer({ min: 1, max: 0xffffffff }), segment, fc.uint8Array({ maxLength: 64 }), fc.oneof(fc.constant('0'), fc.string()), (sp, id, topic, payload, contentType) => {
      const frame: ClientFrame = { id, kind: 'publish', topic, payload, contentType };
      expect(plain(gatewayDecode(sp, encodeRequest(sp, frame)))).toEqual(plain(frame));
    }));
  });
});

describe('gateway replies, as the client reads them', () => {
  for (const subprotocol of subprotocols) {
    it.each(replies)(`${subprotocol}: %s`, (frame) => {
      const encoded = encodeFor(subprotocol, frame);
      const m = decodeReply(subprotocol, encoded);
      const [kind] = Object.keys(frame).filter((k) => k !== 'id');
      expect(m.id).toBe(frame.id);
      expect(m.kind).toBe(kind);
      const sent = (frame as unknown as Record<string, Record<string, unknown>>)[kind!]!;
      const got = (m as unknown as Record<string, Record<string, unknown>>)[kind!]!;
      // Every field sent arrives with its value; fields not sent read as their defaults.
      for (const [field, value] of Object.entries(sent)) expect(plain(got[field]), field).toEqual(plain(value));
      for (const [field, value] of Object.entries(got)) {
        if (!(field in sent)) expect(value === undefined || value === '' || value === 0 || value === false || (value instanceof Uint8Array && value.length === 0), field).toBe(true);
      }
    });
  }

  it('carries any strings and numbers of an event and an error exactly, in both subprotocols', () => {
    const str = fc.oneof(fc.constant('0'), fc.constant(''), fc.string({ maxLength: 12 }));
    const uint = fc.oneof(fc.constant(0), fc.nat({ max: 2 ** 32 - 1 }));
    const int53 = fc.oneof(fc.constant(0), fc.nat({ max: Number.MAX_SAFE_INTEGER }));
    fc.assert(fc.property(fc.constantFrom(...subprotocols), str, str, int53, str, int53, uint, str, (sp, topic, contentType, offset, epoch, publishedMs, retry, message) => {
      const event: ServerFrame = { id: 0, event: { topic, payload: text(topic), contentType, position: { offset, epoch }, publishedMs } };
      const e = decodeReply(sp, encodeFor(sp, event));
      expect(plain(e)).toEqual(plain({ id: 0, kind: 'event', event: { topic, payload: text(topic), contentType, position: { offset, epoch }, publishedMs } }));
      const error: ServerFrame = { id: 9, error: { code: Code.UNAVAILABLE, message, retryAfterMs: retry } };
      expect(decodeReply(sp, encodeFor(sp, error))).toEqual({ id: 9, kind: 'error', error: { code: Code.UNAVAILABLE, message, retryAfterMs: retry } });
    }), { numRuns: 1_000 });
  });

  it('reads any reply of any kind identically in both subprotocols, as sent', () => {
    const str = fc.oneof(fc.constant('0'), fc.constant(''), fc.string({ maxLength: 12 }));
    const uint = fc.oneof(fc.constant(0), fc.nat({ max: 2 ** 32 - 1 }));
    const int53 = fc.oneof(fc.constant(0), fc.nat({ max: Number.MAX_SAFE_INTEGER }));
    const bytes = fc.uint8Array({ maxLength: 24 });
    const position = fc.record({ offset: int53, epoch: str });
    const reply = fc.oneof(
      fc.record({ welcome: fc.record({ sessionId: str, gatewayId: str, serverTimeMs: int53, maxFrameBytes: uint, maxInFlight: uint, tokenExpiresMs: int53 }) }),
      fc.record({ result: fc.record({ payload: bytes, contentType: str, nodeId: str, durationMs: uint }) }),
      fc.record({ progress: fc.record({ fraction: fc.double({ min: 0, max: 1, noNaN: true }), payload: bytes }) }),
      fc.record({ ack: fc.record({ position: fc.option(position, { nil: undefined }), replayed: uint, recovered: fc.boolean() }) }),
      fc.record({ pong: fc.record({ clientTimeMs: int53, serverTimeMs: int53 }) }),
      fc.record({ goAway: fc.record({ reconnectWithinMs: uint, reason: str }) }),
    );
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), reply, (id, body) => {
      const frame = { id, ...body } as ServerFrame;
      const [kind] = Object.keys(body);
      const expected = plain({ id, kind, ...body });
      for (const sp of subprotocols) expect(plain(decodeReply(sp, encodeFor(sp, frame)))).toEqual(expected);
    }), { numRuns: 2_000 });
  });

  it('decodes both subprotocols to the same values', () => {
    for (const frame of replies) expect(plain(decodeReply('json', encodeFor('json', frame)))).toEqual(plain(decodeReply('proto', encodeFor('proto', frame))));
  });

  it('accepts JSON text given as bytes', () => {
    const m = decodeReply('json', text(encodeFor('json', replies[10]!) as string));
    expect(m).toEqual({ id: 8, kind: 'pong', pong: { clientTimeMs: 1, serverTimeMs: 2 } });
  });

  it('reads an unknown error code name as UNKNOWN', () => {
    const m = decodeReply('json', '{"id":3,"error":{"code":"TEAPOT","message":"x"}}');
    expect(m.kind === 'error' && m.error.code).toBe(Code.UNKNOWN);
  });

  it('reads a frame with a body it does not know as kind none', () => {
    expect(decodeReply('json', '{"id":3,"future":{}}')).toEqual({ id: 3, kind: 'none' });
    expect(decodeReply('proto', new Uint8Array([0x08, 0x03, 0x7a, 0x00]))).toEqual({ id: 3, kind: 'none' });
  });

  it.each<[Subprotocol, Uint8Array | string]>([
    ['json', 'not json'],
    ['json', '[]'],
    ['json', '{"id":"x","pong":{}}'],
    ['json', '{"id":1,"pong":5}'],
    ['json', '{"id":1,"result":{"payload":7}}'],
    ['json', '{"id":1,"event":{"topic":{}}}'],
    ['proto', 'text on the binary subprotocol'],
    ['proto', new Uint8Array([0x08, 0x80])],
    ['proto', new Uint8Array([0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f])],
  ])('rejects an unreadable %s frame with ServerFrameError', (sp, data) => {
    expect(() => decodeReply(sp, data)).toThrow(ServerFrameError);
  });

  it('never throws anything but ServerFrameError on arbitrary input', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 128 }), fc.string(), (bytes, s) => {
      for (const attempt of [() => decodeReply('proto', bytes), () => decodeReply('json', s), () => decodeReply('json', bytes)]) {
        try {
          attempt();
        } catch (err) {
          expect(err).toBeInstanceOf(ServerFrameError);
        }
      }
    }), { numRuns: 2_000 });
  });
});

describe('closeAdvice', () => {
  it.each<[number, boolean, boolean]>([
    [1000, false, false],
    [1001, true, false],
    [1006, true, false],
    [1009, false, false],
    [4001, true, true],
    [4008, true, false],
    [4010, true, false],
    [4029, false, false],
    [4400, false, false],
  ])('close %i: reconnect %s, fresh token %s', (code, reconnect, needsFreshToken) => {
    expect(closeAdvice(code)).toEqual({ reconnect, needsFreshToken });
  });
});
