// The bus: carries events between gateway instances, keeps per-topic history where asked, and
// calls back up through BusHandler. It never imports the hub (the hub registers itself).
import type { EventBody, StreamPosition } from '../protocol/frames.js';

/** How much history a topic keeps: the newest `size` events, kept `ttlMs` after the last publish. */
export interface HistoryRetention {
  readonly size: number;
  readonly ttlMs: number;
}

/** A topic's stream as read at one instant: its epoch, the offset of its newest event, and held events. */
export interface HistoryState {
  /** Random id of this incarnation of the stream; '' when the topic holds no history. */
  readonly epoch: string;
  /** Offset of the newest event ever appended in this epoch (0 when none). */
  readonly top: number;
  /** Held events with offset > the `after` asked for, oldest first, each with its position. */
  readonly events: readonly EventBody[];
}

/** The bus's callbacks into the layer above (the hub). Called in the order the bus received events. */
export interface BusHandler {
  /** One event on a subscribed topic. `event.topic` is already set from the channel. */
  onEvent(tenant: string, topic: string, event: EventBody): void;
  /** The link to the bus broke: events may be missed from now until the next onResync. */
  onBreak(): void;
  /**
   * The link to the bus came back after a break and every listed topic is subscribed again; events
   * published while it was down may have been missed.
   */
  onResync(topics: ReadonlyArray<{ tenant: string; topic: string }>): void;
}

/** A topic-addressed event bus shared by all gateway instances. */
export interface Bus {
  /** Registers the one handler that receives events and resync notices. */
  setHandler(handler: BusHandler): void;
  /**
   * Makes sure this instance listens on the topic's channel (once per instance, however often it is
   * called); resolves when every event published from now on will reach the handler. Rejects with
   * GatewayError UNAVAILABLE when the bus cannot be reached.
   */
  subscribe(tenant: string, topic: string): Promise<void>;
  /** Stops listening on the topic's channel (commands issued in one tick are sent together). */
  unsubscribe(tenant: string, topic: string): void;
  /**
   * Publishes `event` on the topic; with `retention`, first appends it to the topic's history in
   * one atomic step and resolves with its position. At most once; ordered per topic per publisher.
   */
  publish(tenant: string, topic: string, event: EventBody, retention?: HistoryRetention): Promise<StreamPosition | undefined>;
  /** Reads the topic's stream atomically; events after `after` are included (none when `after` is Infinity). */
  history(tenant: string, topic: string, after: number): Promise<HistoryState>;
  /** Connected, and (for a remote bus) its delivery probe passes. */
  ready(): boolean;
  close(): Promise<void>;
}
