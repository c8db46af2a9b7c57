import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { thrownBy } from '../helpers/thrown.js';
import {
  DecodeError,
  decodeClientFrame,
  decodeClientFrameJson,
  decodeEvent,
  decodeServerFrame,
  encodeClientFrame,
  encodeEvent,
  encodeFor,
  encodeServerFrame,
  encodeServerFrameJson,
  peekFrameId,
  serverFrameToJson,
} from '../../src/protocol/codec.js';
import type { ClientFrame, ServerFrame } from '../../src/protocol/frames.js';
import { Code } from '../../src/errors.js';

const bytes = (...b: number[]) => new Uint8Array(b);
const text = (s: string) => new TextEncoder().encode(s);
const b64 = (s: string) => Buffer.from(s).toString('base64');

const decodeError = (fn: () => unknown): DecodeError => thrownBy(DecodeError, fn);

/** The same ClientFrame in the binary encoding and in canonical JSON, and what both decode to. */
const clientCases: Array<[name: string, proto: Parameters<typeof encodeClientFrame>[0], json: unknown, expected: ClientFrame]> = [
  [
    'invoke',
    { id: 1, invoke: { function: 'sha256', payload: text('hi'), contentType: 'text/plain', timeoutMs: 500, jobTopic: 'jobs/1', metadata: { k: 'v' } } },
    { id: 1, invoke: { function: 'sha256', payload: b64('hi'), contentType: 'text/plain', timeoutMs: 500, jobTopic: 'jobs/1', metadata: { k: 'v' } } },
    { id: 1, kind: 'invoke', invoke: { function: 'sha256', payload: text('hi'), contentType: 'text/plain', timeoutMs: 500, jobTopic: 'jobs/1', metadata: { k: 'v' } } },
  ],
  ['cancel', { id: 2, cancel: { targetId: 1 } }, { id: 2, cancel: { targetId: 1 } }, { id: 2, kind: 'cancel', targetId: 1 }],
  [
    'subscribe with recover',
    { id: 3, subscribe: { topic: 'a/b', recover: true, since: { offset: 41, epoch: 'e1' } } },
    { id: 3, subscribe: { topic: 'a/b', recover: true, since: { offset: '41', epoch: 'e1' } } },
    { id: 3, kind: 'subscribe', topic: 'a/b', recover: true, since: { offset: 41, epoch: 'e1' } },
  ],
  ['subscribe', { id: 4, subscribe: { topic: 'a' } }, { id: 4, subscribe: { topic: 'a' } }, { id: 4, kind: 'subscribe', topic: 'a', recover: false, since: undefined }],
  ['unsubscribe', { id: 5, unsubscribe: { topic: 'a' } }, { id: 5, unsubscribe: { topic: 'a' } }, { id: 5, kind: 'unsubscribe', topic: 'a' }],
  [
    'publish',
    { id: 6, publish: { topic: 't', payload: text('{}'), contentType: 'application/json' } },
    { id: 6, publish: { topic: 't', payload: b64('{}'), contentType: 'application/json' } },
    { id: 6, kind: 'publish', topic: 't', payload: text('{}'), contentType: 'application/json' },
  ],
  ['ping', { id: 7, ping: { clientTimeMs: 1_700_000_000_123 } }, { id: 7, ping: { clientTimeMs: '1700000000123' } }, { id: 7, kind: 'ping', clientTimeMs: 1_700_000_000_123 }],
  ['empty ping', { id: 8, ping: {} }, { id: 8, ping: {} }, { id: 8, kind: 'ping', clientTimeMs: 0 }],
  ['refresh', { id: 9, refresh: { token: 'a.b.c' } }, { id: 9, refresh: { token: 'a.b.c' } }, { id: 9, kind: 'refresh', token: 'a.b.c' }],
  ['no body', { id: 10 }, { id: 10 }, { id: 10, kind: 'none' }],
];

