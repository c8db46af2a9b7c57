// Session (router/session.ts) over one uWebSockets.js WebSocket, the per-turn outbox that corks each
// socket once, and Fanout over uWS native topics with the gateway's own send-buffer limit.
import type { Principal } from '../auth/principal.js';
import { Close, closeReason } from '../errors.js';
import type { Logger } from '../log.js';
import type { LabelCounts } from '../metrics/metrics.js';
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

/** The body kind of a server frame, for metrics. */
export function frameKind(frame: ServerFrame): string {
  for (const key in frame) if (key !== 'id') return key;
  return 'none';
}

/**
 * Frames are queued per socket and written once the loop has run this iteration's I/O callbacks (an
 * immediate): one cork, so one write, per socket per turn, however many frames it got from however
 * many node links and bus reads. Anything that must keep its place relative to these frames (a
 * topic publish, a close) flushes first.
 */
export class Outbox {
  private readonly pending: WsSession[] = [];
  private scheduled = false;
  private readonly flushNow = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /** Queues `session` for the next flush (it holds its own frames). */
  add(session: WsSession): void {
    this.pending.push(session);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /** Writes every queued frame now, each socket corked once. */
  flush(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    // A session listed twice (queued, flushed early by a publish or close, queued again) is
    // simply found empty the second time.
    for (let i = 0; i < pending.length; i++) pending[i]!.flushQueued();
    pending.length = 0;
  }
}

/** One client connection. Sends are batched per turn and corked; a send over the buffer limit closes it with 4008. */
export class WsSession implements Session {
  principal: Principal;
  conn: Connection | undefined;
  private open = true;
  private readonly topics = new Set<string>();
  /** Frames waiting for this turn's flush, their size in bytes, and an upper bound of their size on the wire. */
  private queued: (Uint8Array | string)[] = [];
  private queuedBytes = 0;
  private queuedBound = 0;
  /**
   * The socket's unsent bytes at the last check, and an upper bound of the bytes added since
   * (queued, sent or published to it): the socket is only asked again once their sum could pass
   * the limit, not for every frame.
   */
  private knownBuffered = 0;
  private growth = 0;
  private readonly binary: boolean;
  /** Close code we chose, for the close log line (the close handler sees the code uWS reports). */
  closedWith: Close | undefined;

  constructor(
    private readonly ws: UWS.WebSocket<SocketData>,
    readonly id: string,
    readonly subprotocol: Subprotocol,
    principal: Principal,
    private readonly frames: LabelCounts<'kind'>,
    private readonly log: Logger,
    private readonly fanout: SessionFanout,
    private readonly outbox: Outbox,
    private readonly maxBackpressure: number,
  ) {
    this.principal = principal;
    this.binary = subprotocol === 'proto';
  }

  get isOpen(): boolean {
    return this.open;
  }

  send(frame: ServerFrame): boolean {
    if (!this.open) return false;
    this.frames.count(frameKind(frame));
    return this.sendEncoded(encodeFor(this.subprotocol, frame));
  }

  /**
   * Queues an already encoded frame of this session's subprotocol for this turn's write. A client
   * that does not read while its buffer is over the limit would lose this frame: it is told so with
   * 4008 instead. The check comes before the frame is taken, so one large frame into an empty buffer
   * passes, and the gateway holds at most maxBackpressure plus one frame per socket.
   */
  sendEncoded(data: Uint8Array | string): boolean {
    if (!this.open) return false;
    if (this.knownBuffered + this.growth > this.maxBackpressure && !this.withinLimit()) return false;
    if (this.queued.length === 0) this.outbox.add(this);
    this.queued.push(data);
    const bytes = typeof data === 'string' ? data.length : data.byteLength;
    // A text frame's UTF-8 bytes are at most 3 per UTF-16 unit.
    const bound = (typeof data === 'string' ? bytes * 3 : bytes) + FRAME_HEADER_MAX;
    this.queuedBytes += bytes;
    this.queuedBound += bound;
    this.growth += bound;
    return true;
  }

