// The client's side of the v1 frames: encodes ClientFrames and decodes ServerFrames, in both
// subprotocols, into plain values with every default filled in. Pure, no I/O.
import { codeFromName, Code } from '../errors.js';
import { decodeServerFrame, encodeClientFrame, type Subprotocol } from '../protocol/codec.js';
import type { ClientFrame, GoAwayBody, PongBody, StreamPosition, WelcomeBody } from '../protocol/frames.js';

export type { StreamPosition };

/** The gateway's first frame: session id, limits, credential expiry. */
export type Welcome = WelcomeBody;
export interface Result { payload: Uint8Array; contentType: string; nodeId: string; durationMs: number }
export interface Progress { fraction: number; payload: Uint8Array }
export interface Event {
  topic: string;
  payload: Uint8Array;
  contentType: string;
  /** Set when the topic keeps history. */
  position: StreamPosition | undefined;
  publishedMs: number;
}
export interface Ack { position: StreamPosition | undefined; replayed: number; recovered: boolean }
export type Pong = PongBody;
export type GoAway = GoAwayBody;
export interface ErrorReply { code: number; message: string; retryAfterMs: number }

/** A decoded ServerFrame: its id plus exactly one body, or kind 'none' for a body this client does not know. */
export type ServerMessage = { id: number } & (
  | { kind: 'welcome'; welcome: Welcome }
  | { kind: 'result'; result: Result }
  | { kind: 'progress'; progress: Progress }
  | { kind: 'event'; event: Event }
  | { kind: 'error'; error: ErrorReply }
  | { kind: 'ack'; ack: Ack }
  | { kind: 'pong'; pong: Pong }
  | { kind: 'goAway'; goAway: GoAway }
  | { kind: 'none' }
);

/** A server frame this client cannot read. */
export class ServerFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServerFrameError';
  }
}

const empty = new Uint8Array(0);

// ---------------------------------------------------------------------------------------------
// Encoding ClientFrames

function protoBody(frame: ClientFrame): Record<string, unknown> {
  switch (frame.kind) {
    case 'invoke': return { invoke: { ...frame.invoke } };
    case 'cancel': return { cancel: { targetId: frame.targetId } };
    case 'subscribe': return { subscribe: { topic: frame.topic, recover: frame.recover, ...(frame.since ? { since: { ...frame.since } } : {}) } };
    case 'unsubscribe': return { unsubscribe: { topic: frame.topic } };
    case 'publish': return { publish: { topic: frame.topic, payload: frame.payload, contentType: frame.contentType } };
    case 'ping': return { ping: { clientTimeMs: frame.clientTimeMs } };
    case 'refresh': return { refresh: { token: frame.token } };
    case 'none': return {};
  }
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Drops proto3 defaults, as the canonical JSON mapping does. A string "0" is a value, not a default. */
function compact(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(obj)) {
    if (v === undefined || v === '' || v === 0 || v === false) continue;
    out[key] = v;
  }
  return out;
}

function positionJson(p: StreamPosition | undefined): Record<string, unknown> | undefined {
  return p ? compact({ offset: p.offset ? String(p.offset) : undefined, epoch: p.epoch }) : undefined;
}

function jsonBody(frame: ClientFrame): Record<string, unknown> {
  switch (frame.kind) {
    case 'invoke': {
      const i = frame.invoke;
      return { invoke: compact({ function: i.function, payload: base64(i.payload), contentType: i.contentType, timeoutMs: i.timeoutMs, jobTopic: i.jobTopic, metadata: Object.keys(i.metadata).length > 0 ? { ...i.metadata } : undefined }) };
    }
    case 'cancel': return { cancel: compact({ targetId: frame.targetId }) };
    case 'subscribe': return { subscribe: compact({ topic: frame.topic, recover: frame.recover, since: positionJson(frame.since) }) };
    case 'unsubscribe': return { unsubscribe: compact({ topic: frame.topic }) };
    case 'publish': return { publish: compact({ topic: frame.topic, payload: base64(frame.payload), contentType: frame.contentType }) };
    case 'ping': return { ping: compact({ clientTimeMs: frame.clientTimeMs ? String(frame.clientTimeMs) : undefined }) };
    case 'refresh': return { refresh: compact({ token: frame.token }) };
    case 'none': return {};
  }
}

/** Encodes a ClientFrame for `subprotocol`: bytes for proto, text for json. */
export function encodeRequest(subprotocol: Subprotocol, frame: ClientFrame): Uint8Array | string {
  if (subprotocol === 'proto') return encodeClientFrame({ id: frame.id, ...protoBody(frame) });
  return JSON.stringify({ id: frame.id, ...jsonBody(frame) });
}

// ---------------------------------------------------------------------------------------------
// Decoding ServerFrames

type Pb = ReturnType<typeof decodeServerFrame>;

function pbPosition(p: { offset?: number | null; epoch?: string | null } | null | undefined): StreamPosition | undefined {
  return p ? { offset: Number(p.offset ?? 0), epoch: p.epoch ?? '' } : undefined;
}

