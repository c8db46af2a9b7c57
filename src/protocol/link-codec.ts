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

/**
 * Encodes frames, each varint-length-prefixed, into one buffer (one socket write). Payload
 * bytes are copied once, straight into the output.
 */
export function encodeLinkBatch(frames: readonly LinkMessage[]): Buffer {
  const w = protobuf.Writer.create();
  for (const f of frames) pb.LinkFrame.encodeDelimited(f as relaygate.v1.ILinkFrame, w);
  return w.finish() as Buffer;
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