function normalize(frame: ClientFrame): unknown {
  // Compare bytes by content and metadata maps by entries (they have no prototype).
  return JSON.parse(JSON.stringify(frame, function (this: Record<string, unknown>, key: string, v: unknown) {
    const raw = this[key];
    return raw instanceof Uint8Array ? Array.from(raw) : v;
  }));
}

describe('ClientFrame, both subprotocols', () => {
  it.each(clientCases)('%s round-trips in binary', (_name, proto, _json, expected) => {
    expect(normalize(decodeClientFrame(encodeClientFrame(proto)))).toEqual(normalize(expected));
  });

  it.each(clientCases)('%s decodes from canonical JSON', (_name, _proto, json, expected) => {
    expect(normalize(decodeClientFrameJson(JSON.stringify(json)))).toEqual(normalize(expected));
  });

  it('accepts the original snake_case field names in JSON', () => {
    const frame = decodeClientFrameJson(JSON.stringify({ id: 1, invoke: { function: 'f', content_type: 'x/y', timeout_ms: 9, job_topic: 'j' } }));
    expect(frame).toMatchObject({ kind: 'invoke', invoke: { contentType: 'x/y', timeoutMs: 9, jobTopic: 'j' } });
    expect(decodeClientFrameJson('{"id":2,"ping":{"client_time_ms":"5"}}')).toMatchObject({ kind: 'ping', clientTimeMs: 5 });
  });

  it('accepts int64 as numbers or decimal strings, and null as the default', () => {
    expect(decodeClientFrameJson('{"id":1,"ping":{"clientTimeMs":12}}')).toMatchObject({ clientTimeMs: 12 });
    expect(decodeClientFrameJson('{"id":1,"ping":{"clientTimeMs":"12"}}')).toMatchObject({ clientTimeMs: 12 });
    expect(decodeClientFrameJson('{"id":"3","ping":{"clientTimeMs":null}}')).toMatchObject({ id: 3, clientTimeMs: 0 });
  });

  it('accepts standard and URL-safe base64, padded or not', () => {
    const payload = new Uint8Array([0xfb, 0xff, 0xfe]);
    for (const encoded of ['+//+', '-__-', Buffer.from([0xfb, 0xf0]).toString('base64'), '+/A']) {
      const frame = decodeClientFrameJson(JSON.stringify({ id: 1, publish: { topic: 't', payload: encoded } }));
      expect(frame.kind).toBe('publish');
    }
    const exact = decodeClientFrameJson(JSON.stringify({ id: 1, publish: { topic: 't', payload: Buffer.from(payload).toString('base64') } }));
    expect(exact.kind === 'publish' && Array.from(exact.payload)).toEqual(Array.from(payload));
  });
});

