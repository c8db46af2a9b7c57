// The scope grammar of spec section 4, compiled once per token into matchers. Pure, no I/O.
//
//   scope   = grant *( " " grant )
//   grant   = "invoke:" fn-pattern / "subscribe:" topic-pattern / "publish:" topic-pattern
//   fn-pattern    = "*" / function-name                     ; "*" = any function
//   topic-pattern = "**" / seg-pattern *( "/" seg-pattern ) [ "/**" ]
//   seg-pattern   = segment / "*" / "{sub}"                  ; "*" = exactly one segment
//
// A trailing "**" matches one or more further segments: `a/**` matches `a/b` and `a/b/c`, never
// `a` itself (grant `a` as well when it is meant). `{sub}` is replaced by the token's subject as
// one whole segment; a subject that is not a valid segment makes that grant match nothing, so a
// crafted subject ("x/..", "*", "a/b") cannot widen a grant. Topics are always within the
// principal's tenant: the router namespaces them, so no grant can name another tenant.
import type { Grants } from './principal.js';
import { MAX_TOPIC_SEGMENTS, functionNameProblem, isValidTopic, segmentProblem } from './names.js';

export type Action = 'invoke' | 'subscribe' | 'publish';

const actions: ReadonlySet<string> = new Set<Action>(['invoke', 'subscribe', 'publish']);

/** Called for each grant that is ignored, with the reason; for logging at verification time. */
export type IgnoredGrant = (grant: string, problem: string) => void;

/** One segment of a compiled topic pattern: a literal, or ANY for `*`. */
const ANY = Symbol('any segment');
type SegmentMatcher = string | typeof ANY;

interface TopicPattern {
  readonly segments: readonly SegmentMatcher[];
  /** Ends in `**`: one or more further segments. */
  readonly rest: boolean;
}

/** Matchers of one action: exact names in a Set, wildcard patterns as one regex built at compile time. */
interface ActionMatcher {
  all: boolean;
  readonly exact: Set<string>;
  readonly patterns: TopicPattern[];
  wildcard?: RegExp;
}

function emptyMatcher(): ActionMatcher {
  return { all: false, exact: new Set(), patterns: [] };
}

/**
 * The regex of a pattern. It only ever runs on topics already known to be valid, so a wildcard
 * segment is simply "no slash"; literal segments hold nothing special but '.', which is escaped.
 */
function patternSource(pattern: TopicPattern): string {
  const parts = pattern.segments.map((s) => (s === ANY ? '[^/]+' : s.replaceAll('.', '\\.')));
  return parts.join('/') + (pattern.rest ? '(?:/[^/]+)+' : '');
}

function compileTopicPattern(pattern: string, subject: string): TopicPattern | string {
  if (pattern.length === 0) return 'empty pattern';
  const parts = pattern.split('/');
  if (parts.length > MAX_TOPIC_SEGMENTS) return `more than ${MAX_TOPIC_SEGMENTS} segments`;
  const segments: SegmentMatcher[] = [];
  let rest = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '**') {
      if (i !== parts.length - 1) return '"**" only as the last segment';
      rest = true;
    } else if (part === '*') {
      segments.push(ANY);
    } else if (part === '{sub}') {
      const problem = segmentProblem(subject);
      if (problem) return `subject cannot stand for {sub} (${problem})`;
      segments.push(subject);
    } else {
      const problem = segmentProblem(part);
      if (problem) return problem;
      segments.push(part);
    }
  }
  return { segments, rest };
}

function addGrant(matchers: Map<Action, ActionMatcher>, grant: string, subject: string): string | undefined {
  const colon = grant.indexOf(':');
  if (colon <= 0) return 'expected action:pattern';
  const action = grant.slice(0, colon);
  const pattern = grant.slice(colon + 1);
  if (!actions.has(action)) return `unknown action "${action}"`;
  const matcher = matchers.get(action as Action)!;

  if (action === 'invoke') {
    // Function names are one segment: "*" (or "**") grants every function.
    if (pattern === '*' || pattern === '**') matcher.all = true;
    else {
      const problem = functionNameProblem(pattern);
      if (problem) return problem;
      matcher.exact.add(pattern);
    }
    return undefined;
  }

  if (pattern === '**') {
    matcher.all = true;
    return undefined;
  }
  const compiled = compileTopicPattern(pattern, subject);
  if (typeof compiled === 'string') return compiled;
  if (!compiled.rest && !compiled.segments.includes(ANY)) matcher.exact.add(compiled.segments.join('/'));
  else matcher.patterns.push(compiled);
  return undefined;
}

class CompiledGrants implements Grants {
  constructor(private readonly matchers: ReadonlyMap<Action, ActionMatcher>) {}

  allows(action: Action, name: string): boolean {
    const matcher = this.matchers.get(action);
    if (!matcher) return false;
    if (action === 'invoke') {
      if (functionNameProblem(name) !== undefined) return false;
      return matcher.all || matcher.exact.has(name);
    }
    // A name that is not a valid topic ('*', '..', empty segments, look-alikes) matches nothing.
    if (!isValidTopic(name)) return false;
    return matcher.all || matcher.exact.has(name) || (matcher.wildcard?.test(name) ?? false);
  }
}

/**
 * Compiles a `scope` claim for `subject`. Unknown actions and malformed grants are ignored (each
 * reported to `onIgnored`), never widened: the result grants exactly what the valid grants say.
 */
export function compileGrants(scopeClaim: string, subject: string, onIgnored?: IgnoredGrant): Grants {
  const matchers = new Map<Action, ActionMatcher>([
    ['invoke', emptyMatcher()],
    ['subscribe', emptyMatcher()],
    ['publish', emptyMatcher()],
  ]);
  for (const grant of scopeClaim.split(/[ \t\r\n]+/)) {
    if (grant.length === 0) continue;
    const problem = addGrant(matchers, grant, subject);
    if (problem !== undefined) onIgnored?.(grant, problem);
  }
  for (const matcher of matchers.values()) {
    if (matcher.patterns.length > 0) matcher.wildcard = new RegExp(`^(?:${matcher.patterns.map(patternSource).join('|')})$`);
  }
  return new CompiledGrants(matchers);
}

/** Grants nothing; for principals without a scope claim. */
export const noGrants: Grants = { allows: () => false };