  /** @internal Writes this session's queued frames in one corked write (called by the Outbox). */
  flushQueued(): void {
    if (this.queued.length === 0) return;
    try {
      if (this.open) this.ws.cork(this.writeQueued);
    } catch (err) {
      // uWS throws for a socket it has closed. Its close handler marks the session closed first,
      // so this only keeps a flush (which runs from an immediate) from taking the process down.
      this.open = false;
      this.log.warn({ session: this.id, err }, 'write to a closed socket');
    } finally {
      this.queued = [];
      this.queuedBytes = 0;
      this.queuedBound = 0;
    }
  }

  /** @internal `bytes` (an upper bound) were published to this socket through its topics; checks it when they could pass the limit. */
  published(bytes: number): void {
    this.growth += bytes;
    if (this.knownBuffered + this.growth > this.maxBackpressure) this.withinLimit();
  }

  // Bound once: a flush allocates no closure.
  private readonly writeQueued = (): void => {
    const { ws, binary, queued } = this;
    for (let i = 0; i < queued.length; i++) ws.send(queued[i]!, binary, false);
  };

  /**
   * True while the bytes accepted for this socket and not yet written to the network (its buffer
   * and its queue) are within the limit; otherwise closes the session with 4008 and returns false.
   */
  withinLimit(): boolean {
    if (!this.open) return false;
    const written = this.ws.getBufferedAmount();
    this.knownBuffered = written;
    this.growth = this.queuedBound;
    const buffered = written + this.queuedBytes;
    if (buffered <= this.maxBackpressure) return true;
    this.log.warn({ session: this.id, buffered }, 'slow consumer');
    this.close(Close.SLOW_CONSUMER);
    return false;
  }

  /** Bytes accepted for this socket and not yet written to the network. */
  get bufferedAmount(): number {
    return this.open ? this.ws.getBufferedAmount() + this.queuedBytes : 0;
  }

  joinTopic(key: string): void {
    if (!this.open || this.topics.has(key)) return;
    this.topics.add(key);
    this.fanout.join(key, this, this.ws);
  }

  leaveTopic(key: string): void {
    if (this.topics.delete(key)) this.fanout.leave(key, this, this.open ? this.ws : undefined);
  }

  close(code: Close): void {
    if (!this.open) return;
    // What was queued before the close was decided goes out ahead of the close frame.
    this.flushQueued();
    this.open = false;
    this.closedWith = code;
    this.ws.end(code, closeReason[code]);
  }

  /** Marks the session closed from the socket's side (uWS close handler) and leaves every group. */
  markClosed(): void {
    this.open = false;
    this.queued = [];
    this.queuedBytes = 0;
    this.queuedBound = 0;
    // uWS has already taken the socket out of its topics.
    for (const key of this.topics) this.fanout.leave(key, this, undefined);
    this.topics.clear();
  }
}

/** Largest WebSocket frame header a server writes (no mask). */
const FRAME_HEADER_MAX = 10;

/** uWS topic name of a fan-out key for one subprotocol: each topic carries one encoding. */
function uwsTopic(subprotocol: Subprotocol, key: string): string {
  return `${subprotocol === 'proto' ? 'p' : 'j'}|${key}`;
}

interface Group {
  readonly sessions: Set<WsSession>;
  readonly protoTopic: string;
  readonly jsonTopic: string;
  proto: number;
  json: number;
  /** Queued for this turn's send-buffer sweep. */
  marked: boolean;
  /** Upper bounds of the bytes published this turn, per encoding. */
  protoBytes: number;
  jsonBytes: number;
}

/** How often every joined session's send buffer is checked besides the per-turn sweep. */
export const SAFETY_SWEEP_MS = 1000;

/**
 * Local fan-out through uWS native topics: each event is encoded once per subprotocol and handed to
 * uWS publish, which writes it to every subscribed socket in native code (corked per socket, once
 * per loop iteration). uWS's own backpressure limit is off, since it would skip a slow subscriber
 * silently; instead, once uWS has written a turn's events into the sockets' buffers, the sessions of
 * the groups published to are checked against the gateway's limit (each socket is asked only when
 * what was published to it since it was last asked could take it past the limit) and closed with
 * 4008 when over it.
 * A subscriber therefore never loses an event without being told, and the gateway holds at most the
 * limit plus about one turn's events per socket.
 */
export class SessionFanout implements Fanout {
  private readonly groups = new Map<string, Group>();
  private readonly toSweep: Group[] = [];
  private sweepScheduled = false;
  private readonly sweepNow = (): void => this.sweep();
  private readonly safetyTimer: NodeJS.Timeout;

