// The load generator's wire layer, kept minimal so the client costs far less than the server it
// measures: RFC 6455 client framing (masked frames built once per template, the request id
// patched in place), an incremental frame reader, and just enough protobuf to build ClientFrame
// templates and to read a ServerFrame's id, body kind and Event payload.

/** ServerFrame body field numbers (relaygate.v1.proto); the "kind" a scan reports. */
export const ServerKind = { none: 0, welcome: 2, result: 3, progress: 4, event: 5, error: 6, ack: 7, pong: 8, goAway: 9 } as const;

/** Request ids the templates use: always a two-byte varint, so they can be patched in place. */
export const MIN_ID = 128;
export const MAX_ID = 16383;

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) { n = Math.floor(n / 128); len++; }
  return len;
}

function writeVarint(out: Buffer, pos: number, n: number): number {
  while (n >= 0x80) { out[pos++] = (n & 0x7f) | 0x80; n = Math.floor(n / 128); }
  out[pos++] = n;
  return pos;
}

type Field = { no: number; value: Buffer | string | number };

/** Encodes a flat protobuf message of length-delimited and varint fields, in the order given. */
export function encodeMessage(fields: readonly Field[]): Buffer {
  const parts = fields.map((f) => ({ no: f.no, value: typeof f.value === 'string' ? Buffer.from(f.value) : f.value }));
  let size = 0;
  for (const f of parts) {
    size += varintLength(f.no << 3);
    size += typeof f.value === 'number' ? varintLength(f.value) : varintLength(f.value.length) + f.value.length;
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const f of parts) {
    if (typeof f.value === 'number') {
      pos = writeVarint(out, pos, f.no << 3);
      pos = writeVarint(out, pos, f.value);
    } else {
      pos = writeVarint(out, pos, (f.no << 3) | 2);
      pos = writeVarint(out, pos, f.value.length);
      f.value.copy(out, pos);
      pos += f.value.length;
    }
  }
  return out;
}

/** A ClientFrame whose id is a two-byte varint at byte offset 1 (see MIN_ID). */
function clientFrame(bodyField: number, body: Buffer): Buffer {
  const head = Buffer.from([0x08, 0x80, 0x01]); // id = 128, two-byte varint
  return Buffer.concat([head, encodeMessage([{ no: bodyField, value: body }])]);
}

export function invokeFrame(fn: string, payload: Buffer): Buffer {
  return clientFrame(2, encodeMessage([{ no: 1, value: fn }, { no: 2, value: payload }]));
}

export function subscribeFrame(topic: string): Buffer {
  return clientFrame(4, encodeMessage([{ no: 1, value: topic }]));
}

export function publishFrame(topic: string, payload: Buffer): Buffer {
  return clientFrame(6, encodeMessage([{ no: 1, value: topic }, { no: 2, value: payload }]));
}

// ---------------------------------------------------------------------------------------------
// WebSocket client frames (RFC 6455 section 5.2): FIN set, masked.

export const Opcode = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

function headerLength(payloadLength: number): number {
  return (payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10) + 4;
}

