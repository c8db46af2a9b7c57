// Decode ClientFrame / encode ServerFrame in both subprotocols. With link-codec.ts, the only importers of generated code.
import { relaygate } from '../gen/relaygate.js';
import { codeFromName, codeName } from '../errors.js';
import type {
  ClientFrame,
  EventBody,
  InvokeBody,
  NodeFrame,
  ServerFrame,
  StreamPosition,
} from './frames.js';

const pb = relaygate.v1;

export type Subprotocol = 'proto' | 'json';

/** The Sec-WebSocket-Protocol names of spec section 1. */
export const subprotocolNames: Record<Subprotocol, string> = {
  proto: 'relaygate.v1.proto',
  json: 'relaygate.v1.json',
};

/** A frame that cannot be decoded. `id` is the frame's id when it could still be read, else 0. */
export class DecodeError extends Error {
  constructor(message: string, readonly id: number) {
    super(message);
    this.name = 'DecodeError';
  }
}

const emptyBytes = new Uint8Array(0);

function position(p: relaygate.v1.IStreamPosition | null | undefined): StreamPosition | undefined {
  if (!p) return undefined;
  return { offset: Number(p.offset ?? 0), epoch: p.epoch ?? '' };
}

/**
 * Reads the top-level id (field 1, varint) of a frame that failed to decode, scanning only what is
 * well-formed before the damage. Never throws.
 */
export function peekFrameId(bytes: Uint8Array): number {
  let pos = 0;
  const varint = (): number | undefined => {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= bytes.length) return undefined;
      const b = bytes[pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    return undefined;
  };
  while (pos < bytes.length) {
    const tag = varint();
    if (tag === undefined) return 0;
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 0) return (varint() ?? 0) >>> 0;
    if (wire === 0) { if (varint() === undefined) return 0; }
    else if (wire === 2) {
      const len = varint();
      if (len === undefined || pos + len > bytes.length) return 0;
      pos += len;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else return 0;
  }
  return 0;
}

/**
 * Decodes one binary ClientFrame. Bytes fields are views into `bytes`: the caller passes memory it
 * owns (a copy of uWS's transient ArrayBuffer).
 */
export function decodeClientFrame(bytes: Uint8Array): ClientFrame {
  let m: relaygate.v1.ClientFrame;
  try {
    m = pb.ClientFrame.decode(bytes);
  } catch (err) {
    throw new DecodeError(`malformed frame: ${(err as Error).message}`, peekFrameId(bytes));
  }
  const id = m.id ?? 0;
  switch (m.body) {
    case 'invoke': {
      const i = m.invoke!;
      return {
        id,
        kind: 'invoke',
        invoke: {
          function: i.function ?? '',
          payload: i.payload ?? emptyBytes,
          contentType: i.contentType ?? '',
          timeoutMs: i.timeoutMs ?? 0,
          jobTopic: i.jobTopic ?? '',
          metadata: copyMetadata(i.metadata),
        },
      };
    }
    case 'cancel': return { id, kind: 'cancel', targetId: m.cancel!.targetId ?? 0 };
    case 'subscribe': {
      const s = m.subscribe!;
      return { id, kind: 'subscribe', topic: s.topic ?? '', recover: s.recover ?? false, since: position(s.since) };
    }
    case 'unsubscribe': return { id, kind: 'unsubscribe', topic: m.unsubscribe!.topic ?? '' };
    case 'publish': {
      const p = m.publish!;
      return { id, kind: 'publish', topic: p.topic ?? '', payload: p.payload ?? emptyBytes, contentType: p.contentType ?? '' };
    }
    case 'ping': return { id, kind: 'ping', clientTimeMs: Number(m.ping!.clientTimeMs ?? 0) };
    case 'refresh': return { id, kind: 'refresh', token: m.refresh!.token ?? '' };
    default: return { id, kind: 'none' };
  }
}

function copyMetadata(source: Record<string, string> | null | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  if (source) for (const key of Object.keys(source)) out[key] = source[key]!;
  return out;
}

/** Encodes a ServerFrame for the binary subprotocol. */
export function encodeServerFrame(frame: ServerFrame): Uint8Array {
  return pb.ServerFrame.encode(frame as relaygate.v1.IServerFrame).finish();
}

