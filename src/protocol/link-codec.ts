// Encode/decode of node-link frames (proto/relaygate/v1/link.proto) as plain values. With
// codec.ts, the only importers of generated code: the rest of the product sees these types.
import protobuf from 'protobufjs/minimal.js';
import { relaygate } from '../gen/relaygate.js';
import { DecodeError } from './codec.js';
import type { ErrorBody, ProgressBody, ResultBody } from './frames.js';

const pb = relaygate.v1;
const emptyBytes = Buffer.alloc(0);

/** The link protocol version this build speaks; see docs/protocol.md "Node link" for the rule. */
export const linkProtocolVersion = 1;

export interface LinkHelloBody {
  version: number;
  nodeId?: string;
  functions?: string[];
  weight?: number;
  maxInFlight?: number;
  maxFrameBytes?: number;
  gatewayId?: string;
  draining?: boolean;
}

export interface LinkRequestBody {
  function: string;
  payload: Uint8Array;
  contentType: string;
  deadlineMs: number;
  subject: string;
  tenant: string;
  metadata: Record<string, string>;
  requestId: string;
}

/** One decoded or to-be-encoded link frame: the request id (0 for link-level frames) plus one body. */
export type LinkMessage = { id: number } & (
  | { hello: LinkHelloBody }
  | { request: LinkRequestBody }
  | { progress: ProgressBody }
  | { result: ResultBody }
  | { error: ErrorBody }
  | { cancel: Record<string, never> }
  | { drain: { reason: string } }
  | { ping: { nonce: number } }
  | { pong: { nonce: number } }
);

/** Payloads at least this large travel as they are, beside the encoded frames, instead of being copied into them. */
export const directPayloadBytes = 8 * 1024;

/** For each body that carries a payload: its field number in LinkFrame, and the payload's field number in it. */
const payloadCarriers = {
  request: { bodyField: 3, payloadField: 2, type: pb.LinkRequest },
  progress: { bodyField: 4, payloadField: 2, type: pb.Progress },
  result: { bodyField: 5, payloadField: 1, type: pb.Result },
} as const;

type PayloadKind = keyof typeof payloadCarriers;

function largePayload(frame: LinkMessage, direct: number): PayloadKind | undefined {
  if ('request' in frame) return frame.request.payload.length >= direct ? 'request' : undefined;
  if ('result' in frame) return frame.result.payload.length >= direct ? 'result' : undefined;
  if ('progress' in frame) return (frame.progress.payload?.length ?? 0) >= direct ? 'progress' : undefined;
  return undefined;
}

