// The node's HTTP/1.1 face (spec section 6): POST /v1/invoke/<function>, GET /healthz. Replies are
// plain bodies, or a varint-delimited NodeFrame stream once a function reports progress.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Code, codeName, GatewayError, httpStatusFor } from '../errors.js';
import type { Logger } from '../log.js';
import { encodeDelimitedNodeFrame, NODE_STREAM_CONTENT_TYPE } from '../nodes/node-stream.js';
import { NodeCall, type FunctionHost } from './function-host.js';

export interface NodeHttpOptions {
  /** Sent as x-relaygate-node-id on every reply; read on each reply so it can be set after listen. */
  nodeId(): string;
  /** Largest request body accepted; larger gets 413. */
  readonly maxBodyBytes: number;
  readonly tls?: { readonly cert: Buffer | string; readonly key: Buffer | string; readonly passphrase?: string };
  readonly log?: Logger;
}

const INVOKE_PREFIX = '/v1/invoke/';
const metaPrefix = 'x-relaygate-meta-';
/** Used when the gateway sends no deadline (a direct caller): an hour. */
const DEFAULT_DEADLINE_MS = 3_600_000;

/** An HTTP(S) server for `host`, not yet listening. */
export function createNodeHttpServer(host: FunctionHost, options: NodeHttpOptions): Server {
  const handler = (req: IncomingMessage, res: ServerResponse): void => handle(host, options, req, res);
  const server: Server = options.tls
    ? (createHttpsServer({ cert: options.tls.cert, key: options.tls.key, passphrase: options.tls.passphrase }, handler) as unknown as Server)
    : createHttpServer(handler);
  // Gateways keep connections open (their idle timeout is shorter than this), and calls may run long.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 0;
  return server;
}

function handle(host: FunctionHost, options: NodeHttpOptions, req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  if (url.startsWith(INVOKE_PREFIX)) {
    if (req.method !== 'POST') return sendError(res, options, host, new GatewayError(Code.INVALID_ARGUMENT, 'use POST'), 405);
    const end = url.indexOf('?');
    let fn: string;
    try {
      fn = decodeURIComponent(url.slice(INVOKE_PREFIX.length, end < 0 ? undefined : end));
    } catch {
      return sendError(res, options, host, new GatewayError(Code.INVALID_ARGUMENT, 'malformed function name'));
    }
    return invoke(host, options, req, res, fn);
  }
  if (url === '/healthz' || url.startsWith('/healthz?')) {
    const draining = host.draining;
    const body = JSON.stringify({ status: draining ? 'draining' : 'ok', id: options.nodeId(), inFlight: host.inFlight, functions: host.functions });
    res.writeHead(draining ? 503 : 200, headers(options, host, 'application/json'));
    res.end(body);
    return;
  }
  sendError(res, options, host, new GatewayError(Code.NOT_FOUND, 'no such route'));
}

function headers(options: NodeHttpOptions, host: FunctionHost, contentType: string): Record<string, string> {
  const h: Record<string, string> = { 'content-type': contentType, 'x-relaygate-node-id': options.nodeId() };
  if (host.draining) h['x-relaygate-drain'] = '1';
  return h;
}

function sendError(res: ServerResponse, options: NodeHttpOptions, host: FunctionHost, err: GatewayError, status = httpStatusFor(err.code)): void {
  if (res.headersSent || res.destroyed) return;
  const h = headers(options, host, 'application/json');
  if (err.retryAfterMs > 0) h['retry-after'] = String(Math.max(1, Math.ceil(err.retryAfterMs / 1000)));
  res.writeHead(status, h);
  res.end(JSON.stringify({ code: codeName(err.code), message: err.message }));
}

function header(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  return typeof v === 'string' ? v : '';
}

function invoke(host: FunctionHost, options: NodeHttpOptions, req: IncomingMessage, res: ServerResponse, fn: string): void {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > options.maxBodyBytes) {
    sendError(res, options, host, new GatewayError(Code.INVALID_ARGUMENT, `payload larger than ${options.maxBodyBytes} bytes`), 413);
    req.resume();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  req.on('data', (chunk: Buffer) => {
    if (refused) return;
    size += chunk.length;
    if (size > options.maxBodyBytes) {
      refused = true;
      sendError(res, options, host, new GatewayError(Code.INVALID_ARGUMENT, `payload larger than ${options.maxBodyBytes} bytes`), 413);
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (refused) return;
    const payload = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    start(host, options, req, res, fn, payload);
  });
}

function start(host: FunctionHost, options: NodeHttpOptions, req: IncomingMessage, res: ServerResponse, fn: string, payload: Buffer): void {
  const metadata: Record<string, string> = Object.create(null);
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length > metaPrefix.length && name.toLowerCase().startsWith(metaPrefix)) metadata[name.slice(metaPrefix.length).toLowerCase()] = raw[i + 1]!;
  }
  const deadlineHeader = Number(header(req, 'x-relaygate-deadline-ms'));
  const deadline = Date.now() + (deadlineHeader > 0 ? deadlineHeader : DEFAULT_DEADLINE_MS);
  let streaming = false;
  const call = new NodeCall(
    {
      function: fn,
      requestId: header(req, 'x-relaygate-request-id'),
      payload,
      contentType: header(req, 'content-type'),
      metadata,
      subject: header(req, 'x-relaygate-subject'),
      tenant: header(req, 'x-relaygate-tenant'),
      deadline,
    },
    (fraction, progressPayload) => {
      if (res.destroyed || res.writableEnded) return;
      if (!streaming) {
        streaming = true;
        res.writeHead(200, headers(options, host, NODE_STREAM_CONTENT_TYPE));
      }
      res.write(encodeDelimitedNodeFrame({ progress: { fraction, payload: progressPayload } }));
    },
  );
  // The gateway closing the request (cancel, disconnect, its deadline) aborts the call.
  res.on('close', () => {
    if (!res.writableFinished) call.abort(new GatewayError(Code.CANCELLED, 'caller went away'));
  });
  host.run(call).then(
    (result) => {
      if (res.destroyed) return;
      if (streaming) {
        res.end(encodeDelimitedNodeFrame({ result: { payload: result.payload, contentType: result.contentType, nodeId: options.nodeId() } }));
        return;
      }
      res.writeHead(200, headers(options, host, result.contentType));
      res.end(result.payload);
    },
    (err: GatewayError) => {
      if (res.destroyed) return;
      if (streaming) {
        res.end(encodeDelimitedNodeFrame({ error: { code: err.code, message: err.message, retryAfterMs: err.retryAfterMs } }));
        return;
      }
      sendError(res, options, host, err);
    },
  );
}
