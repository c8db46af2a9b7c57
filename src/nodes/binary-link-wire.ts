// One node-link connection's byte handling, shared by the gateway and node sides: incoming bytes
// become decoded frames; outgoing frames are batched per event-loop turn into one socket write,
// and held back (still provably unsent) while the socket's buffer is full.
import type { Socket } from 'node:net';
import { decodeLinkFrame, encodeLinkChunks, type LinkMessage } from '../protocol/link-codec.js';
import { FrameParser, TurnBatch } from '../protocol/link-framing.js';

export interface LinkWireOptions {
  /** Largest incoming frame; a bigger one closes the connection. */
  readonly maxFrameBytes: number;
  /** Stop reading while our writes are blocked, so a peer that floods requests meets backpressure (node side). */
  readonly pauseReadsWhileBlocked: boolean;
  onMessage(message: LinkMessage): void;
  /** Called once when the connection ends; `err` when it ended by a failure (protocol or socket). */
  onClose(err: Error | undefined): void;
}

/** A framed, batched link connection over a connected socket. */
export class LinkWire {
  private readonly batch: TurnBatch<LinkMessage>;
  private readonly parser: FrameParser;
  private closed = false;
  private failure: Error | undefined;

  constructor(readonly socket: Socket, private readonly opts: LinkWireOptions) {
    socket.setNoDelay(true);
    // TCP keepalive catches a peer that vanished without a FIN even on an idle connection.
    socket.setKeepAlive(true, 10_000);
    this.batch = new TurnBatch((items) => this.flush(items));
    this.parser = new FrameParser(opts.maxFrameBytes, (frame) => {
      if (!this.closed) opts.onMessage(decodeLinkFrame(frame));
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      try {
        this.parser.push(chunk);
      } catch (err) {
        this.destroy(err as Error);
      }
    });
    socket.on('error', (err) => { this.failure ??= err; });
    socket.on('close', () => this.finish());
    socket.on('end', () => { this.failure ??= new Error('peer closed the link'); socket.end(); });
  }

  /** True until the connection ends. */
  get open(): boolean {
    return !this.closed;
  }

  /** Queues a frame for this turn's write. */
  send(message: LinkMessage): void {
    if (!this.closed) this.batch.push(message);
  }

  /** Withdraws a queued frame; true when it had not reached the socket yet. */
  withdraw(message: LinkMessage): boolean {
    return this.batch.remove(message);
  }

  /** True while `message` waits in the batch (never written to the socket). */
  unsent(message: LinkMessage): boolean {
    return this.batch.has(message);
  }

  /** Ends the connection at once (queued frames are dropped, unsent). */
  destroy(err?: Error): void {
    if (err) this.failure ??= err;
    this.socket.destroy();
    this.finish();
  }

  /** Writes what is queued, then half-closes. */
  end(): void {
    const items = this.batch.takeAll();
    if (items.length > 0 && !this.closed) this.write(items);
    this.socket.end();
  }

  private flush(items: LinkMessage[]): void {
    if (this.closed) return;
    if (this.write(items)) return;
    this.batch.pause();
    if (this.opts.pauseReadsWhileBlocked) this.socket.pause();
    this.socket.once('drain', () => {
      if (this.opts.pauseReadsWhileBlocked) this.socket.resume();
      this.batch.resume();
    });
  }

  /** One write per batch; large payloads go out as their own chunks of it (corked: one writev). */
  private write(items: LinkMessage[]): boolean {
    const chunks = encodeLinkChunks(items);
    if (chunks.length === 1) return this.socket.write(chunks[0]!);
    this.socket.cork();
    let ok = true;
    for (const chunk of chunks) ok = this.socket.write(chunk);
    this.socket.uncork();
    return ok;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.opts.onClose(this.failure);
  }
}
