// What the router needs of one client connection; transport/ implements it over uWebSockets.js.
import type { Principal } from '../auth/principal.js';
import type { Close } from '../errors.js';
import type { Subprotocol } from '../protocol/codec.js';
import type { ServerFrame } from '../protocol/frames.js';

export interface Session {
  /** Unique per connection (Welcome.session_id). */
  readonly id: string;
  readonly subprotocol: Subprotocol;
  /** The current credential; replaced on a successful Refresh. */
  principal: Principal;
  /** False once the socket is closed; sends are then dropped. */
  readonly isOpen: boolean;
  /** Encodes and sends one frame (corked). Returns false when the frame was dropped or the socket is backpressured past its limit. */
  send(frame: ServerFrame): boolean;
  /** Joins the local fan-out group of a bus key (a uWS native topic per subprotocol). */
  joinTopic(key: string): void;
  /** Leaves it again. */
  leaveTopic(key: string): void;
  /** Closes with a spec close code (errors.ts) and its reason. */
  close(code: Close): void;
}

/** Local fan-out: hands one event to every local session joined to `key`, encoding it once per subprotocol. */
export interface Fanout {
  publish(key: string, frame: ServerFrame): void;
  /** How many local sessions are joined to `key`. */
  subscriberCount(key: string): number;
}
