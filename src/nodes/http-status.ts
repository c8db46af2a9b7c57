// How a node's HTTP answer maps to the spec's codes (spec section 6). Pure.
import { Code } from '../errors.js';

/** The code for a node's non-2xx HTTP status. */
export function codeForNodeStatus(status: number): Code {
  switch (status) {
    case 400: return Code.INVALID_ARGUMENT;
    case 403: return Code.PERMISSION_DENIED;
    case 404: return Code.NOT_FOUND;
    case 408: return Code.DEADLINE_EXCEEDED;
    case 409: return Code.ABORTED;
    case 412: return Code.FAILED_PRECONDITION;
    case 413: return Code.INVALID_ARGUMENT;
    case 429: return Code.RESOURCE_EXHAUSTED;
    case 499: return Code.CANCELLED;
    case 503: return Code.UNAVAILABLE;
    case 504: return Code.DEADLINE_EXCEEDED;
    default: return Code.INTERNAL;
  }
}

/** Longest Retry-After passed on to a client. */
const RETRY_AFTER_CAP_MS = 3_600_000;

/**
 * Milliseconds a Retry-After header value asks for: delta-seconds ("2", "0.5") or an HTTP-date.
 * 0 when absent or unreadable; capped at one hour.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number {
  if (value === undefined) return 0;
  const text = value.trim();
  if (text === '') return 0;
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Math.ceil(Number(text) * 1000);
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return 0;
    ms = at - nowMs;
  }
  return Math.max(0, Math.min(RETRY_AFTER_CAP_MS, ms));
}

/**
 * The human message of a node's error answer: the `message` of a JSON body
 * `{"code":..,"message":..}`, else the body as text when short and printable, else the status.
 */
export function nodeErrorMessage(status: number, body: Uint8Array): string {
  const fallback = `node answered HTTP ${status}`;
  if (body.length === 0 || body.length > 4096) return fallback;
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8').trim();
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as { message?: unknown };
      if (typeof parsed.message === 'string' && parsed.message !== '') return clip(parsed.message);
    } catch {
      // not JSON after all: fall through to the plain-text form
    }
  }
  if (/^[^\x00-\x08\x0e-\x1f\x7f]+$/.test(text)) return clip(text);
  return fallback;
}

function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
