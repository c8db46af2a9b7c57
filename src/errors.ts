// The spec's status codes and close codes, in one place (spec sections 2 and 5).

/** Status codes; same numbers as gRPC and as the wire enum relaygate.v1.Code. */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

const codeNames = new Map<number, string>(Object.entries(Code).map(([name, value]) => [value, name]));

/** The wire name of a code ("PERMISSION_DENIED"); unknown numbers read as "UNKNOWN". */
export function codeName(code: number): string {
  return codeNames.get(code) ?? 'UNKNOWN';
}

/** The code for a wire name, or undefined when the name is not one of the spec's. */
export function codeFromName(name: string): Code | undefined {
  return Object.hasOwn(Code, name) ? Code[name as keyof typeof Code] : undefined;
}

/** HTTP status for a code, as spec sections 6 and 8 map them. */
export function httpStatusFor(code: Code): number {
  switch (code) {
    case Code.OK: return 200;
    case Code.INVALID_ARGUMENT: return 400;
    case Code.UNAUTHENTICATED: return 401;
    case Code.PERMISSION_DENIED: return 403;
    case Code.NOT_FOUND: return 404;
    case Code.FAILED_PRECONDITION: return 412;
    case Code.ABORTED: return 409;
    case Code.RESOURCE_EXHAUSTED: return 429;
    case Code.CANCELLED: return 499;
    case Code.UNAVAILABLE: return 503;
    case Code.DEADLINE_EXCEEDED: return 504;
    default: return 500;
  }
}

/** WebSocket close codes (spec section 5). */
export const Close = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  TOO_BIG: 1009,
  TOKEN_EXPIRED: 4001,
  SLOW_CONSUMER: 4008,
  BUS_GAP: 4010,
  RATE_LIMITED: 4029,
  PROTOCOL_VIOLATIONS: 4400,
} as const;
export type Close = (typeof Close)[keyof typeof Close];

/** Human reasons sent with each close code. */
export const closeReason: Record<Close, string> = {
  [Close.NORMAL]: 'normal',
  [Close.GOING_AWAY]: 'gateway shutting down',
  [Close.TOO_BIG]: 'frame larger than max_frame_bytes',
  [Close.TOKEN_EXPIRED]: 'credential expired',
  [Close.SLOW_CONSUMER]: 'slow consumer',
  [Close.BUS_GAP]: 'events lost on a live subscription; resubscribe with recover',
  [Close.RATE_LIMITED]: 'rate limit exceeded repeatedly',
  [Close.PROTOCOL_VIOLATIONS]: 'repeated protocol violations',
};

/**
 * A failure that answers one request and keeps the connection open. `message` is for humans and
 * never carries secrets or stack traces; the low-level cause stays in `cause` for the logs.
 */
export class GatewayError extends Error {
  readonly code: Code;
  readonly retryAfterMs: number;

  constructor(code: Code, message: string, options: { retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.retryAfterMs = options.retryAfterMs ?? 0;
  }
}

/** Narrows anything thrown to a GatewayError: unknown errors become INTERNAL, in this one place. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError(Code.INTERNAL, 'internal error', { cause: err });
}
