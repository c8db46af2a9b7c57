// Which topics keep history, and how much (RELAYGATE_HISTORY, RELAYGATE_JOB_HISTORY). Pure.
import { ConfigError, parseDuration } from '../config.js';
import type { HistoryRetention } from './bus.js';

/** Whether a topic pattern in grant syntax matches `topic`: `*` is one segment, a trailing `**` one or more. */
export function topicPatternMatches(pattern: string, topic: string): boolean {
  const want = pattern.split('/');
  const have = topic.split('/');
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w === '**' && i === want.length - 1) return have.length > i;
    if (i >= have.length) return false;
    if (w !== '*' && w !== have[i]) return false;
  }
  return want.length === have.length;
}

const segment = /^(?:\*\*?|[A-Za-z0-9._~-]{1,64})$/;

function patternProblem(pattern: string): string | undefined {
  const parts = pattern.split('/');
  if (parts.length > 16) return 'more than 16 segments';
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (!segment.test(p) || p === '.' || p === '..') return `bad segment ${JSON.stringify(p)}`;
    if (p === '**' && i !== parts.length - 1) return '"**" may only end a pattern';
  }
  return undefined;
}

/** Parses "size:ttl" (e.g. "1000:1h"); throws ConfigError naming `setting`. */
export function parseRetention(text: string, setting: string): HistoryRetention {
  const match = /^(\d+):(.+)$/.exec(text.trim());
  const size = match ? Number(match[1]) : NaN;
  const ttlMs = match ? parseDuration(match[2]!) : undefined;
  if (!match || !Number.isSafeInteger(size) || size < 1 || size > 1_000_000) {
    throw new ConfigError(setting, `history size must be a whole number from 1 to 1000000 in "size:ttl" (got ${JSON.stringify(text)})`);
  }
  if (ttlMs === undefined || ttlMs < 1000) {
    throw new ConfigError(setting, `history ttl must be a duration of at least 1s in "size:ttl" (got ${JSON.stringify(text)})`);
  }
  return { size, ttlMs };
}

/** The configured history rules: the first matching pattern wins; job topics use their own retention. */
export class HistoryPolicy {
  private constructor(
    private readonly rules: ReadonlyArray<{ pattern: string; retention: HistoryRetention }>,
    /** Retention of job topics (Invoke.job_topic). */
    readonly job: HistoryRetention,
  ) {}

  /** Builds the policy from RELAYGATE_HISTORY entries ("pattern=size:ttl") and RELAYGATE_JOB_HISTORY ("size:ttl"). */
  static parse(entries: readonly string[] | undefined, jobHistory = '64:10m'): HistoryPolicy {
    const rules = (entries ?? []).map((entry) => {
      const eq = entry.lastIndexOf('=');
      if (eq <= 0) throw new ConfigError('RELAYGATE_HISTORY', `expected pattern=size:ttl (got ${JSON.stringify(entry)})`);
      const pattern = entry.slice(0, eq).trim();
      const problem = patternProblem(pattern);
      if (problem) throw new ConfigError('RELAYGATE_HISTORY', `pattern ${JSON.stringify(pattern)}: ${problem}`);
      return { pattern, retention: parseRetention(entry.slice(eq + 1), 'RELAYGATE_HISTORY') };
    });
    return new HistoryPolicy(rules, parseRetention(jobHistory, 'RELAYGATE_JOB_HISTORY'));
  }

  /** The retention of `topic`, or undefined when it keeps no history. */
  retentionFor(topic: string): HistoryRetention | undefined {
    for (const rule of this.rules) if (topicPatternMatches(rule.pattern, topic)) return rule.retention;
    return undefined;
  }
}