  constructor(private readonly app: UWS.TemplatedApp, private readonly frames: LabelCounts<'kind'>, private readonly outbox: Outbox) {
    this.safetyTimer = setInterval(() => this.sweepAll(), SAFETY_SWEEP_MS);
    this.safetyTimer.unref();
  }

  /** Adds `session` to the group of `key` and subscribes its socket to the group's uWS topic. */
  join(key: string, session: WsSession, ws: UWS.WebSocket<SocketData>): void {
    let group = this.groups.get(key);
    if (!group) {
      group = { sessions: new Set(), protoTopic: uwsTopic('proto', key), jsonTopic: uwsTopic('json', key), proto: 0, json: 0, marked: false, protoBytes: 0, jsonBytes: 0 };
      this.groups.set(key, group);
    }
    if (group.sessions.has(session)) return;
    group.sessions.add(session);
    if (session.subprotocol === 'proto') group.proto++;
    else group.json++;
    ws.subscribe(session.subprotocol === 'proto' ? group.protoTopic : group.jsonTopic);
  }

  /** Removes `session` from the group of `key`; `ws` (an open socket) is unsubscribed from its uWS topic. */
  leave(key: string, session: WsSession, ws: UWS.WebSocket<SocketData> | undefined): void {
    const group = this.groups.get(key);
    if (!group?.sessions.delete(session)) return;
    if (session.subprotocol === 'proto') group.proto--;
    else group.json--;
    ws?.unsubscribe(session.subprotocol === 'proto' ? group.protoTopic : group.jsonTopic);
    if (group.sessions.size === 0) this.groups.delete(key);
  }

  publish(key: string, frame: ServerFrame): void {
    const group = this.groups.get(key);
    if (!group) return;
    // Frames sent directly before this event (an Ack, a replay) must reach their sockets first.
    this.outbox.flush();
    this.frames.count(frameKind(frame), group.sessions.size);
    if (group.proto > 0) {
      const bytes = encodeFor('proto', frame) as Uint8Array;
      this.app.publish(group.protoTopic, bytes, true, false);
      group.protoBytes += bytes.byteLength + FRAME_HEADER_MAX;
    }
    if (group.json > 0) {
      const text = encodeFor('json', frame) as string;
      this.app.publish(group.jsonTopic, text, false, false);
      group.jsonBytes += text.length * 3 + FRAME_HEADER_MAX;
    }
    if (!group.marked) {
      group.marked = true;
      this.toSweep.push(group);
    }
    if (!this.sweepScheduled) {
      this.sweepScheduled = true;
      // uWS writes small published messages into the sockets when its loop hooks run (before and
      // after polling for I/O); an immediate runs after at least one of them, whatever phase of the
      // loop published.
      setImmediate(this.sweepNow);
    }
  }

  subscriberCount(key: string): number {
    return this.groups.get(key)?.sessions.size ?? 0;
  }

  /** Stops the safety sweep. */
  close(): void {
    clearInterval(this.safetyTimer);
  }

  /** Closes with 4008 every session of this turn's published groups whose buffer is over the limit. */
  private sweep(): void {
    this.sweepScheduled = false;
    const groups = this.toSweep.splice(0);
    for (const group of groups) {
      const { protoBytes, jsonBytes } = group;
      group.marked = false;
      group.protoBytes = 0;
      group.jsonBytes = 0;
      // A session closed here leaves the group; a Set iterator tolerates that.
      for (const session of group.sessions) session.published(session.subprotocol === 'proto' ? protoBytes : jsonBytes);
    }
  }

  /** The low-frequency check of every joined session. */
  private sweepAll(): void {
    for (const group of this.groups.values()) {
      for (const session of group.sessions) session.withinLimit();
    }
  }
}