function fromProto(m: Pb): ServerMessage {
  const id = m.id ?? 0;
  switch (m.body) {
    case 'welcome': {
      const w = m.welcome!;
      return {
        id, kind: 'welcome',
        welcome: {
          sessionId: w.sessionId ?? '', gatewayId: w.gatewayId ?? '', serverTimeMs: Number(w.serverTimeMs ?? 0),
          maxFrameBytes: w.maxFrameBytes ?? 0, maxInFlight: w.maxInFlight ?? 0, tokenExpiresMs: Number(w.tokenExpiresMs ?? 0),
        },
      };
    }
    case 'result': {
      const r = m.result!;
      return { id, kind: 'result', result: { payload: r.payload ?? empty, contentType: r.contentType ?? '', nodeId: r.nodeId ?? '', durationMs: r.durationMs ?? 0 } };
    }
    case 'progress': return { id, kind: 'progress', progress: { fraction: m.progress!.fraction ?? 0, payload: m.progress!.payload ?? empty } };
    case 'event': {
      const e = m.event!;
      return {
        id, kind: 'event',
        event: { topic: e.topic ?? '', payload: e.payload ?? empty, contentType: e.contentType ?? '', position: pbPosition(e.position), publishedMs: Number(e.publishedMs ?? 0) },
      };
    }
    case 'error': {
      const e = m.error!;
      return { id, kind: 'error', error: { code: e.code ?? Code.UNKNOWN, message: e.message ?? '', retryAfterMs: e.retryAfterMs ?? 0 } };
    }
    case 'ack': {
      const a = m.ack!;
      return { id, kind: 'ack', ack: { position: pbPosition(a.position), replayed: a.replayed ?? 0, recovered: a.recovered ?? false } };
    }
    case 'pong': return { id, kind: 'pong', pong: { clientTimeMs: Number(m.pong!.clientTimeMs ?? 0), serverTimeMs: Number(m.pong!.serverTimeMs ?? 0) } };
    case 'goAway': return { id, kind: 'goAway', goAway: { reconnectWithinMs: m.goAway!.reconnectWithinMs ?? 0, reason: m.goAway!.reason ?? '' } };
    default: return { id, kind: 'none' };
  }
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown, field: string): number {
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new ServerFrameError(`${field} is not a number`);
  return n;
}

function str(v: unknown, field: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new ServerFrameError(`${field} is not a string`);
  return v;
}

function bytes(v: unknown, field: string): Uint8Array {
  if (v === undefined || v === null || v === '') return empty;
  if (typeof v !== 'string') throw new ServerFrameError(`${field} is not base64`);
  return new Uint8Array(Buffer.from(v, 'base64'));
}

function jsonPosition(v: unknown): StreamPosition | undefined {
  if (!isObject(v)) return undefined;
  return { offset: num(v.offset, 'position.offset'), epoch: str(v.epoch, 'position.epoch') };
}

function body(o: Json, name: string): Json {
  const b = o[name];
  if (!isObject(b)) throw new ServerFrameError(`${name} is not an object`);
  return b;
}

const serverBodies = ['welcome', 'result', 'progress', 'event', 'error', 'ack', 'pong', 'goAway'] as const;

function fromJson(text: string): ServerMessage {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new ServerFrameError('not JSON');
  }
  if (!isObject(o)) throw new ServerFrameError('not a JSON object');
  const id = num(o.id, 'id');
  const kind = serverBodies.find((k) => Object.hasOwn(o, k) && o[k] !== null);
  switch (kind) {
    case 'welcome': {
      const w = body(o, kind);
      return {
        id, kind,
        welcome: {
          sessionId: str(w.sessionId, 'sessionId'), gatewayId: str(w.gatewayId, 'gatewayId'), serverTimeMs: num(w.serverTimeMs, 'serverTimeMs'),
          maxFrameBytes: num(w.maxFrameBytes, 'maxFrameBytes'), maxInFlight: num(w.maxInFlight, 'maxInFlight'), tokenExpiresMs: num(w.tokenExpiresMs, 'tokenExpiresMs'),
        },
      };
    }
    case 'result': {
      const r = body(o, kind);
      return { id, kind, result: { payload: bytes(r.payload, 'payload'), contentType: str(r.contentType, 'contentType'), nodeId: str(r.nodeId, 'nodeId'), durationMs: num(r.durationMs, 'durationMs') } };
    }
    case 'progress': {
      const p = body(o, kind);
      return { id, kind, progress: { fraction: num(p.fraction, 'fraction'), payload: bytes(p.payload, 'payload') } };
    }
    case 'event': {
      const e = body(o, kind);
      return {
        id, kind,
        event: { topic: str(e.topic, 'topic'), payload: bytes(e.payload, 'payload'), contentType: str(e.contentType, 'contentType'), position: jsonPosition(e.position), publishedMs: num(e.publishedMs, 'publishedMs') },
      };
    }
    case 'error': {
      const e = body(o, kind);
      const code = typeof e.code === 'string' ? codeFromName(e.code) ?? Code.UNKNOWN : num(e.code, 'code');
      return { id, kind, error: { code, message: str(e.message, 'message'), retryAfterMs: num(e.retryAfterMs, 'retryAfterMs') } };
    }
    case 'ack': {
      const a = body(o, kind);
      return { id, kind, ack: { position: jsonPosition(a.position), replayed: num(a.replayed, 'replayed'), recovered: a.recovered === true } };
    }
    case 'pong': {
      const p = body(o, kind);
      return { id, kind, pong: { clientTimeMs: num(p.clientTimeMs, 'clientTimeMs'), serverTimeMs: num(p.serverTimeMs, 'serverTimeMs') } };
    }
    case 'goAway': {
      const g = body(o, kind);
      return { id, kind, goAway: { reconnectWithinMs: num(g.reconnectWithinMs, 'reconnectWithinMs'), reason: str(g.reason, 'reason') } };
    }
    default: return { id, kind: 'none' };
  }
}

/** Decodes one ServerFrame in `subprotocol`; throws ServerFrameError when it cannot be read. */
export function decodeReply(subprotocol: Subprotocol, data: Uint8Array | string): ServerMessage {
  if (subprotocol === 'json') return fromJson(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  if (typeof data === 'string') throw new ServerFrameError('text frame on the binary subprotocol');
  try {
    return fromProto(decodeServerFrame(data));
  } catch (err) {
    throw new ServerFrameError(`malformed frame: ${(err as Error).message}`);
  }
}
