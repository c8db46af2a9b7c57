// The v1 frames as plain, normalized TypeScript values (defaults filled in), independent of the
// generated protobuf code. Decoders produce these; encoders take these.

export interface StreamPosition {
  /** uint64 on the wire; safe integers suffice for stream offsets. */
  offset: number;
  epoch: string;
}

export interface InvokeBody {
  function: string;
  payload: Uint8Array;
  contentType: string;
  timeoutMs: number;
  jobTopic: string;
  metadata: Record<string, string>;
}

/** A decoded client frame: the id plus exactly one body, or kind 'none' when it carried none. */
export type ClientFrame = { id: number } & (
  | { kind: 'invoke'; invoke: InvokeBody }
  | { kind: 'cancel'; targetId: number }
  | { kind: 'subscribe'; topic: string; recover: boolean; since: StreamPosition | undefined }
  | { kind: 'unsubscribe'; topic: string }
  | { kind: 'publish'; topic: string; payload: Uint8Array; contentType: string }
  | { kind: 'ping'; clientTimeMs: number }
  | { kind: 'refresh'; token: string }
  | { kind: 'none' }
);

export type ClientFrameKind = ClientFrame['kind'];

export interface WelcomeBody {
  sessionId: string;
  gatewayId: string;
  serverTimeMs: number;
  maxFrameBytes: number;
  maxInFlight: number;
  tokenExpiresMs: number;
}
export interface ResultBody { payload: Uint8Array; contentType?: string; nodeId?: string; durationMs?: number }
export interface ProgressBody { fraction: number; payload?: Uint8Array }
export interface EventBody {
  topic: string;
  payload: Uint8Array;
  contentType?: string;
  position?: StreamPosition | undefined;
  publishedMs: number;
}
export interface ErrorBody { code: number; message: string; retryAfterMs?: number }
export interface AckBody { position?: StreamPosition | undefined; replayed?: number; recovered?: boolean }
export interface PongBody { clientTimeMs: number; serverTimeMs: number }
export interface GoAwayBody { reconnectWithinMs: number; reason: string }

/** A server frame to encode: the id (0 when unsolicited) plus exactly one body. */
export type ServerFrame = { id: number } & (
  | { welcome: WelcomeBody }
  | { result: ResultBody }
  | { progress: ProgressBody }
  | { event: EventBody }
  | { error: ErrorBody }
  | { ack: AckBody }
  | { pong: PongBody }
  | { goAway: GoAwayBody }
);

/** What a node streams back (spec section 6). */
export type NodeFrame =
  | { progress: ProgressBody }
  | { result: ResultBody }
  | { error: ErrorBody };
