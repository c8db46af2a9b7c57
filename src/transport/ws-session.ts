// Session (router/session.ts) over one uWebSockets.js WebSocket, and Fanout over uWS native topics.
import type { Principal } from '../auth/principal.js';
import { Close, closeReason } from '../errors.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { encodeFor, type Subprotocol } from '../protocol/codec.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { Connection } from '../router/router.js';
import type { Fanout, Session } from '../router/session.js';
import type { UWS } from './uws.js';

/** What uWS keeps per socket: filled at upgrade, the session attached at open. */
export interface SocketData {
  readonly id: string;
  readonly subprotocol: Subprotocol;
  readonly principal: Principal;
  session?: WsSession;
}

// uWS send() results.
const SEND_DROPPED = 2;

/** The body kind of a server frame, for metrics. */
export function frameKind(frame: ServerFrame): string {
  for (const key in frame) if (key !== 'id') return key;
  return 'none';
}

/** The uWS topic a bus key maps to for one subprotocol: frames are encoded once per subprotocol. */
export function nativeTopic(subprotocol: Subprotocol, key: string): string {
  return `${subprotocol}|${key}`;
}

/** One client connection. Sends are corked; a send the socket's buffer cannot take closes it with 4008. */
export class WsSession implements Session {
  principal: Principal;
  conn: Connection | undefined;
  private open = true;
  /** Close code we chose, for the close log line (the close handler sees the code uWS reports). */
  closedWith: Close | undefined;

  constructor(
    private readonly ws: UWS.WebSocket<SocketData>,
    readonly id: string,
    readonly subprotocol: Subprotocol,
    principal: Principal,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
  ) {
    this.principal = principal;
  }

  get isOpen(): boolean {
    return this.open;
  }

  send(frame: ServerFrame): boolean {
    if (!this.open) return false;
    this.metrics.framesOut.inc({ kind: frameKind(frame) });
    return this.sendEncoded(encodeFor(this.subprotocol, frame));
  }

  /** Sends an already encoded frame of this session's subprotocol. */
  sendEncoded(data: Uint8Array | string): boolean {
    if (!this.open) return false;
    let status = 0;
    const binary = this.subprotocol === 'proto';
    this.ws.cork(() => {
      status = this.ws.send(data, binary, false);
    });
    // uWS drops a frame when the buffer already holds more than maxBackpressure: the client has
    // lost a frame and must be told, so the connection ends with 4008 rather than going on silently.
    if (status === SEND_DROPPED) {
      this.log.warn({ session: this.id, buffered: this.ws.getBufferedAmount() }, 'slow consumer');
      this.close(Close.SLOW_CONSUMER);
      return false;
    }
    return true;
  }

  /** Bytes waiting in this socket's send buffer. */
  get bufferedAmount(): number {
    return this.open ? this.ws.getBufferedAmount() : 0;
  }

  joinTopic(key: string): void {
    if (this.open) this.ws.subscribe(nativeTopic(this.subprotocol, key));
  }

  leaveTopic(key: string): void {
    if (this.open) this.ws.unsubscribe(nativeTopic(this.subprotocol, key));
  }

  close(code: Close): void {
    if (!this.open) return;
    this.open = false;
    this.closedWith = code;
    this.ws.end(code, closeReason[code]);
  }

  /** Marks the session closed from the socket's side (uWS close handler). */
  markClosed(): void {
    this.open = false;
  }
}

/** Local fan-out over uWS native topics: one encode per subprotocol, then one native publish. */
export class UwsFanout implements Fanout {
  constructor(private readonly app: UWS.TemplatedApp, private readonly metrics: GatewayMetrics) {}

  publish(key: string, frame: ServerFrame): void {
    const kind = frameKind(frame);
    for (const subprotocol of ['proto', 'json'] as const) {
      const topic = nativeTopic(subprotocol, key);
      const count = this.app.numSubscribers(topic);
      if (count === 0) continue;
      this.metrics.framesOut.inc({ kind }, count);
      this.app.publish(topic, encodeFor(subprotocol, frame), subprotocol === 'proto', false);
    }
  }

  subscriberCount(key: string): number {
    return this.app.numSubscribers(nativeTopic('proto', key)) + this.app.numSubscribers(nativeTopic('json', key));
  }
}