/** One complete masked client frame. */
export function maskedFrame(opcode: number, payload: Buffer, mask: Buffer): Buffer {
  const hl = headerLength(payload.length);
  const out = Buffer.allocUnsafe(hl + payload.length);
  out[0] = 0x80 | opcode;
  if (payload.length < 126) out[1] = 0x80 | payload.length;
  else if (payload.length < 65536) { out[1] = 0x80 | 126; out.writeUInt16BE(payload.length, 2); }
  else { out[1] = 0x80 | 127; out.writeUInt32BE(Math.floor(payload.length / 2 ** 32), 2); out.writeUInt32BE(payload.length >>> 0, 6); }
  mask.copy(out, hl - 4, 0, 4);
  for (let i = 0; i < payload.length; i++) out[hl + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

/**
 * A request frame built and masked once; `writeTo` copies it into a batch and patches the id
 * (a two-byte varint at payload offset 1, masked in place), so sending costs one memcpy.
 */
export class FrameTemplate {
  readonly bytes: Buffer;
  private readonly idAt: number;
  private readonly m1: number;
  private readonly m2: number;

  constructor(clientFramePayload: Buffer, mask: Buffer, opcode: number = Opcode.binary) {
    this.bytes = maskedFrame(opcode, clientFramePayload, mask);
    this.idAt = headerLength(clientFramePayload.length) + 1;
    this.m1 = mask[1]!;
    this.m2 = mask[2]!;
  }

  get length(): number {
    return this.bytes.length;
  }

  /** Writes the frame with request `id` (MIN_ID..MAX_ID) at `pos`; returns the end position. */
  writeTo(out: Buffer, pos: number, id: number): number {
    this.bytes.copy(out, pos);
    out[pos + this.idAt] = ((id & 0x7f) | 0x80) ^ this.m1;
    out[pos + this.idAt + 1] = (id >>> 7) ^ this.m2;
    return pos + this.bytes.length;
  }
}

/** What a scan of one ServerFrame found; reused across calls to avoid allocation. */
export interface ServerFrameScan {
  id: number;
  kind: number;
  /** The body's bytes: [bodyStart, bodyEnd) of the scanned buffer. */
  bodyStart: number;
  bodyEnd: number;
}

function readVarint(buf: Buffer, at: { pos: number }, end: number): number {
  let result = 0;
  let shift = 0;
  while (at.pos < end) {
    const b = buf[at.pos++]!;
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return result;
    shift += 7;
  }
  return -1;
}

const cursor = { pos: 0 };

/** Scans the top-level fields of a ServerFrame in buf[start, end). Returns false when malformed. */
export function scanServerFrame(buf: Buffer, start: number, end: number, out: ServerFrameScan): boolean {
  out.id = 0;
  out.kind = 0;
  out.bodyStart = out.bodyEnd = start;
  cursor.pos = start;
  while (cursor.pos < end) {
    const tag = readVarint(buf, cursor, end);
    if (tag < 0) return false;
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) {
      const v = readVarint(buf, cursor, end);
      if (v < 0) return false;
      if (field === 1) out.id = v;
    } else if (wire === 2) {
      const len = readVarint(buf, cursor, end);
      if (len < 0 || cursor.pos + len > end) return false;
      if (field >= 2 && field <= 9) { out.kind = field; out.bodyStart = cursor.pos; out.bodyEnd = cursor.pos + len; }
      cursor.pos += len;
    } else if (wire === 1) cursor.pos += 8;
    else if (wire === 5) cursor.pos += 4;
    else return false;
  }
  return true;
}

/** Finds length-delimited field `field` in buf[start, end); returns [start, end) or undefined. */
export function findBytesField(buf: Buffer, start: number, end: number, field: number): [number, number] | undefined {
  cursor.pos = start;
  while (cursor.pos < end) {
    const tag = readVarint(buf, cursor, end);
    if (tag < 0) return undefined;
    const wire = tag & 7;
    if (wire === 0) { if (readVarint(buf, cursor, end) < 0) return undefined; }
    else if (wire === 2) {
      const len = readVarint(buf, cursor, end);
      if (len < 0 || cursor.pos + len > end) return undefined;
      if (tag >>> 3 === field) return [cursor.pos, cursor.pos + len];
      cursor.pos += len;
    } else if (wire === 1) cursor.pos += 8;
    else if (wire === 5) cursor.pos += 4;
    else return undefined;
  }
  return undefined;
}

/** Reads varint field `field` in buf[start, end) (e.g. Error.code); -1 when absent. */
export function findVarintField(buf: Buffer, start: number, end: number, field: number): number {
  cursor.pos = start;
  while (cursor.pos < end) {
    const tag = readVarint(buf, cursor, end);
    if (tag < 0) return -1;
    const wire = tag & 7;
    if (wire === 0) {
      const v = readVarint(buf, cursor, end);
      if (tag >>> 3 === field) return v;
      if (v < 0) return -1;
    } else if (wire === 2) {
      const len = readVarint(buf, cursor, end);
      if (len < 0) return -1;
      cursor.pos += len;
    } else if (wire === 1) cursor.pos += 8;
    else if (wire === 5) cursor.pos += 4;
    else return -1;
  }
  return -1;
}

/** Called once per complete server message: payload is buf[start, end). */
export type MessageHandler = (opcode: number, buf: Buffer, start: number, end: number) => void;

/**
 * Incremental reader of unmasked server frames. Complete frames are handed out as views of the
 * received chunk (no copy); only a frame split across reads is joined, once, when it is whole.
 */
export class FrameReader {
  private held: Buffer[] = [];
  private heldBytes = 0;
  private needed = 0; // bytes the held frame needs in total; 0 = header not yet readable
  private fragments: Buffer[] | undefined;
  private fragmentOpcode = 0;

  constructor(private readonly onMessage: MessageHandler, private readonly onProtocolError: (why: string) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.heldBytes > 0) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.needed > 0 && this.heldBytes < this.needed) return;
      buf = Buffer.concat(this.held, this.heldBytes);
      this.held = [];
      this.heldBytes = 0;
      this.needed = 0;
    }
    let pos = 0;
    const len = buf.length;
    while (len - pos >= 2) {
      const b0 = buf[pos]!;
      const b1 = buf[pos + 1]!;
      if (b1 & 0x80) { this.onProtocolError('masked server frame'); return; }
      let size = b1 & 0x7f;
      let hl = 2;
      if (size === 126) {
        if (len - pos < 4) break;
        size = buf.readUInt16BE(pos + 2);
        hl = 4;
      } else if (size === 127) {
        if (len - pos < 10) break;
        size = buf.readUInt32BE(pos + 2) * 2 ** 32 + buf.readUInt32BE(pos + 6);
        hl = 10;
      }
      if (len - pos - hl < size) {
        this.needed = hl + size;
        break;
      }
      const start = pos + hl;
      pos = start + size;
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (opcode >= 8) this.onMessage(opcode, buf, start, pos);
      else if (fin && opcode !== 0 && this.fragments === undefined) this.onMessage(opcode, buf, start, pos);
      else this.fragment(opcode, fin, buf.subarray(start, pos));
    }
    if (pos < len) {
      const rest = buf.subarray(pos);
      this.held.push(rest);
      this.heldBytes = rest.length;
    }
  }

  private fragment(opcode: number, fin: boolean, part: Buffer): void {
    if (opcode !== 0) { this.fragments = []; this.fragmentOpcode = opcode; }
    if (this.fragments === undefined) { this.onProtocolError('continuation without a start'); return; }
    this.fragments.push(Buffer.from(part));
    if (fin) {
      const whole = Buffer.concat(this.fragments);
      this.fragments = undefined;
      this.onMessage(this.fragmentOpcode, whole, 0, whole.length);
    }
  }
}
