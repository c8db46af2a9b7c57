// Small helpers for uWS HTTP responses: aborted-safe, corked writes and a size-limited body reader.
import { STATUS_CODES } from 'node:http';
import { codeName, type GatewayError } from '../errors.js';
import type { UWS } from './uws.js';

/** A response that may be aborted by the peer while async work runs; writes after that are no-ops. */
export class Reply {
  aborted = false;
  done = false;
  private readonly abortHandlers: (() => void)[] = [];

  constructor(readonly res: UWS.HttpResponse) {
    res.onAborted(() => {
      this.aborted = true;
      for (const handler of this.abortHandlers) handler();
    });
  }

  /** Runs `handler` when the peer goes away before the answer was written. */
  onAbort(handler: () => void): void {
    this.abortHandlers.push(handler);
  }

  /** Writes status, headers and body in one corked write (once; later calls are ignored). */
  send(status: number, headers: Record<string, string>, body: string | Uint8Array, closeConnection = false): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.res.cork(() => {
      this.res.writeStatus(`${status} ${STATUS_CODES[status] ?? 'Status'}`);
      for (const name of Object.keys(headers)) this.res.writeHeader(name, headers[name]!);
      this.res.end(body, closeConnection);
    });
  }

  /** Sends a JSON body. */
  json(status: number, value: unknown, headers: Record<string, string> = {}, closeConnection = false): void {
    this.send(status, { 'content-type': 'application/json', ...headers }, JSON.stringify(value), closeConnection);
  }

  /** Sends the spec's error body {"code","message"} with the status of its code. */
  error(status: number, err: GatewayError, closeConnection = false): void {
    const headers: Record<string, string> = {};
    if (err.retryAfterMs > 0) headers['retry-after'] = String(Math.ceil(err.retryAfterMs / 1000));
    if (status === 401) headers['www-authenticate'] = 'Bearer realm="relaygate"';
    this.json(status, { code: codeName(err.code), message: err.message }, headers, closeConnection);
  }
}

/**
 * Reads a request body of at most `limit` bytes. Calls `done` with the body, or `tooLarge` as soon as
 * the limit is passed (the rest is not buffered). The reply must already have its abort handler.
 */
export function readBody(res: UWS.HttpResponse, limit: number, done: (body: Uint8Array) => void, tooLarge: () => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  res.onData((chunk, isLast) => {
    if (over) return;
    size += chunk.byteLength;
    if (size > limit) {
      over = true;
      tooLarge();
      return;
    }
    // uWS neuters the chunk after this call: copy it.
    chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
    if (isLast) {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      done(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
    }
  });
}