/** Decodes a binary ServerFrame (clients and tests), normalized like the JSON form's values. */
export function decodeServerFrame(bytes: Uint8Array): relaygate.v1.ServerFrame {
  return pb.ServerFrame.decode(bytes);
}

/** Encodes a ClientFrame for the binary subprotocol (clients, tools and tests). */
export function encodeClientFrame(frame: relaygate.v1.IClientFrame): Uint8Array {
  return pb.ClientFrame.encode(frame).finish();
}

/** An Event as Redis carries it (spec section 7): the protobuf-encoded `Event` message. */
export function encodeEvent(event: EventBody): Uint8Array {
  return pb.Event.encode(event as relaygate.v1.IEvent).finish();
}

/** Decodes a protobuf Event; throws DecodeError when malformed. */
export function decodeEvent(bytes: Uint8Array): EventBody {
  try {
    const e = pb.Event.decode(bytes);
    return {
      topic: e.topic ?? '',
      payload: e.payload ?? emptyBytes,
      contentType: e.contentType ?? '',
      position: position(e.position),
      publishedMs: Number(e.publishedMs ?? 0),
    };
  } catch (err) {
    throw new DecodeError(`malformed event: ${(err as Error).message}`, 0);
  }
}

/** Encodes one NodeFrame (without its length prefix). */
export function encodeNodeFrame(frame: NodeFrame): Uint8Array {
  return pb.NodeFrame.encode(frame as relaygate.v1.INodeFrame).finish();
}

/** Decodes one NodeFrame (without its length prefix); throws DecodeError when malformed or empty. */
export function decodeNodeFrame(bytes: Uint8Array): NodeFrame {
  let m: relaygate.v1.NodeFrame;
  try {
    m = pb.NodeFrame.decode(bytes);
  } catch (err) {
    throw new DecodeError(`malformed node frame: ${(err as Error).message}`, 0);
  }
  switch (m.body) {
    case 'progress': return { progress: { fraction: m.progress!.fraction ?? 0, payload: m.progress!.payload ?? emptyBytes } };
    case 'result': {
      const r = m.result!;
      return { result: { payload: r.payload ?? emptyBytes, contentType: r.contentType ?? '', nodeId: r.nodeId ?? '', durationMs: r.durationMs ?? 0 } };
    }
    case 'error': return { error: { code: m.error!.code ?? 2, message: m.error!.message ?? '', retryAfterMs: m.error!.retryAfterMs ?? 0 } };
    default: throw new DecodeError('node frame carries no body', 0);
  }
}

// ---------------------------------------------------------------------------------------------
// JSON subprotocol: the proto3 canonical JSON mapping, parsed strictly. Unknown fields, wrong
// types, two oneof members and non-canonical values are rejected rather than guessed at.

type FieldType = 'string' | 'bytes' | 'bool' | 'uint32' | 'int64' | 'uint64' | 'map' | MessageSchema;
interface MessageSchema { readonly [jsonName: string]: readonly [protoName: string, type: FieldType] }

const positionSchema: MessageSchema = { offset: ['offset', 'uint64'], epoch: ['epoch', 'string'] };
const clientBodies: Record<string, MessageSchema> = {
  invoke: {
    function: ['function', 'string'], payload: ['payload', 'bytes'], contentType: ['content_type', 'string'],
    timeoutMs: ['timeout_ms', 'uint32'], jobTopic: ['job_topic', 'string'], metadata: ['metadata', 'map'],
  },
  cancel: { targetId: ['target_id', 'uint32'] },
  subscribe: { topic: ['topic', 'string'], recover: ['recover', 'bool'], since: ['since', positionSchema] },
  unsubscribe: { topic: ['topic', 'string'] },
  publish: { topic: ['topic', 'string'], payload: ['payload', 'bytes'], contentType: ['content_type', 'string'] },
  ping: { clientTimeMs: ['client_time_ms', 'int64'] },
  refresh: { token: ['token', 'string'] },
};

const base64Pattern = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class JsonShapeError extends Error {}

