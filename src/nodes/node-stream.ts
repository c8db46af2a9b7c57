// The streaming reply of a compute node (spec section 6, content-type application/x-relaygate-stream):
// varint-length-delimited NodeFrame messages. Pure: the HTTP link feeds it chunks as they arrive.
import { Code, GatewayError } from '../errors.js';
import { decodeNodeFrame, encodeNodeFrame } from '../protocol/codec.js';
import type { NodeFrame } from '../protocol/frames.js';
import { FrameParser, FramingError, varintSize } from '../protocol/link-framing.js';

/** Content type of a streaming node reply. */
export const NODE_STREAM_CONTENT_TYPE = 'application/x-relaygate-stream';

/** Largest single NodeFrame a gateway accepts from a node stream unless configured otherwise. */
export const defaultNodeFrameLimit = 64 * 1024 * 1024;

/** What the decoder reports; exactly one terminal (result or error) per stream, nothing after it. */
export interface NodeStreamSink {
  progress(fraction: number, payload: Uint8Array): void;
  terminal(frame: Exclude<NodeFrame, { progress: unknown }>): void;
}

/**
 * Incremental decoder of one node stream. `push` accepts chunks cut anywhere; `end` checks the
 * stream was complete. Any violation (oversized or malformed frame, data after the terminal frame,
 * a stream ending without one) throws a GatewayError INTERNAL; the caller then ends the call.
 */
export class NodeStreamDecoder {
  private readonly parser: FrameParser;
  private finished = false;
  private failure: GatewayError | undefined;

  constructor(private readonly sink: NodeStreamSink, maxFrameBytes = defaultNodeFrameLimit) {
    this.parser = new FrameParser(maxFrameBytes, (frame) => this.frame(frame));
  }

  /** True once the Result or Error frame arrived. */
  get complete(): boolean {
    return this.finished;
  }

  /** Bytes held for a frame not yet complete. */
  get pendingBytes(): number {
    return this.parser.pendingBytes;
  }

  /** Feeds the next chunk of the body. */
  push(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    try {
      this.parser.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (err) {
      throw this.fail(err instanceof GatewayError ? err : streamError(err instanceof FramingError ? err.message : 'malformed stream', err));
    }
  }

  /** The body ended: throws unless it ended cleanly right after its terminal frame. */
  end(): void {
    if (this.failure) throw this.failure;
    if (this.parser.pendingBytes > 0) throw this.fail(streamError(`stream truncated inside a frame (${this.parser.pendingBytes} bytes pending)`));
    if (!this.finished) throw this.fail(streamError('stream ended without a result or error'));
  }

  private frame(bytes: Uint8Array): void {
    if (this.finished) throw streamError('data after the terminal frame');
    let frame: NodeFrame;
    try {
      frame = decodeNodeFrame(bytes);
    } catch (err) {
      throw streamError((err as Error).message, err);
    }
    if ('progress' in frame) {
      const fraction = frame.progress.fraction;
      this.sink.progress(Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0, frame.progress.payload ?? new Uint8Array(0));
      return;
    }
    this.finished = true;
    this.sink.terminal(frame);
  }

  private fail(err: GatewayError): GatewayError {
    this.failure = err;
    return err;
  }
}

function streamError(message: string, cause?: unknown): GatewayError {
  return new GatewayError(Code.INTERNAL, `node stream: ${message}`, cause === undefined ? {} : { cause });
}

/** One NodeFrame with its varint length prefix, ready to write to a streaming reply. */
export function encodeDelimitedNodeFrame(frame: NodeFrame): Buffer {
  const body = encodeNodeFrame(frame);
  const out = Buffer.allocUnsafe(varintSize(body.length) + body.length);
  let n = body.length;
  let pos = 0;
  while (n >= 0x80) {
    out[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  out.set(body, pos);
  return out;
}