describe('binary ClientFrame, bad input', () => {
  it('rejects a truncated varint', () => {
    decodeError(() => decodeClientFrame(bytes(0x08, 0x80)));
    decodeError(() => decodeClientFrame(bytes(0x08, 0xff, 0xff, 0xff)));
  });

  it('rejects a huge length prefix', () => {
    decodeError(() => decodeClientFrame(bytes(0x12, 0xff, 0xff, 0xff, 0xff, 0x0f)));
    decodeError(() => decodeClientFrame(bytes(0x08, 0x07, 0x12, 0xff, 0xff, 0xff, 0x7f, 0x00)));
  });

  it('rejects a length prefix past the end of a nested message', () => {
    // invoke { function: length 10 but only 2 bytes }
    decodeError(() => decodeClientFrame(bytes(0x08, 0x01, 0x12, 0x04, 0x0a, 0x0a, 0x61, 0x62)));
  });

  it('keeps the id readable in a damaged frame', () => {
    const frame = bytes(0x08, 0x2a, 0x12, 0xff, 0xff, 0xff, 0x7f);
    expect(decodeError(() => decodeClientFrame(frame)).id).toBe(42);
    expect(peekFrameId(frame)).toBe(42);
    expect(peekFrameId(bytes(0x08))).toBe(0);
    expect(peekFrameId(bytes())).toBe(0);
  });

  it('rejects a megabyte of nested groups quickly, without exhausting the stack', () => {
    for (const tag of [0x0b, 0x13, 0x7b]) decodeError(() => decodeClientFrame(new Uint8Array(1_000_000).fill(tag)));
  });

  it('rejects an invalid wire type', () => {
    decodeError(() => decodeClientFrame(bytes(0x0f, 0x01)));
  });

  it('reads an unknown oneof field number as a frame without a body', () => {
    // field 15, length-delimited, 3 bytes; the id survives
    const frame = decodeClientFrame(bytes(0x08, 0x05, 0x7a, 0x03, 0x01, 0x02, 0x03));
    expect(frame).toEqual({ id: 5, kind: 'none' });
  });

  it('keeps exactly one body when two oneof members are sent (the last, as proto3 says)', () => {
    const ping = encodeClientFrame({ id: 1, ping: { clientTimeMs: 3 } });
    const refresh = encodeClientFrame({ refresh: { token: 't' } });
    const both = new Uint8Array([...ping, ...refresh]);
    expect(decodeClientFrame(both)).toEqual({ id: 1, kind: 'refresh', token: 't' });
  });

  it('does not let a metadata key "__proto__" touch any prototype', () => {
    // invoke { metadata { key "__proto__" value "x" } } written by hand
    const key = text('__proto__');
    const entry = [0x0a, key.length, ...key, 0x12, 0x01, 0x78];
    const invoke = [0x32, entry.length, ...entry];
    const frame = decodeClientFrame(bytes(0x08, 0x01, 0x12, invoke.length, ...invoke));
    expect(frame.kind).toBe('invoke');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('never yields anything but a frame or a DecodeError for arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (input) => {
        try {
          const frame = decodeClientFrame(input);
          expect(typeof frame.id).toBe('number');
          expect(typeof frame.kind).toBe('string');
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 5_000 },
    );
  });

  it('never yields anything but a frame or a DecodeError for mutated valid frames', () => {
    const valid = clientCases.map(([, proto]) => encodeClientFrame(proto));
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), (frame, edits, cut) => {
        const damaged = frame.slice(0, Math.max(1, frame.length - (cut % frame.length)));
        for (const [at, value] of edits) damaged[at % damaged.length] = value;
        try {
          decodeClientFrame(damaged);
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 3_000 },
    );
  });
});