function readValue(type: FieldType, value: unknown, path: string): unknown {
  if (value === null) return undefined; // proto3 JSON: null means the default
  const fail = (what: string): never => { throw new JsonShapeError(`${path}: ${what}`); };
  if (typeof type === 'object') {
    if (!isPlainObject(value)) fail('must be an object');
    return readMessage(type, value as Record<string, unknown>, path);
  }
  switch (type) {
    case 'string':
      if (typeof value !== 'string') fail('must be a string');
      return value;
    case 'bool':
      if (typeof value !== 'boolean') fail('must be true or false');
      return value;
    case 'bytes': {
      if (typeof value !== 'string' || !base64Pattern.test(value)) fail('must be base64');
      return new Uint8Array(Buffer.from(value as string, 'base64'));
    }
    case 'uint32':
    case 'int64':
    case 'uint64': {
      const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) fail('must be an integer');
      const num = n as number;
      if (type === 'uint32' && (num < 0 || num > 0xffffffff)) fail('out of range for uint32');
      if (type === 'uint64' && num < 0) fail('must not be negative');
      return num;
    }
    case 'map': {
      if (!isPlainObject(value)) fail('must be an object of strings');
      const out: Record<string, string> = Object.create(null);
      for (const key of Object.keys(value as object)) {
        const v = (value as Record<string, unknown>)[key];
        if (typeof v !== 'string') fail(`${key} must be a string`);
        out[key] = v as string;
      }
      return out;
    }
  }
}

function readMessage(schema: MessageSchema, obj: Record<string, unknown>, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(obj)) {
    const field: readonly [string, FieldType] | undefined = Object.hasOwn(schema, key) ? [key, schema[key]![1]] : findByProtoName(schema, key);
    if (!field) throw new JsonShapeError(`${path}: unknown field ${JSON.stringify(key.slice(0, 64))}`);
    const [jsonName, type] = field;
    if (out[jsonName] !== undefined) throw new JsonShapeError(`${path}: field ${jsonName} given twice`);
    const v = readValue(type, obj[key], `${path}.${jsonName}`);
    if (v !== undefined) out[jsonName] = v;
  }
  return out;
}

function findByProtoName(schema: MessageSchema, key: string): readonly [string, FieldType] | undefined {
  for (const jsonName of Object.keys(schema)) {
    const [protoName, type] = schema[jsonName]!;
    if (protoName === key) return [jsonName, type];
  }
  return undefined;
}

/** Decodes one JSON ClientFrame (proto3 canonical JSON; original snake_case names also accepted). */
export function decodeClientFrameJson(text: string): ClientFrame {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new DecodeError('malformed frame: not JSON', 0);
  }
  if (!isPlainObject(parsed)) throw new DecodeError('malformed frame: not a JSON object', 0);
  let id = 0;
  try {
    id = parsed.id === undefined || parsed.id === null ? 0 : (readValue('uint32', parsed.id, 'id') as number);
  } catch (err) {
    throw new DecodeError(`malformed frame: ${(err as Error).message}`, 0);
  }
  try {
    let kind: string | undefined;
    let body: Record<string, unknown> | undefined;
    for (const key of Object.keys(parsed)) {
      if (key === 'id') continue;
      const name = key;
      if (!Object.hasOwn(clientBodies, name)) throw new JsonShapeError(`unknown field ${JSON.stringify(key.slice(0, 64))}`);
      if (parsed[key] === null) continue;
      if (kind !== undefined) throw new JsonShapeError(`more than one body (${kind}, ${name})`);
      if (!isPlainObject(parsed[key])) throw new JsonShapeError(`${name}: must be an object`);
      kind = name;
      body = readMessage(clientBodies[name]!, parsed[key] as Record<string, unknown>, name);
    }
    return normalizeJsonBody(id, kind, body ?? {});
  } catch (err) {
    if (err instanceof JsonShapeError) throw new DecodeError(`malformed frame: ${err.message}`, id);
    throw err;
  }
}

