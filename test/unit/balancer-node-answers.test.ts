// How node answers map to the spec's codes (spec section 6), as the balancer's link reports them.
import { describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { codeForNodeStatus, nodeErrorMessage, parseRetryAfter } from '../../src/nodes/http-status.js';
import { parseRegistration, parseRegistryMessage, registrationTtlMs, registryKeys } from '../../src/nodes/registration.js';

describe('node HTTP status → code', () => {
  it.each([
    [400, Code.INVALID_ARGUMENT], [404, Code.NOT_FOUND], [408, Code.DEADLINE_EXCEEDED], [504, Code.DEADLINE_EXCEEDED],
    [429, Code.RESOURCE_EXHAUSTED], [503, Code.UNAVAILABLE], [500, Code.INTERNAL], [502, Code.INTERNAL], [599, Code.INTERNAL],
    [403, Code.PERMISSION_DENIED], [409, Code.ABORTED], [412, Code.FAILED_PRECONDITION], [413, Code.INVALID_ARGUMENT],
    [499, Code.CANCELLED], [418, Code.INTERNAL], [302, Code.INTERNAL],
  ])('%i → %i', (status, code) => {
    expect(codeForNodeStatus(status)).toBe(code);
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delta-seconds and HTTP dates, capped at an hour', () => {
    expect(parseRetryAfter('2', now)).toBe(2_000);
    expect(parseRetryAfter(' 0.25 ', now)).toBe(250);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('999999', now)).toBe(3_600_000);
  });
  it('reads nothing from absent or junk values', () => {
    expect(parseRetryAfter(undefined, now)).toBe(0);
    expect(parseRetryAfter('', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBe(0);
    expect(parseRetryAfter('-3', now)).toBe(0);
  });
});

describe('node error messages', () => {
  it('takes the message of a JSON error body, plain text, or falls back to the status', () => {
    expect(nodeErrorMessage(400, Buffer.from('{"code":"INVALID_ARGUMENT","message":"n must be positive"}'))).toBe('n must be positive');
    expect(nodeErrorMessage(500, Buffer.from('database down'))).toBe('database down');
    expect(nodeErrorMessage(500, Buffer.from([0, 1, 2, 3]))).toBe('node answered HTTP 500');
    expect(nodeErrorMessage(503, new Uint8Array(0))).toBe('node answered HTTP 503');
    expect(nodeErrorMessage(500, Buffer.from('x'.repeat(300)))).toHaveLength(201);
  });
});

describe('registry format', () => {
  it('names keys under the prefix with one hash tag, and the channel apart from event channels', () => {
    const keys = registryKeys('rg-test');
    expect(keys.set).toBe('{rg-test}.registry');
    expect(keys.node('n1')).toBe('{rg-test}.registry.node:n1');
    expect(keys.channel).toBe('rg-test.registry');
    expect(registrationTtlMs(2_000)).toBe(3_000);
  });

  it('accepts well-formed registrations and refuses the rest', () => {
    expect(parseRegistration({ id: 'n1', url: 'http://h:1', weight: 2, functions: ['a'], linkUrl: 'relaygate+tcp://h:2' }))
      .toEqual({ id: 'n1', url: 'http://h:1', weight: 2, functions: ['a'], linkUrl: 'relaygate+tcp://h:2' });
    expect(parseRegistration({ id: 'n1', url: 'http://h:1', functions: [] })).toEqual({ id: 'n1', url: 'http://h:1', weight: 1, functions: [] });
    for (const bad of [null, 'x', { url: 'http://h:1', functions: [] }, { id: 'n', url: 'ftp://h', functions: [] }, { id: 'n', url: 'http://h', weight: -1, functions: [] }, { id: 'n', url: 'http://h', functions: [1] }]) {
      expect(parseRegistration(bad)).toBeUndefined();
    }
    expect(parseRegistryMessage('{"type":"leave","node":{"id":"n","url":"http://h:1","functions":[]}}')?.type).toBe('leave');
    expect(parseRegistryMessage('{"type":"explode","node":{"id":"n","url":"http://h:1","functions":[]}}')).toBeUndefined();
    expect(parseRegistryMessage('not json')).toBeUndefined();
  });
});
