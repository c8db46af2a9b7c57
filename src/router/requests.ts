// Validation and authorization of requests, shared by the WebSocket router and the HTTP routes.
// Pure: each check returns normally or throws the GatewayError the client is to receive.
import type { Principal } from '../auth/principal.js';
import { functionNameProblem, topicProblem } from '../auth/names.js';
import { Code, GatewayError } from '../errors.js';

/** Most metadata entries one Invoke may carry. */
export const MAX_METADATA_ENTRIES = 32;
/** Longest metadata key. */
export const MAX_METADATA_KEY_LENGTH = 64;
/** Longest metadata value. */
export const MAX_METADATA_VALUE_LENGTH = 4096;
/** Largest sum of metadata key and value lengths. */
export const MAX_METADATA_TOTAL = 16 * 1024;

// Keys become `x-relaygate-meta-<key>` headers: letters, digits, '-' and '_' only, so no proxy
// rewrites or merges them. Values: visible ASCII, space and tab (no CR/LF/NUL header splitting).
const metadataKeyPattern = /^[A-Za-z0-9_-]+$/;
const metadataValuePattern = /^[\t\x20-\x7e]*$/;

/** Throws INVALID_ARGUMENT unless every metadata key and value is safe to send as an HTTP header. */
export function checkMetadata(metadata: Readonly<Record<string, string>>): void {
  let total = 0;
  let count = 0;
  for (const key of Object.keys(metadata)) {
    const value = metadata[key]!;
    if (++count > MAX_METADATA_ENTRIES) throw invalid(`metadata has more than ${MAX_METADATA_ENTRIES} entries`);
    if (key.length === 0 || key.length > MAX_METADATA_KEY_LENGTH || !metadataKeyPattern.test(key)) {
      throw invalid(`metadata key must be 1-${MAX_METADATA_KEY_LENGTH} characters of A-Z a-z 0-9 - _`);
    }
    if (value.length > MAX_METADATA_VALUE_LENGTH || !metadataValuePattern.test(value)) {
      throw invalid(`metadata value of ${key} must be at most ${MAX_METADATA_VALUE_LENGTH} characters of printable ASCII`);
    }
    total += key.length + value.length;
    if (total > MAX_METADATA_TOTAL) throw invalid(`metadata larger than ${MAX_METADATA_TOTAL} characters`);
  }
}

/** Throws INVALID_ARGUMENT for a bad function name, PERMISSION_DENIED when invoking it is not granted. */
export function checkInvokeGrant(principal: Principal, fn: string): void {
  const problem = functionNameProblem(fn);
  if (problem) throw invalid(problem);
  if (!principal.grants.allows('invoke', fn)) throw new GatewayError(Code.PERMISSION_DENIED, `invoke not granted: ${fn}`);
}

/** Throws INVALID_ARGUMENT for a bad topic, PERMISSION_DENIED when `action` on it is not granted. */
export function checkTopicGrant(principal: Principal, action: 'subscribe' | 'publish', topic: string): void {
  checkTopic(topic);
  if (!principal.grants.allows(action, topic)) throw new GatewayError(Code.PERMISSION_DENIED, `${action} not granted: ${topic}`);
}

/** Throws INVALID_ARGUMENT for a bad topic name. */
export function checkTopic(topic: string): void {
  const problem = topicProblem(topic);
  if (problem) throw invalid(problem);
}

/**
 * Checks an Invoke's job topic: the invoker must hold a `publish:` grant on it, since the gateway
 * publishes the job's progress and outcome there on the invoker's behalf.
 */
export function checkJobTopic(principal: Principal, topic: string): void {
  checkTopicGrant(principal, 'publish', topic);
}

/** The absolute deadline of an Invoke: `timeoutMs` 0 means `defaultMs`; every timeout is capped at `maxMs`. */
export function invokeDeadline(nowMs: number, timeoutMs: number, defaultMs: number, maxMs: number): number {
  const wanted = timeoutMs > 0 ? timeoutMs : defaultMs;
  return nowMs + Math.min(wanted, maxMs);
}

function invalid(message: string): GatewayError {
  return new GatewayError(Code.INVALID_ARGUMENT, message);
}