function normalizeJsonBody(id: number, kind: string | undefined, b: Record<string, unknown>): ClientFrame {
  const str = (k: string): string => (b[k] as string | undefined) ?? '';
  const num = (k: string): number => (b[k] as number | undefined) ?? 0;
  const bytes = (k: string): Uint8Array => (b[k] as Uint8Array | undefined) ?? emptyBytes;
  switch (kind) {
    case 'invoke': {
      const invoke: InvokeBody = {
        function: str('function'), payload: bytes('payload'), contentType: str('contentType'),
        timeoutMs: num('timeoutMs'), jobTopic: str('jobTopic'),
        metadata: (b.metadata as Record<string, string> | undefined) ?? Object.create(null),
      };
      return { id, kind, invoke };
    }
    case 'cancel': return { id, kind, targetId: num('targetId') };
    case 'subscribe': {
      const since = b.since as Record<string, unknown> | undefined;
      return {
        id, kind, topic: str('topic'), recover: (b.recover as boolean | undefined) ?? false,
        since: since ? { offset: (since.offset as number | undefined) ?? 0, epoch: (since.epoch as string | undefined) ?? '' } : undefined,
      };
    }
    case 'unsubscribe': return { id, kind, topic: str('topic') };
    case 'publish': return { id, kind, topic: str('topic'), payload: bytes('payload'), contentType: str('contentType') };
    case 'ping': return { id, kind, clientTimeMs: num('clientTimeMs') };
    case 'refresh': return { id, kind, token: str('token') };
    default: return { id, kind: 'none' };
  }
}

function base64(bytes: Uint8Array | undefined): string {
  return bytes && bytes.length > 0 ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') : '';
}

/** Drops proto3 defaults, as the canonical JSON mapping does. A string "0" is a value, not a default. */
function compact(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (v === undefined || v === '' || v === 0 || v === false) continue;
    out[key] = v;
  }
  return out;
}

/** A 64-bit integer in canonical JSON: a decimal string, or undefined (omitted) for 0. */
function int64(n: number | undefined): string | undefined {
  return n ? String(n) : undefined;
}

function positionJson(p: StreamPosition | undefined): Record<string, unknown> | undefined {
  return p ? compact({ offset: int64(p.offset), epoch: p.epoch }) : undefined;
}

/** The canonical JSON object of a ServerFrame (64-bit integers as strings, bytes as base64). */
export function serverFrameToJson(frame: ServerFrame): Record<string, unknown> {
  const out: Record<string, unknown> = frame.id ? { id: frame.id } : {};
  if ('welcome' in frame) {
    const w = frame.welcome;
    out.welcome = compact({
      sessionId: w.sessionId, gatewayId: w.gatewayId, serverTimeMs: int64(w.serverTimeMs),
      maxFrameBytes: w.maxFrameBytes, maxInFlight: w.maxInFlight, tokenExpiresMs: int64(w.tokenExpiresMs),
    });
  } else if ('result' in frame) {
    const r = frame.result;
    out.result = compact({ payload: base64(r.payload), contentType: r.contentType, nodeId: r.nodeId, durationMs: r.durationMs });
  } else if ('progress' in frame) {
    out.progress = compact({ fraction: frame.progress.fraction, payload: base64(frame.progress.payload) });
  } else if ('event' in frame) {
    const e = frame.event;
    out.event = compact({
      topic: e.topic, payload: base64(e.payload), contentType: e.contentType,
      position: positionJson(e.position), publishedMs: int64(e.publishedMs),
    });
  } else if ('error' in frame) {
    const e = frame.error;
    out.error = compact({ code: codeName(e.code), message: e.message, retryAfterMs: e.retryAfterMs });
  } else if ('ack' in frame) {
    const a = frame.ack;
    out.ack = compact({ position: positionJson(a.position), replayed: a.replayed, recovered: a.recovered });
  } else if ('pong' in frame) {
    out.pong = compact({ clientTimeMs: int64(frame.pong.clientTimeMs), serverTimeMs: int64(frame.pong.serverTimeMs) });
  } else if ('goAway' in frame) {
    out.goAway = compact({ reconnectWithinMs: frame.goAway.reconnectWithinMs, reason: frame.goAway.reason });
  }
  return out;
}

/** Encodes a ServerFrame for the JSON subprotocol. */
export function encodeServerFrameJson(frame: ServerFrame): string {
  return JSON.stringify(serverFrameToJson(frame));
}

/** Encodes a frame in the connection's subprotocol. */
export function encodeFor(subprotocol: Subprotocol, frame: ServerFrame): Uint8Array | string {
  return subprotocol === 'proto' ? encodeServerFrame(frame) : encodeServerFrameJson(frame);
}

/** Parses the JSON code name used in HTTP error bodies back to a number (UNKNOWN when unrecognised). */
export function codeFromJsonName(name: string): number {
  return codeFromName(name) ?? 2;
}
