// The gateway's listening socket: WebSocket endpoint /v1/ws (upgrade with auth before the socket
// opens) and the HTTP surface of spec section 8, on one uWebSockets.js app.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Principal, TokenVerifier } from '../auth/principal.js';
import { ConfigError } from '../config.js';
import { Close, Code, codeName, GatewayError, httpStatusFor, toGatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics, LabelCounts } from '../metrics/metrics.js';
import { subprotocolNames } from '../protocol/codec.js';
import type { Invoker } from '../router/invoke.js';
import { checkTopicGrant } from '../router/requests.js';
import type { Router } from '../router/router.js';
import type { ComputeService, EventsService } from '../router/services.js';
import { CredentialCache } from './credential-cache.js';
import { chooseSubprotocol, originAllowed, readCredential } from './handshake.js';
import { readBody, Reply } from './http.js';
import { uws, type UWS } from './uws.js';
import { Outbox, SessionFanout, WsSession, type SocketData } from './ws-session.js';

/** The slice of settings the transport reads. Durations in ms, sizes in bytes. */
export interface TransportOptions {
  host: string;
  port: number;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  tlsPassphrase?: string | undefined;
  origins?: readonly string[] | undefined;
  gatewayId: string;
  maxFrameBytes: number;
  maxInFlight: number;
  idleTimeout: number;
  maxBackpressure: number;
  permessageDeflate: boolean;
}

/** What the transport drives: the verifier at upgrade, the router per frame, services for HTTP. */
export interface TransportDeps {
  verifier: TokenVerifier;
  router: Router;
  invoker: Invoker;
  compute: ComputeService;
  events: EventsService;
  metrics: GatewayMetrics;
  log: Logger;
}

/** Prefix of metadata headers on POST /v1/invoke (same names the node receives). */
export const HTTP_METADATA_PREFIX = 'x-relaygate-meta-';
/** Request header of POST /v1/invoke giving timeout_ms. */
export const HTTP_TIMEOUT_HEADER = 'x-relaygate-timeout-ms';

/**
 * uWS closes a connection without a close frame when a message exceeds maxPayloadLength. It is set
 * above max_frame_bytes so that the gateway sees over-long frames itself and closes them with 1009.
 */
export function uwsPayloadLimit(maxFrameBytes: number): number {
  return maxFrameBytes * 2 + 64 * 1024;
}

/** One listening gateway socket. Construct, hand `fanout` to the bus, then `listen`. */
export class Transport {
  readonly app: UWS.TemplatedApp;
  /** Local fan-out to this transport's sessions. */
  readonly fanout: SessionFanout;
  private readonly frames: LabelCounts<'kind'>;
  private readonly outbox = new Outbox();
  private listenSocket: UWS.us_listen_socket | undefined;
  private draining = false;
  private readonly allowedOrigins: ReadonlySet<string> | undefined;
  private port_ = 0;
  private readonly sessions = new Set<WsSession>();
  /** Tokens verified recently (upgrades and HTTP requests share it). */
  private readonly credentials = new CredentialCache();

