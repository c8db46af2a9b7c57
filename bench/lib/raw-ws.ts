// A WebSocket client connection on a raw TCP socket: one HTTP upgrade, then frames through
// FrameReader. No per-message objects: callers get views of the received bytes and write
// batches they assemble themselves. Pings are answered; a close frame ends the socket.
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { FrameReader, Opcode, maskedFrame } from './wire.js';

export interface RawWsOptions {
  host: string;
  port: number;
  path: string;
  /** Sec-WebSocket-Protocol to offer; none when undefined. */
  protocol?: string;
  /** Extra request headers, e.g. authorization. */
  headers?: Record<string, string>;
  /** Loopback source address to spread connections over (each has its own ephemeral ports). */
  localAddress?: string | undefined;
  /** Source port (with localAddress): no kernel search for a free port, which gets slow with many sockets. */
  localPort?: number | undefined;
}

export interface RawWsHandlers {
  /** The upgrade succeeded; frames may be sent. */
  open(conn: RawWs): void;
  /** One complete data message; the bytes are valid only during the call. */
  message(conn: RawWs, opcode: number, buf: Buffer, start: number, end: number): void;
  /** Every frame of one read has been handed out: the moment to flush a batch of sends. */
  drained?(conn: RawWs): void;
  /** The connection ended: `status` is the HTTP status when the upgrade was refused, `code` the close code. */
  closed(conn: RawWs, why: { status?: number; code?: number; error?: string }): void;
}

const key = randomBytes(16).toString('base64');

/** One client connection. `index` and `tag` are free for the caller's bookkeeping. */
export class RawWs {
  readonly socket: Socket;
  readonly mask: Buffer = randomBytes(4);
  open = false;
  private ended = false;
  private reported = false;
  private handshake: Buffer | undefined = Buffer.alloc(0);
  private readonly reader: FrameReader;

  constructor(opts: RawWsOptions, private readonly handlers: RawWsHandlers, readonly index = 0) {
    this.reader = new FrameReader(
      (opcode, buf, start, end) => this.onFrame(opcode, buf, start, end),
      (why) => this.fail({ error: why }),
    );
    const socket = connect({
      host: opts.host, port: opts.port, noDelay: true,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      ...(opts.localPort ? { localPort: opts.localPort } : {}),
    });
    this.socket = socket;
    socket.on('connect', () => {
      let request = `GET ${opts.path} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
        + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
      if (opts.protocol) request += `Sec-WebSocket-Protocol: ${opts.protocol}\r\n`;
      for (const [name, value] of Object.entries(opts.headers ?? {})) request += `${name}: ${value}\r\n`;
      socket.write(request + '\r\n');
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail({ error: err.message }));
    socket.on('close', () => this.fail({ error: 'socket closed' }));
  }

  /** Writes bytes already framed (one or many frames): one syscall per batch. */
  write(bytes: Buffer): void {
    if (!this.ended) this.socket.write(bytes);
  }

  /** Sends a close frame and ends the socket. */
  close(code = 1000): void {
    if (this.ended) return;
    const payload = Buffer.allocUnsafe(2);
    payload.writeUInt16BE(code, 0);
    if (this.open) this.socket.write(maskedFrame(Opcode.close, payload, this.mask));
    this.socket.end();
    this.ended = true;
    this.open = false;
  }

  /** Ends the socket at once, without a close handshake. */
  destroy(): void {
    this.ended = true;
    this.open = false;
    this.socket.destroy();
  }

  /** Ends the socket with a TCP reset: no TIME_WAIT is left holding the source port. */
  reset(): void {
    this.ended = true;
    this.open = false;
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  private onData(chunk: Buffer): void {
    if (this.handshake === undefined) {
      this.reader.push(chunk);
      this.handlers.drained?.(this);
      return;
    }
    const head = this.handshake.length ? Buffer.concat([this.handshake, chunk]) : chunk;
    const endAt = head.indexOf('\r\n\r\n');
    if (endAt < 0) { this.handshake = head; return; }
    this.handshake = undefined;
    const statusLine = head.toString('latin1', 0, head.indexOf('\r\n'));
    const status = Number(statusLine.split(' ')[1]);
    if (status !== 101) { this.fail({ status }); return; }
    this.open = true;
    this.handlers.open(this);
    if (endAt + 4 < head.length) this.reader.push(head.subarray(endAt + 4));
    this.handlers.drained?.(this);
  }

  private onFrame(opcode: number, buf: Buffer, start: number, end: number): void {
    if (opcode === Opcode.ping) { this.write(maskedFrame(Opcode.pong, buf.subarray(start, end), this.mask)); return; }
    if (opcode === Opcode.pong) return;
    if (opcode === Opcode.close) {
      const code = end - start >= 2 ? buf.readUInt16BE(start) : 1005;
      this.fail({ code });
      return;
    }
    this.handlers.message(this, opcode, buf, start, end);
  }

  private fail(why: { status?: number; code?: number; error?: string }): void {
    this.open = false;
    this.ended = true;
    if (!this.socket.destroyed) this.socket.destroy();
    if (this.reported) return;
    this.reported = true;
    this.handlers.closed(this, why);
  }
}
