// A small WebSocket test client over `ws`, speaking both subprotocols, with raw access for bad input.
import WebSocket from 'ws';
import { codeFromName } from '../../src/errors.js';
import { decodeServerFrame, encodeClientFrame, subprotocolNames, type Subprotocol } from '../../src/protocol/codec.js';

/** A received server frame, normalized across subprotocols. Error codes are numbers. */
export interface Received {
  id: number;
  kind: string;
  body: Record<string, unknown>;
}

export interface ConnectOptions {
  token?: string;
  /** Put the token in the access_token query parameter instead of the Authorization header. */
  tokenInQuery?: boolean;
  subprotocol?: Subprotocol;
  /** Raw Sec-WebSocket-Protocol list, overriding `subprotocol`. */
  protocols?: string[];
  origin?: string;
  ca?: string | Buffer;
  headers?: Record<string, string>;
  /** Offer permessage-deflate (off by default). */
  perMessageDeflate?: boolean;
  /** Answer WebSocket pings (on by default); off plays a peer that has gone silent. */
  autoPong?: boolean;
}

function buildUrl(url: string, o: ConnectOptions): string {
  return o.token && o.tokenInQuery ? `${url}?access_token=${encodeURIComponent(o.token)}` : url;
}

function wsOptions(o: ConnectOptions): WebSocket.ClientOptions {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token && !o.tokenInQuery) headers.authorization = `Bearer ${o.token}`;
  return {
    headers, ...(o.origin ? { origin: o.origin } : {}), ...(o.ca ? { ca: o.ca } : {}),
    perMessageDeflate: o.perMessageDeflate ?? false, autoPong: o.autoPong ?? true,
  };
}

/** Normalizes a JSON-subprotocol frame object. */
function fromJson(obj: Record<string, unknown>): Received {
  const id = typeof obj.id === 'number' ? obj.id : 0;
  const kind = Object.keys(obj).find((k) => k !== 'id') ?? 'none';
  const body = { ...((obj[kind] as Record<string, unknown>) ?? {}) };
  if (kind === 'error') body.code = codeFromName(String(body.code)) ?? 2;
  return { id, kind, body };
}

/** Normalizes a binary ServerFrame. */
function fromProto(bytes: Uint8Array): Received {
  const m = decodeServerFrame(bytes);
  const kind = m.body ?? 'none';
  const body = { ...((m as unknown as Record<string, Record<string, unknown>>)[kind] ?? {}) };
  return { id: m.id ?? 0, kind, body };
}

/** Converts a JSON-mapping client frame into the protobufjs shape (bytes as base64 strings decoded). */
function toProtoShape(frame: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...frame };
  for (const kind of ['invoke', 'publish']) {
    const body = out[kind] as Record<string, unknown> | undefined;
    if (body && typeof body.payload === 'string') out[kind] = { ...body, payload: Buffer.from(body.payload, 'base64') };
  }
  return out;
}

/** An open test connection. Frames are queued as they arrive; `next` takes them in order. */
export class TestClient {
  readonly received: Received[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  welcome!: Received;
  /** Close code and reason once closed. */
  closeInfo: { code: number; reason: string } | undefined;
  /** The client-side error that ended the connection, if any. */
  error: Error | undefined;

  private constructor(readonly ws: WebSocket, readonly subprotocol: Subprotocol) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.received.push(isBinary ? fromProto(new Uint8Array(data)) : fromJson(JSON.parse(data.toString('utf8')) as Record<string, unknown>));
      this.wake();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      resolve(this.closeInfo);
      this.wake();
    }));
    ws.on('error', (err) => { this.error = err; });
  }

  /** Opens a connection and waits for its Welcome. */
  static async connect(url: string, o: ConnectOptions = {}): Promise<TestClient> {
    const subprotocol = o.subprotocol ?? 'proto';
    const ws = new WebSocket(buildUrl(url, o), o.protocols ?? [subprotocolNames[subprotocol]], wsOptions(o));
    const client = new TestClient(ws, subprotocol);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
    client.welcome = await client.next();
    if (client.welcome.kind !== 'welcome') throw new Error(`first frame was ${client.welcome.kind}`);
    return client;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Sends a frame given in the JSON mapping (camelCase, bytes as base64), in this connection's subprotocol. */
  send(frame: Record<string, unknown>): void {
    if (this.subprotocol === 'json') this.ws.send(JSON.stringify(frame));
    else this.ws.send(encodeClientFrame(toProtoShape(frame)));
  }

  /** Sends raw bytes or text as one message. */
  sendRaw(data: Uint8Array | string, binary = typeof data !== 'string'): void {
    this.ws.send(data, { binary });
  }

  /** The next frame matching `match` (removed from the queue), waiting up to `timeoutMs`. */
  async next(match: (f: Received) => boolean = () => true, timeoutMs = 10_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex(match);
      if (index >= 0) return this.received.splice(index, 1)[0]!;
        if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`connection closed while waiting for a frame: ${JSON.stringify(this.closeInfo)} ${this.error?.message ?? ''}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /** The next frame answering `id`. */
  reply(id: number, timeoutMs?: number): Promise<Received> {
    return this.next((f) => f.id === id, timeoutMs);
  }

  /** Sends `frame` and waits for the first frame carrying its id. */
  async request(frame: Record<string, unknown> & { id: number }, timeoutMs?: number): Promise<Received> {
    this.send(frame);
    return this.reply(frame.id, timeoutMs);
  }

  /** Pings and checks the Pong. */
  async ping(id: number): Promise<Received> {
    const pong = await this.request({ id, ping: { clientTimeMs: String(id) } });
    if (pong.kind !== 'pong') throw new Error(`ping ${id} answered with ${pong.kind}: ${JSON.stringify(pong.body)}`);
    return pong;
  }

  close(): void {
    this.ws.close(1000);
  }

  /** Closes abruptly (no close frame). */
  terminate(): void {
    this.ws.terminate();
  }
}

/** The outcome of an upgrade the gateway refused: HTTP status and parsed JSON body. */
export async function upgradeRefusal(url: string, o: ConnectOptions = {}): Promise<{ status: number; body: { code?: string; message?: string } }> {
  const subprotocol = o.subprotocol ?? 'proto';
  const ws = new WebSocket(buildUrl(url, o), o.protocols ?? [subprotocolNames[subprotocol]], wsOptions(o));
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body = {};
        try { body = JSON.parse(text) as object; } catch { body = { message: text }; }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    ws.once('error', (err) => reject(err));
  });
}