  constructor(private readonly options: TransportOptions, metrics: GatewayMetrics) {
    if (options.tlsCert && options.tlsKey) {
      // Read once here so a missing or unreadable file fails at start with the setting's name.
      for (const [setting, path] of [['RELAYGATE_TLS_CERT', options.tlsCert], ['RELAYGATE_TLS_KEY', options.tlsKey]] as const) {
        try {
          readFileSync(path);
        } catch (err) {
          throw new ConfigError(setting, `cannot read ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
        }
      }
      try {
        this.app = uws.SSLApp({
          cert_file_name: options.tlsCert,
          key_file_name: options.tlsKey,
          ...(options.tlsPassphrase ? { passphrase: options.tlsPassphrase } : {}),
        });
      } catch {
        throw new ConfigError('RELAYGATE_TLS_KEY', 'the key and certificate could not be loaded (not PEM, not a matching pair, or a wrong RELAYGATE_TLS_PASSPHRASE)');
      }
    } else {
      this.app = uws.App();
    }
    this.allowedOrigins = options.origins ? new Set(options.origins) : undefined;
    this.frames = metrics.framesOutByKind;
    this.fanout = new SessionFanout(this.app, this.frames, this.outbox);
  }

  /** The port listened on (resolved when 0 was asked for). */
  get port(): number {
    return this.port_;
  }

  /** Registers the routes and listens; rejects when the address cannot be bound. */
  async listen(deps: TransportDeps): Promise<number> {
    const sessions = this.sessions;
    deps.metrics.watchSendBuffers(function* () {
      for (const session of sessions) yield session.bufferedAmount;
    });
    this.routeWebSocket(deps);
    this.routeHttp(deps);
    const { host, port } = this.options;
    const socket = await new Promise<UWS.us_listen_socket | false>((resolve) => this.app.listen(host, port, resolve));
    if (!socket) throw new Error(`cannot listen on ${host}:${port}`);
    this.listenSocket = socket;
    this.port_ = uws.us_socket_local_port(socket as unknown as UWS.us_socket);
    return this.port_;
  }

  /** Stops accepting connections; /readyz answers 503 and new upgrades are refused from now on. */
  stopListening(): void {
    this.draining = true;
    if (this.listenSocket) {
      uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
  }

  /** Closes every remaining socket, HTTP keep-alive connections included. */
  closeAll(): void {
    this.stopListening();
    this.fanout.close();
    (this.app as UWS.TemplatedApp & { close?: () => void }).close?.();
  }

  private routeWebSocket(deps: TransportDeps): void {
    const { verifier, router, metrics, log } = deps;
    const options = this.options;
    const reject = (reply: Reply, status: number, reason: string, err: GatewayError): void => {
      metrics.upgradeRejections.inc({ reason });
      log.info({ status, reason }, 'upgrade refused');
      reply.error(status, err, true);
    };

    this.app.ws<SocketData>('/v1/ws', {
      compression: options.permessageDeflate ? uws.SHARED_COMPRESSOR | uws.SHARED_DECOMPRESSOR : uws.DISABLED,
      maxPayloadLength: uwsPayloadLimit(options.maxFrameBytes),
      idleTimeout: Math.max(8, Math.round(options.idleTimeout / 1000)),
      sendPingsAutomatically: true,
      // uWS would drop frames over its limit silently (even the close frame), for direct sends and
      // topic publishes alike; WsSession and SessionFanout enforce maxBackpressure themselves and
      // close with 4008, so uWS's own limit is off.
      maxBackpressure: 0,
      closeOnBackpressureLimit: 0,

      upgrade: (res, req, context) => {
        // Everything needed from req is copied now: req is only valid during this call.
        const key = req.getHeader('sec-websocket-key');
        const protocols = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        const origin = req.getHeader('origin');
        const connectionHeader = req.getHeader('connection');
        const credential = readCredential(req.getHeader('authorization'), req.getQuery('access_token') ?? '');
        const reply = new Reply(res);

        // RFC 6455 requires "Connection: Upgrade". uWS 20.30 upgrades without it and then closes the
        // socket behind the 101 (Connection: close), which can crash the process: refuse it here.
        if (!/(^|,)\s*upgrade\s*(,|$)/i.test(connectionHeader)) {
          return reject(reply, 400, 'connection', new GatewayError(Code.INVALID_ARGUMENT, 'the Connection header must include Upgrade'));
        }

        if (this.draining) return reject(reply, 503, 'draining', new GatewayError(Code.UNAVAILABLE, 'gateway shutting down'));
        const subprotocol = chooseSubprotocol(protocols);
        if (!subprotocol) {
          return reject(reply, 400, 'subprotocol', new GatewayError(Code.INVALID_ARGUMENT, `Sec-WebSocket-Protocol must offer ${subprotocolNames.proto} or ${subprotocolNames.json}`));
        }
        if (!originAllowed(origin, this.allowedOrigins)) {
          return reject(reply, 403, 'origin', new GatewayError(Code.PERMISSION_DENIED, 'origin not allowed'));
        }
        if ('problem' in credential) {
          return reject(reply, 401, `credential_${credential.problem}`, new GatewayError(Code.UNAUTHENTICATED, credential.problem === 'missing' ? 'no credential' : 'malformed Authorization header'));
        }
        const token = credential.token;
        const upgrade = (principal: Principal): void => {
          const data: SocketData = { id: randomBytes(12).toString('base64url'), subprotocol, principal };
          reply.done = true;
          res.upgrade(data, key, subprotocolNames[subprotocol], extensions, context);
        };
        const known = this.credentials.get(token, Date.now());
        metrics.credentialChecks.inc({ result: known ? 'cached' : 'verified' });
        // A token verified recently upgrades at once, inside uWS's own (corked) upgrade handler.
        if (known) return upgrade(known);
        (async () => verifier.verify(token))().then(
          (principal) => {
            this.credentials.set(token, principal, Date.now());
            if (reply.aborted) return;
            if (this.draining) return reject(reply, 503, 'draining', new GatewayError(Code.UNAVAILABLE, 'gateway shutting down'));
            // Deliberately not inside res.cork(): in this uWS build, cork's epilogue after an
            // asynchronous upgrade can close the fresh socket (uNetworking/uWebSockets#1928; the
            // details and why no workaround holds are in docs/protocol.md, "Known limits"). uWS
            // prints a cork warning instead, once per token not verified within the last minute.
            upgrade(principal);
          },
          (err: unknown) => {
            if (reply.aborted) return;
            const failure = toGatewayError(err);
            if (failure.code !== Code.UNAUTHENTICATED) {
              log.error({ err }, 'credential verification failed');
              return reject(reply, 503, 'verifier', new GatewayError(Code.UNAVAILABLE, 'credential could not be verified now', { retryAfterMs: 1000 }));
            }
            const reason = (err as { reason?: unknown }).reason;
            reject(reply, 401, `credential_${typeof reason === 'string' ? reason : 'invalid'}`, failure);
          },
        );
      },

      open: (ws) => {
        openSession(ws, ws.getUserData());
      },

      message: (ws, message, isBinary) => {
        const session = ws.getUserData().session;
        if (!session?.conn || !session.isOpen) return;
        if (message.byteLength > options.maxFrameBytes) {
          metrics.framesInByKind.count('oversized');
          session.close(Close.TOO_BIG);
          return;
        }
        // Binary frames are decoded into views of their buffer, which uWS reuses after this call: copy once.
        const data = isBinary ? new Uint8Array(message.slice(0)) : new Uint8Array(message);
        router.message(session.conn, data, isBinary);
      },

      close: (ws, code, message) => {
        const data = ws.getUserData();
        const session = data.session;
        if (!session) return;
        session.markClosed();
        this.sessions.delete(session);
        metrics.connections.dec();
        metrics.closes.inc({ code: closeLabel(session.closedWith ?? code) });
        const reason = Buffer.from(message).toString('utf8').slice(0, 123);
        log.info({ session: session.id, code: session.closedWith ?? code, reason, subject: session.principal.subject, tenant: session.principal.tenant }, 'connection closed');
        if (session.conn) router.closed(session.conn);
      },
    });

    const openSession = (ws: UWS.WebSocket<SocketData>, data: SocketData): void => {
      const session = new WsSession(ws, data.id, data.subprotocol, data.principal, this.frames, log, this.fanout, this.outbox, options.maxBackpressure);
      data.session = session;
      this.sessions.add(session);
      metrics.connections.inc();
      const p = data.principal;
      log.info({ session: session.id, subprotocol: data.subprotocol, subject: p.subject, tenant: p.tenant }, 'connection open');
      session.send({
        id: 0,
        welcome: {
          sessionId: session.id,
          gatewayId: options.gatewayId,
          serverTimeMs: Date.now(),
          maxFrameBytes: options.maxFrameBytes,
          maxInFlight: options.maxInFlight,
          tokenExpiresMs: p.expiresAtMs,
        },
      });
      const conn = router.open(session);
      if (session.isOpen) session.conn = conn;
      else router.closed(conn); // closed while opening (credential expired in between)
      // Welcome now, corked: on a synchronous upgrade it shares the 101's write.
      session.flushQueued();
    };
  }

  private routeHttp(deps: TransportDeps): void {
    const { verifier, invoker, compute, events, metrics, log } = deps;
    const options = this.options;
    const count = (route: string, status: number): void => {
      metrics.httpRequests.inc({ route, status: String(status) });
    };

    this.app.get('/healthz', (res) => {
      const reply = new Reply(res);
      count('/healthz', 200);
      reply.json(200, { status: 'ok' });
    });

    this.app.get('/readyz', (res) => {
      const reply = new Reply(res);
      const bus = safeReady(events, log);
      const nodes = safeReady(compute, log);
      const ready = !this.draining && bus && nodes;
      count('/readyz', ready ? 200 : 503);
      reply.json(ready ? 200 : 503, { ready, draining: this.draining, bus, compute: nodes });
    });

    this.app.get('/metrics', (res) => {
      const reply = new Reply(res);
      metrics.text().then(
        (text) => {
          count('/metrics', 200);
          reply.send(200, { 'content-type': metrics.contentType }, text);
        },
        (err: unknown) => {
          log.error({ err }, 'metrics collection failed');
          reply.error(500, toGatewayError(err));
        },
      );
    });

    /** Authenticates an HTTP request; answers 401 itself and resolves undefined on failure. */
    const authenticate = async (reply: Reply, authorization: string) => {
      const credential = readCredential(authorization, '');
      try {
        if ('problem' in credential) throw new GatewayError(Code.UNAUTHENTICATED, credential.problem === 'missing' ? 'no credential' : 'malformed Authorization header');
        const known = this.credentials.get(credential.token, Date.now());
        metrics.credentialChecks.inc({ result: known ? 'cached' : 'verified' });
        if (known) return known;
        const principal = await verifier.verify(credential.token);
        this.credentials.set(credential.token, principal, Date.now());
        return principal;
      } catch (err) {
        const failure = toGatewayError(err);
        const answer = failure.code === Code.UNAUTHENTICATED ? failure : new GatewayError(Code.UNAVAILABLE, 'credential could not be verified now', { retryAfterMs: 1000 });
        if (answer !== failure) log.error({ err }, 'credential verification failed');
        fail(reply, answer);
        return undefined;
      }
    };
    const fail = (reply: Reply, err: unknown, route = 'api'): void => {
      const failure = toGatewayError(err);
      if (failure.code === Code.INTERNAL) log.error({ err: failure.cause ?? failure }, 'http request failed');
      metrics.errors.inc({ code: codeName(failure.code) });
      const status = httpStatusFor(failure.code);
      count(route, status);
      reply.error(status, failure);
    };
    const tooLarge = (reply: Reply): void => {
      count('api', 413);
      reply.error(413, new GatewayError(Code.INVALID_ARGUMENT, `body larger than ${options.maxFrameBytes} bytes`), true);
    };

    this.app.post('/v1/invoke/*', (res, req) => {
      const fn = req.getUrl().slice('/v1/invoke/'.length);
      const authorization = req.getHeader('authorization');
      const contentType = req.getHeader('content-type');
      const timeoutHeader = req.getHeader(HTTP_TIMEOUT_HEADER);
      const metadata: Record<string, string> = Object.create(null);
      req.forEach((name, value) => {
        if (name.startsWith(HTTP_METADATA_PREFIX)) metadata[name.slice(HTTP_METADATA_PREFIX.length)] = value;
      });
      const reply = new Reply(res);
      readBody(res, options.maxFrameBytes, (payload) => {
        void (async () => {
          const principal = await authenticate(reply, authorization);
          if (!principal || reply.aborted) return;
          if (this.draining) return fail(reply, new GatewayError(Code.UNAVAILABLE, 'gateway shutting down', { retryAfterMs: 100 }));
          const timeoutMs = timeoutHeader === '' ? 0 : Number(timeoutHeader);
          if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 0xffffffff) {
            return fail(reply, new GatewayError(Code.INVALID_ARGUMENT, `${HTTP_TIMEOUT_HEADER} must be a whole number of milliseconds`));
          }
          try {
            const invocation = invoker.start(principal, { function: fn, payload, contentType, timeoutMs, jobTopic: '', metadata }, {
              progress: () => {},
              result: (result) => {
                count('/v1/invoke', 200);
                const headers: Record<string, string> = { 'content-type': result.contentType || 'application/octet-stream' };
                if (result.nodeId) headers['x-relaygate-node-id'] = result.nodeId;
                if (result.durationMs !== undefined) headers['x-relaygate-duration-ms'] = String(result.durationMs);
                reply.send(200, headers, result.payload);
              },
              error: (err) => fail(reply, err, '/v1/invoke'),
            });
            reply.onAbort(() => invocation.end(new GatewayError(Code.CANCELLED, 'client disconnected')));
          } catch (err) {
            fail(reply, err, '/v1/invoke');
          }
        })().catch((err: unknown) => fail(reply, err));
      }, () => tooLarge(reply));
    });

    this.app.post('/v1/publish/*', (res, req) => {
      const topic = req.getUrl().slice('/v1/publish/'.length);
      const authorization = req.getHeader('authorization');
      const contentType = req.getHeader('content-type');
      const reply = new Reply(res);
      readBody(res, options.maxFrameBytes, (payload) => {
        void (async () => {
          const principal = await authenticate(reply, authorization);
          if (!principal || reply.aborted) return;
          checkTopicGrant(principal, 'publish', topic);
          const position = await events.publish(principal.tenant, topic, payload, contentType, { source: 'http' });
          count('/v1/publish', 200);
          reply.json(200, position ? { offset: String(position.offset), epoch: position.epoch } : {});
        })().catch((err: unknown) => fail(reply, err, '/v1/publish'));
      }, () => tooLarge(reply));
    });

    this.app.any('/*', (res) => {
      const reply = new Reply(res);
      count('other', 404);
      reply.error(404, new GatewayError(Code.NOT_FOUND, 'no such route'));
    });
  }
}

// Close codes a peer may choose are many; the metric keeps the spec's and the standard ones.
const labelledCloses = new Set<number>([...Object.values(Close), 1002, 1003, 1005, 1006, 1007, 1008, 1011]);

function closeLabel(code: number): string {
  return labelledCloses.has(code) ? String(code) : 'other';
}

function safeReady(service: { ready(): boolean }, log: Logger): boolean {
  try {
    return service.ready();
  } catch (err) {
    log.error({ err }, 'readiness check failed');
    return false;
  }
}
