// Name rules of spec section 4: what a topic, a function name and a tenant may look like.
// Pure. Each check returns a short problem for humans, or undefined when the name is valid.

/** Most segments a topic may have. */
export const MAX_TOPIC_SEGMENTS = 16;
/** Longest topic segment, in characters. */
export const MAX_SEGMENT_LENGTH = 64;
/** Longest function name, in characters. */
export const MAX_FUNCTION_LENGTH = 128;
/** Longest tenant name, in characters (a tenant is one segment). */
export const MAX_TENANT_LENGTH = MAX_SEGMENT_LENGTH;

// ASCII only: look-alike letters (Cyrillic 'а', fullwidth '／', U+2215 '∕') are simply not allowed.
const segmentChars = /^[A-Za-z0-9._~-]+$/;
const functionChars = /^[A-Za-z0-9._-]+$/;

/** Why `segment` is not a valid topic segment, or undefined when it is. */
export function segmentProblem(segment: string): string | undefined {
  if (segment.length === 0) return 'empty segment';
  if (segment.length > MAX_SEGMENT_LENGTH) return `segment longer than ${MAX_SEGMENT_LENGTH} characters`;
  if (segment === '.' || segment === '..') return `segment "${segment}" is not allowed`;
  if (!segmentChars.test(segment)) return 'segment characters must be A-Z a-z 0-9 . _ ~ -';
  return undefined;
}

// The whole topic rule in two precompiled tests, for hot paths that need only a yes or no.
const topicShape = /^[A-Za-z0-9._~-]{1,64}(?:\/[A-Za-z0-9._~-]{1,64}){0,15}$/;
const dotSegment = /(?:^|\/)\.\.?(?:\/|$)/;

/** Whether `topic` is valid; the same rule as topicProblem, without building a message. */
export function isValidTopic(topic: string): boolean {
  return typeof topic === 'string' && topicShape.test(topic) && !dotSegment.test(topic);
}

/** Why `topic` is not a valid topic (1–16 segments joined by '/'), or undefined when it is. */
export function topicProblem(topic: string): string | undefined {
  if (typeof topic !== 'string' || topic.length === 0) return 'topic is empty';
  // Cheap bound before splitting: 16 segments of 64 characters plus separators.
  if (topic.length > MAX_TOPIC_SEGMENTS * (MAX_SEGMENT_LENGTH + 1)) return 'topic is too long';
  const segments = topic.split('/');
  if (segments.length > MAX_TOPIC_SEGMENTS) return `topic has more than ${MAX_TOPIC_SEGMENTS} segments`;
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem) return `topic: ${problem}`;
  }
  return undefined;
}

/** Why `name` is not a valid function name (1–128 of [A-Za-z0-9._-], not "." or ".."), or undefined when it is. */
export function functionNameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'function name is empty';
  if (name.length > MAX_FUNCTION_LENGTH) return `function name longer than ${MAX_FUNCTION_LENGTH} characters`;
  // The name becomes a path segment at the node (/v1/invoke/<name>), where "." and ".." would move up.
  if (name === '.' || name === '..') return `function name "${name}" is not allowed`;
  if (!functionChars.test(name)) return 'function name characters must be A-Z a-z 0-9 . _ -';
  return undefined;
}

/**
 * Why `tenant` is not a valid tenant, or undefined when it is. A tenant follows the segment rule,
 * so it never holds '/' or ':' and cannot split a Redis channel `prefix:tenant:topic` differently.
 */
export function tenantProblem(tenant: string): string | undefined {
  if (typeof tenant !== 'string' || tenant.length === 0) return 'tenant is empty';
  if (tenant.length > MAX_TENANT_LENGTH) return `tenant longer than ${MAX_TENANT_LENGTH} characters`;
  if (tenant === '.' || tenant === '..') return `tenant "${tenant}" is not allowed`;
  if (!segmentChars.test(tenant)) return 'tenant characters must be A-Z a-z 0-9 . _ ~ -';
  return undefined;
}
