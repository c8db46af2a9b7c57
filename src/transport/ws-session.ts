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

/** One client connection. Sends are corked; a send the socket's buffer cannot take closes it with 4008. */
export class WsSession implements Session {
  principal: Principal;
  conn: Connection | undefined;
  private open = true;
  private readonly topics = new Set<string>();
  /** Close code we chose, for the close log line (the close handler sees the code uWS reports). */
  closedWith: Close | undefined;

  constructor(
    private readonly ws: UWS.WebSocket<SocketData>,
    readonly id: string,
    readonly subprotocol: Subprotocol,
    principal: Principal,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
    private readonly fanout: SessionFanout,
    private readonly maxBackpressure: number,
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

  /**
   * Sends an already encoded frame of this session's subprotocol. `cork`: batch it into one write
   * with whatever else this turn sends (fan-out, sending one frame per socket, skips the call).
   */
  sendEncoded(data: Uint8Array | string, cork = true): boolean {
    if (!this.open) return false;
    // A client that does not read while its buffer is over the limit would lose this frame: it is
    // told so with 4008 instead. The check comes before the send, so one large frame into an
    // empty buffer passes, and the gateway holds at most maxBackpressure plus one frame per socket.
    const buffered = this.ws.getBufferedAmount();
    if (buffered > this.maxBackpressure) {
      this.log.warn({ session: this.id, buffered }, 'slow consumer');
      this.close(Close.SLOW_CONSUMER);
      return false;
    }
    let status = 0;
    const binary = this.subprotocol === 'proto';
    if (cork) {
      this.ws.cork(() => {
        status = this.ws.send(data, binary, false);
      });
    } else {
      status = this.ws.send(data, binary, false);
    }
    return status !== SEND_DROPPED;
  }

  /** Bytes waiting in this socket's send buffer. */
  get bufferedAmount(): number {
    return this.open ? this.ws.getBufferedAmount() : 0;
  }

  joinTopic(key: string): void {
    if (!this.open) return;
    this.topics.add(key);
    this.fanout.join(key, this);
  }

  leaveTopic(key: string): void {
    if (this.topics.delete(key)) this.fanout.leave(key, this);
  }

  close(code: Close): void {
    if (!this.open) return;
    this.open = false;
    this.closedWith = code;
    this.ws.end(code, closeReason[code]);
  }

  /** Marks the session closed from the socket's side (uWS close handler) and leaves every group. */
  markClosed(): void {
    this.open = false;
    for (const key of this.topics) this.fanout.leave(key, this);
    this.topics.clear();
  }
}

/**
 * Local fan-out: key -> joined sessions, one encode per subprotocol per event. Sends go through each
 * session so a recipient whose buffer is full is closed with 4008: uWS native topic publishing would
 * skip such a recipient silently, and a subscriber must never lose events without being told.
 */
export class SessionFanout implements Fanout {
  private readonly groups = new Map<string, Set<WsSession>>();

  constructor(private readonly metrics: GatewayMetrics) {}

  /** Adds `session` to the group of `key`. */
  join(key: string, session: WsSession): void {
    let group = this.groups.get(key);
    if (!group) this.groups.set(key, (group = new Set()));
    group.add(session);
  }

  /** Removes `session` from the group of `key`. */
  leave(key: string, session: WsSession): void {
    const group = this.groups.get(key);
    if (group?.delete(session) && group.size === 0) this.groups.delete(key);
  }

  publish(key: string, frame: ServerFrame): void {
    const group = this.groups.get(key);
    if (!group || group.size === 0) return;
    this.metrics.framesOut.inc({ kind: frameKind(frame) }, group.size);
    let proto: Uint8Array | undefined;
    let json: string | undefined;
    // A send may close a slow session, which then leaves this group during the loop: a Set
    // iterator tolerates deletions, so no copy is made per event.
    for (const session of group) {
      if (session.subprotocol === 'proto') session.sendEncoded((proto ??= encodeFor('proto', frame) as Uint8Array), false);
      else session.sendEncoded((json ??= encodeFor('json', frame) as string), false);
    }
  }

  subscriberCount(key: string): number {
    return this.groups.get(key)?.size ?? 0;
  }
}