describe('JSON ClientFrame, bad input', () => {
  it.each<[string, string]>([
    ['not JSON', '{"id":1,'],
    ['an array', '[1,2]'],
    ['a string', '"ping"'],
    ['null', 'null'],
    ['top-level __proto__', '{"id":1,"__proto__":{"polluted":true}}'],
    ['top-level constructor', '{"id":1,"constructor":{"prototype":{"polluted":true}}}'],
    ['__proto__ inside a body', '{"id":1,"ping":{"__proto__":{"polluted":true}}}'],
    ['constructor inside a body', '{"id":1,"subscribe":{"topic":"a","constructor":{}}}'],
    ['toString as a body', '{"id":1,"toString":{}}'],
    ['hasOwnProperty inside a body', '{"id":1,"ping":{"hasOwnProperty":1}}'],
    ['metadata value that is an object', '{"id":1,"invoke":{"function":"f","metadata":{"__proto__":{"polluted":true}}}}'],
    ['two bodies', '{"id":1,"ping":{},"refresh":{"token":"t"}}'],
    ['an unknown body', '{"id":1,"shutdown":{}}'],
    ['an unknown field in a body', '{"id":1,"ping":{"clientTimeMs":1,"extra":2}}'],
    ['a body that is not an object', '{"id":1,"ping":5}'],
    ['a body that is an array', '{"id":1,"ping":[]}'],
    ['id of the wrong type', '{"id":"one","ping":{}}'],
    ['negative id', '{"id":-1,"ping":{}}'],
    ['id over uint32', '{"id":4294967296,"ping":{}}'],
    ['fractional id', '{"id":1.5,"ping":{}}'],
    ['topic that is a number', '{"id":1,"subscribe":{"topic":5}}'],
    ['recover as a string', '{"id":1,"subscribe":{"topic":"a","recover":"yes"}}'],
    ['since that is a string', '{"id":1,"subscribe":{"topic":"a","since":"41"}}'],
    ['negative uint64 offset', '{"id":1,"subscribe":{"topic":"a","since":{"offset":"-1"}}}'],
    ['int64 beyond safe integers', '{"id":1,"ping":{"clientTimeMs":"99999999999999999999"}}'],
    ['int64 as a non-decimal string', '{"id":1,"ping":{"clientTimeMs":"0x10"}}'],
    ['timeoutMs as a float', '{"id":1,"invoke":{"function":"f","timeoutMs":1.5}}'],
    ['payload that is not base64', '{"id":1,"publish":{"topic":"t","payload":"not base64!"}}'],
    ['payload of one base64 character', '{"id":1,"publish":{"topic":"t","payload":"a"}}'],
    ['payload with padding in the middle', '{"id":1,"publish":{"topic":"t","payload":"ab==cd"}}'],
    ['payload that is an array of bytes', '{"id":1,"publish":{"topic":"t","payload":[1,2]}}'],
    ['metadata that is an array', '{"id":1,"invoke":{"function":"f","metadata":["a"]}}'],
    ['metadata value that is a number', '{"id":1,"invoke":{"function":"f","metadata":{"a":1}}}'],
    ['a field given by both names', '{"id":1,"invoke":{"function":"f","timeoutMs":1,"timeout_ms":2}}'],
  ])('rejects %s, and pollutes nothing', (_name, input) => {
    decodeError(() => decodeClientFrameJson(input));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects deeply nested JSON without exhausting the stack', () => {
    decodeError(() => decodeClientFrameJson('['.repeat(200_000) + ']'.repeat(200_000)));
    decodeError(() => decodeClientFrameJson(`{"id":1,"ping":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`));
    decodeError(() => decodeClientFrameJson(`{"id":1,"invoke":{"metadata":${'{"a":'.repeat(100_000)}"x"${'}'.repeat(100_000)}}}`));
  });

  it('echoes the id of a frame whose body is bad', () => {
    expect(decodeError(() => decodeClientFrameJson('{"id":17,"ping":{"clientTimeMs":"x"}}')).id).toBe(17);
    expect(decodeError(() => decodeClientFrameJson('{"id":"bad","ping":{}}')).id).toBe(0);
  });

  it('decodes metadata into an object without a prototype', () => {
    const frame = decodeClientFrameJson('{"id":1,"invoke":{"function":"f","metadata":{"__proto__":"x","constructor":"y"}}}');
    expect(frame.kind).toBe('invoke');
    if (frame.kind !== 'invoke') return;
    expect(Object.getPrototypeOf(frame.invoke.metadata)).toBeNull();
    expect(Object.entries(frame.invoke.metadata)).toEqual([['__proto__', 'x'], ['constructor', 'y']]);
  });

  it('never yields anything but a frame or a DecodeError for arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string(), fc.jsonValue().map((v) => JSON.stringify({ id: 1, ping: v })), fc.jsonValue().map((v) => JSON.stringify({ id: 1, invoke: { metadata: v } }))), (input) => {
        try {
          decodeClientFrameJson(input);
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 3_000 },
    );
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('ServerFrame, both subprotocols', () => {
  const position = { offset: 9_007_199_254_740, epoch: 'ep' };
  const frames: Array<[string, ServerFrame, Record<string, unknown>]> = [
    [
      'welcome',
      { id: 0, welcome: { sessionId: 's', gatewayId: 'g', serverTimeMs: 1_700_000_000_000, maxFrameBytes: 1024, maxInFlight: 8, tokenExpiresMs: 1_700_000_060_000 } },
      { welcome: { sessionId: 's', gatewayId: 'g', serverTimeMs: '1700000000000', maxFrameBytes: 1024, maxInFlight: 8, tokenExpiresMs: '1700000060000' } },
    ],
    [
      'result',
      { id: 3, result: { payload: text('ok'), contentType: 'text/plain', nodeId: 'n1', durationMs: 4 } },
      { id: 3, result: { payload: b64('ok'), contentType: 'text/plain', nodeId: 'n1', durationMs: 4 } },
    ],
    ['progress', { id: 3, progress: { fraction: 0.5, payload: text('p') } }, { id: 3, progress: { fraction: 0.5, payload: b64('p') } }],
    [
      'event',
      { id: 0, event: { topic: 't/x', payload: text('e'), contentType: 'x/y', position, publishedMs: 5 } },
      { event: { topic: 't/x', payload: b64('e'), contentType: 'x/y', position: { offset: '9007199254740', epoch: 'ep' }, publishedMs: '5' } },
    ],
    [
      'error',
      { id: 4, error: { code: Code.RESOURCE_EXHAUSTED, message: 'slow down', retryAfterMs: 250 } },
      { id: 4, error: { code: 'RESOURCE_EXHAUSTED', message: 'slow down', retryAfterMs: 250 } },
    ],
    ['ack with recovery', { id: 5, ack: { position, replayed: 3, recovered: true } }, { id: 5, ack: { position: { offset: '9007199254740', epoch: 'ep' }, replayed: 3, recovered: true } }],
    ['empty ack', { id: 5, ack: {} }, { id: 5, ack: {} }],
    ['pong', { id: 6, pong: { clientTimeMs: 1, serverTimeMs: 2 } }, { id: 6, pong: { clientTimeMs: '1', serverTimeMs: '2' } }],
    ['goAway', { id: 0, goAway: { reconnectWithinMs: 1000, reason: 'drain' } }, { goAway: { reconnectWithinMs: 1000, reason: 'drain' } }],
  ];

  it.each(frames)('%s encodes to canonical JSON', (_name, frame, json) => {
    expect(serverFrameToJson(frame)).toEqual(json);
    expect(JSON.parse(encodeServerFrameJson(frame))).toEqual(json);
    expect(encodeFor('json', frame)).toBe(encodeServerFrameJson(frame));
  });

  it.each(frames)('%s round-trips in binary', (_name, frame) => {
    const decoded = decodeServerFrame(encodeServerFrame(frame)).toJSON() as Record<string, unknown>;
    const [kind] = Object.keys(frame).filter((k) => k !== 'id');
    expect(decoded[kind!]).toBeDefined();
    expect(decoded.id ?? 0).toBe(frame.id);
    expect(encodeFor('proto', frame)).toEqual(encodeServerFrame(frame));
  });

  it('keeps a string "0" in JSON: it is a value, not a default', () => {
    const json = serverFrameToJson({ id: 0, event: { topic: '0', payload: text('0'), contentType: '0', position: { offset: 0, epoch: '0' }, publishedMs: 0 } });
    expect(json).toEqual({ event: { topic: '0', payload: b64('0'), contentType: '0', position: { epoch: '0' } } });
    expect(serverFrameToJson({ id: 1, error: { code: Code.INTERNAL, message: '0' } })).toEqual({ id: 1, error: { code: 'INTERNAL', message: '0' } });
  });

  it('carries exact numbers through the binary form', () => {
    const m = decodeServerFrame(encodeServerFrame(frames[3]![1]));
    expect(m.event?.topic).toBe('t/x');
    expect(Number(m.event?.position?.offset)).toBe(position.offset);
    expect(Array.from(m.event?.payload ?? [])).toEqual(Array.from(text('e')));
  });
});

describe('Event as Redis carries it', () => {
  it('round-trips', () => {
    const e = { topic: 'r/1', payload: text('x'), contentType: 'text/plain', position: { offset: 7, epoch: 'a' }, publishedMs: 99 };
    const d = decodeEvent(encodeEvent(e));
    expect({ ...d, payload: Array.from(d.payload) }).toEqual({ ...e, payload: Array.from(e.payload) });
  });

  it('rejects garbage with a DecodeError', () => {
    decodeError(() => decodeEvent(bytes(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f)));
  });
});