function sizeVarint(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/**
 * Encodes frames, each varint-length-prefixed, as the chunks of one socket write. Small frames
 * share one buffer; a payload of `direct` bytes or more is not copied: its frame's other fields
 * are encoded first and the payload itself follows as its own chunk (a view of the caller's
 * bytes, which must not change until written). Protobuf readers accept fields in any order.
 */
export function encodeLinkChunks(frames: readonly LinkMessage[], direct = directPayloadBytes): Buffer[] {
  const chunks: Buffer[] = [];
  let w = protobuf.Writer.create();
  for (const f of frames) {
    const kind = largePayload(f, direct);
    if (!kind) {
      pb.LinkFrame.encodeDelimited(f as relaygate.v1.ILinkFrame, w);
      continue;
    }
    const carrier = payloadCarriers[kind];
    const body = (f as unknown as Record<PayloadKind, { payload: Uint8Array }>)[kind];
    const payload = body.payload;
    const rest = carrier.type.encode({ ...body, payload: undefined } as never).finish();
    const payloadTag = (carrier.payloadField << 3) | 2;
    const bodyLen = rest.length + sizeVarint(payloadTag) + sizeVarint(payload.length) + payload.length;
    const bodyTag = (carrier.bodyField << 3) | 2;
    const idLen = f.id ? 1 + sizeVarint(f.id) : 0;
    w.uint32(idLen + sizeVarint(bodyTag) + sizeVarint(bodyLen) + bodyLen);
    if (f.id) w.uint32(8).uint32(f.id);
    w.uint32(bodyTag).uint32(bodyLen).raw(rest).uint32(payloadTag).uint32(payload.length);
    chunks.push(w.finish(true) as Buffer, Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
    w = protobuf.Writer.create();
  }
  if (w.pos > 0) chunks.push(w.finish(true) as Buffer);
  return chunks;
}

/** Bytes a string field may take at most (UTF-8) plus its tag and length. */
function stringBound(text: string): number {
  return text.length * 3 + 6;
}

/**
 * An upper bound of a frame's encoded size, cheap to compute: checked against the peer's
 * announced limit before sending, so one oversized answer fails alone instead of closing a
 * connection that carries other calls.
 */
export function linkFrameSizeBound(frame: LinkMessage): number {
  let n = 32;
  if ('request' in frame) {
    const r = frame.request;
    n += r.payload.length + stringBound(r.function) + stringBound(r.contentType) + stringBound(r.subject) + stringBound(r.tenant) + stringBound(r.requestId);
    for (const key in r.metadata) n += stringBound(key) + stringBound(r.metadata[key]!) + 6;
  } else if ('result' in frame) {
    const r = frame.result;
    n += r.payload.length + stringBound(r.contentType ?? '') + stringBound(r.nodeId ?? '');
  } else if ('progress' in frame) {
    n += frame.progress.payload?.length ?? 0;
  } else if ('error' in frame) {
    n += stringBound(frame.error.message);
  }
  return n;
}

/** Encodes frames, each varint-length-prefixed, into one buffer. */
export function encodeLinkBatch(frames: readonly LinkMessage[]): Buffer {
  const chunks = encodeLinkChunks(frames, Infinity);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** Encodes one frame with its length prefix. */
export function encodeLinkFrame(frame: LinkMessage): Buffer {
  return encodeLinkBatch([frame]);
}

/**
 * Decodes one frame (without its length prefix). Bytes fields are views into `bytes`.
 * Throws DecodeError when malformed or carrying no body.
 */
export function decodeLinkFrame(bytes: Buffer): LinkMessage {
  let m: relaygate.v1.LinkFrame;
  try {
    m = pb.LinkFrame.decode(bytes);
  } catch (err) {
    throw new DecodeError(`malformed link frame: ${(err as Error).message}`, 0);
  }
  const id = m.id ?? 0;
  switch (m.body) {
    case 'request': {
      const r = m.request!;
      return {
        id,
        request: {
          function: r.function ?? '',
          payload: r.payload ?? emptyBytes,
          contentType: r.contentType ?? '',
          deadlineMs: r.deadlineMs ?? 0,
          subject: r.subject ?? '',
          tenant: r.tenant ?? '',
          metadata: copyMap(r.metadata),
          requestId: r.requestId ?? '',
        },
      };
    }
    case 'progress': return { id, progress: { fraction: m.progress!.fraction ?? 0, payload: m.progress!.payload ?? emptyBytes } };
    case 'result': {
      const r = m.result!;
      return { id, result: { payload: r.payload ?? emptyBytes, contentType: r.contentType ?? '', nodeId: r.nodeId ?? '', durationMs: r.durationMs ?? 0 } };
    }
    case 'error': return { id, error: { code: m.error!.code ?? 2, message: m.error!.message ?? '', retryAfterMs: m.error!.retryAfterMs ?? 0 } };
    case 'cancel': return { id, cancel: {} };
    case 'ping': return { id, ping: { nonce: m.ping!.nonce ?? 0 } };
    case 'pong': return { id, pong: { nonce: m.pong!.nonce ?? 0 } };
    case 'drain': return { id, drain: { reason: m.drain!.reason ?? '' } };
    case 'hello': {
      const h = m.hello!;
      return {
        id,
        hello: {
          version: h.version ?? 0,
          nodeId: h.nodeId ?? '',
          functions: h.functions ? [...h.functions] : [],
          weight: h.weight ?? 0,
          maxInFlight: h.maxInFlight ?? 0,
          maxFrameBytes: h.maxFrameBytes ?? 0,
          gatewayId: h.gatewayId ?? '',
          draining: h.draining ?? false,
        },
      };
    }
    default: throw new DecodeError('link frame carries no body', id);
  }
}

function copyMap(source: Record<string, string> | null | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  if (source) for (const key of Object.keys(source)) out[key] = source[key]!;
  return out;
}
