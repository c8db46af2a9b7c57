import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compileGrants, type Action } from '../../src/auth/scopes.js';
import { isValidTopic, topicProblem } from '../../src/auth/names.js';

type Case = [scope: string, subject: string, action: Action, name: string, allowed: boolean, why: string];

const long = 'a'.repeat(65);
const seg64 = 'b'.repeat(64);

const cases: Case[] = [
  // invoke
  ['invoke:*', 'u1', 'invoke', 'sha256', true, '* grants every function'],
  ['invoke:sha256', 'u1', 'invoke', 'sha256', true, 'exact function'],
  ['invoke:sha256', 'u1', 'invoke', 'sha512', false, 'other function'],
  ['invoke:sha256', 'u1', 'invoke', 'SHA256', false, 'names are case-sensitive'],
  ['invoke:*', 'u1', 'invoke', 'a/b', false, "'/' is not in a function name"],
  ['invoke:*', 'u1', 'invoke', '', false, 'empty function name'],
  ['invoke:*', 'u1', 'invoke', 'x'.repeat(129), false, 'over-long function name'],
  ['invoke:*', 'u1', 'invoke', 'x'.repeat(128), true, 'longest function name'],
  ['invoke:*', 'u1', 'invoke', 'shа256', false, 'Cyrillic а in a function name'],
  ['invoke:*', 'u1', 'invoke', '*', false, "'*' is not a function name"],
  ['invoke:*', 'u1', 'invoke', '..', false, "'..' would climb the node's path"],
  ['invoke:*', 'u1', 'invoke', '.', false, "'.' is not a function name"],
  ['invoke:*', 'u1', 'invoke', 'v1.2..3', true, 'dots inside a function name are fine'],
  ['invoke:sha*', 'u1', 'invoke', 'sha256', false, 'no partial wildcards in function grants'],
  ['subscribe:**', 'u1', 'invoke', 'sha256', false, 'subscribe grant does not grant invoke'],

  // plain topic grants
  ['subscribe:resources/**', 'u1', 'subscribe', 'resources/a', true, '** one segment'],
  ['subscribe:resources/**', 'u1', 'subscribe', 'resources/a/b/c', true, '** several segments'],
  ['subscribe:resources/**', 'u1', 'subscribe', 'resources', false, 'a/** does not match a itself'],
  ['subscribe:resources/**', 'u1', 'subscribe', 'resourcesX/a', false, 'literal prefix must be a whole segment'],
  ['subscribe:resources/**', 'u1', 'publish', 'resources/a', false, 'subscribe does not grant publish'],
  ['subscribe:resources/**', 'u1', 'subscribe', 'Resources/a', false, 'case-sensitive'],
  ['publish:chat/*', 'u1', 'publish', 'chat/room1', true, '* one segment'],
  ['publish:chat/*', 'u1', 'publish', 'chat/room1/x', false, '* is exactly one segment'],
  ['publish:chat/*', 'u1', 'publish', 'chat', false, '* needs a segment'],
  ['publish:chat/*/log', 'u1', 'publish', 'chat/r/log', true, '* in the middle'],
  ['publish:chat/*/log', 'u1', 'publish', 'chat/r/other', false, 'literal after *'],
  ['publish:chat/room1', 'u1', 'publish', 'chat/room1', true, 'exact topic'],
  ['subscribe:**', 'u1', 'subscribe', 'any/thing/at/all', true, '** alone grants every topic'],
  ['subscribe:*', 'u1', 'subscribe', 'one', true, '* alone: one-segment topics'],
  ['subscribe:*', 'u1', 'subscribe', 'one/two', false, '* alone: not two segments'],

  // escapes through the requested topic
  ['subscribe:resources/**', 'u1', 'subscribe', 'resources/../admin', false, "'..' segment"],
  ['subscribe:resources/**', 'u1', 'subscribe', 'resources/./a', false, "'.' segment"],
  ['subscribe:resources/**', 'u1', 'subscribe', 'resources//a', false, 'empty segment'],
  ['subscribe:resources/**', 'u1', 'subscribe', 'resources/', false, 'trailing slash'],
  ['subscribe:resources/**', 'u1', 'subscribe', '/resources/a', false, 'leading slash'],
  ['subscribe:resources/*', 'u1', 'subscribe', 'resources/*', false, "'*' in the requested topic"],
  ['subscribe:resources/*', 'u1', 'subscribe', 'resources/**', false, "'**' in the requested topic"],
  ['subscribe:resources/**', 'u1', 'subscribe', 'resourcеs/a', false, 'Cyrillic е look-alike'],
  ['subscribe:**', 'u1', 'subscribe', 'resources／a', false, 'fullwidth solidus ／'],
  ['subscribe:**', 'u1', 'subscribe', 'resources∕a', false, 'U+2215 division slash'],
  ['subscribe:**', 'u1', 'subscribe', 'a\u0000b', false, 'NUL in a topic'],
  ['subscribe:**', 'u1', 'subscribe', 'tenant-b:resources', false, "':' cannot name another tenant's channel"],
  ['subscribe:**', 'u1', 'subscribe', `a/${long}`, false, 'segment over 64 characters'],
  ['subscribe:**', 'u1', 'subscribe', `a/${seg64}`, true, 'segment of exactly 64 characters'],
  ['subscribe:**', 'u1', 'subscribe', Array(17).fill('s').join('/'), false, '17 segments'],
  ['subscribe:**', 'u1', 'subscribe', Array(16).fill('s').join('/'), true, '16 segments'],
  ['subscribe:**', 'u1', 'subscribe', '', false, 'empty topic'],
  ['subscribe:**', 'u1', 'subscribe', 'a b', false, 'space in a topic'],

  // {sub}
  ['subscribe:users/{sub}/**', 'alice', 'subscribe', 'users/alice/inbox', true, '{sub} is the subject'],
  ['subscribe:users/{sub}/**', 'alice', 'subscribe', 'users/bob/inbox', false, "another subject's topic"],
  ['subscribe:users/{sub}/**', 'alice', 'subscribe', 'users/alice', false, '{sub}/** does not match the bare user topic'],
  ['subscribe:users/{sub}', 'alice', 'subscribe', 'users/alice', true, '{sub} as the last segment'],
  ['subscribe:users/{sub}/**', 'bob/..', 'subscribe', 'users/bob/../x', false, "subject with '/' and '..'"],
  ['subscribe:users/{sub}/**', 'a/b', 'subscribe', 'users/a/b/c', false, "subject with '/' matches nothing"],
  ['subscribe:users/{sub}/**', '*', 'subscribe', 'users/bob/inbox', false, "subject '*' is not a wildcard"],
  ['subscribe:users/{sub}/**', '**', 'subscribe', 'users/x/y', false, "subject '**' is not a wildcard"],
  ['subscribe:users/{sub}/**', '..', 'subscribe', 'users/../x', false, "subject '..'"],
  ['subscribe:users/{sub}/**', '', 'subscribe', 'users//x', false, 'empty subject'],
  ['subscribe:users/{sub}/**', long, 'subscribe', `users/${long}/x`, false, 'over-long subject'],
  ['subscribe:users/{sub}/** subscribe:public/*', 'a/b', 'subscribe', 'public/x', true, 'a bad {sub} grant leaves the others intact'],
  ['subscribe:users/{sub}/**', 'alice', 'subscribe', 'users/{sub}/inbox', false, "literal '{sub}' requested"],
  ['subscribe:users/x{sub}/**', 'alice', 'subscribe', 'users/xalice/inbox', false, '{sub} only as a whole segment'],
  ['invoke:{sub}', 'sha256', 'invoke', 'sha256', false, '{sub} means nothing in function grants'],

  // malformed grants are ignored, never widened
  ['subscribe:a/**/b', 'u1', 'subscribe', 'a/x/b', false, "'**' in the middle of a grant"],
  ['subscribe:a/**/b', 'u1', 'subscribe', 'a/b', false, "'**' in the middle grants nothing"],
  ['subscribe:a*/b', 'u1', 'subscribe', 'ab/b', false, 'partial * in a segment'],
  ['subscribe:a//b', 'u1', 'subscribe', 'a/b', false, 'empty segment in a grant'],
  ['subscribe:a/../b', 'u1', 'subscribe', 'b', false, "'..' in a grant"],
  ['subscribe:', 'u1', 'subscribe', 'a', false, 'empty pattern'],
  ['admin:**', 'u1', 'subscribe', 'a', false, 'unknown action'],
  ['**', 'u1', 'subscribe', 'a', false, 'no action'],
  [':**', 'u1', 'subscribe', 'a', false, 'empty action'],
  ['Subscribe:**', 'u1', 'subscribe', 'a', false, 'actions are case-sensitive'],
  ['', 'u1', 'subscribe', 'a', false, 'empty scope'],
  ['  subscribe:a   publish:b  ', 'u1', 'publish', 'b', true, 'extra whitespace between grants'],
  ['subscribe:a\tpublish:b', 'u1', 'publish', 'b', true, 'tab between grants'],
  ['subscribe:a,publish:b', 'u1', 'publish', 'b', false, 'commas do not separate grants'],
];

describe('compileGrants', () => {
  it('has a table of at least 40 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases)('%j sub=%j %s %j → %s (%s)', (scope, subject, action, name, allowed) => {
    expect(compileGrants(scope, subject).allows(action, name)).toBe(allowed);
  });

  it('reports each ignored grant with a reason', () => {
    const ignored: Array<[string, string]> = [];
    compileGrants('invoke:* admin:x subscribe:a/**/b subscribe:users/{sub} publish:ok', 'x/y', (g, p) => ignored.push([g, p]));
    expect(ignored.map(([g]) => g)).toEqual(['admin:x', 'subscribe:a/**/b', 'subscribe:users/{sub}']);
    for (const [, problem] of ignored) expect(problem.length).toBeGreaterThan(0);
  });

  it('is not fooled by prototype names', () => {
    const grants = compileGrants('subscribe:a', 'u');
    expect(grants.allows('constructor' as Action, 'a')).toBe(false);
    expect(grants.allows('__proto__' as Action, 'a')).toBe(false);
    expect(compileGrants('constructor:** __proto__:**', 'u').allows('subscribe', 'a')).toBe(false);
  });
});

const segmentArb = fc.stringMatching(/^[A-Za-z0-9._~-]{1,8}$/).filter((s) => s !== '.' && s !== '..');
const topicArb = fc.array(segmentArb, { minLength: 1, maxLength: 6 }).map((s) => s.join('/'));
const actionArb = fc.constantFrom<Action>('subscribe', 'publish');

describe('compileGrants properties', () => {
  it('a topic never matches a grant whose literal prefix differs', () => {
    fc.assert(
      fc.property(actionArb, segmentArb, segmentArb, fc.array(segmentArb, { maxLength: 4 }), fc.constantFrom('**', '*', 'x'), (action, granted, asked, rest, tail) => {
        fc.pre(granted !== asked);
        const grants = compileGrants(`${action}:${granted}/${tail}`, 'u');
        expect(grants.allows(action, [asked, ...rest].join('/'))).toBe(false);
      }),
    );
  });

  it('a literal grant matches exactly its own topic', () => {
    fc.assert(
      fc.property(actionArb, topicArb, topicArb, (action, granted, asked) => {
        expect(compileGrants(`${action}:${granted}`, 'u').allows(action, asked)).toBe(granted === asked);
      }),
    );
  });

  it('prefix/** matches every strictly longer topic under the prefix and nothing else', () => {
    fc.assert(
      fc.property(actionArb, topicArb, topicArb, (action, prefix, asked) => {
        const expected = asked.startsWith(`${prefix}/`);
        expect(compileGrants(`${action}:${prefix}/**`, 'u').allows(action, asked)).toBe(expected);
      }),
    );
  });

  it('{sub} grants follow the subject and never match another subject', () => {
    fc.assert(
      fc.property(segmentArb, segmentArb, topicArb, (subject, other, tail) => {
        const grants = compileGrants('subscribe:users/{sub}/**', subject);
        expect(grants.allows('subscribe', `users/${subject}/${tail}`)).toBe(true);
        if (other !== subject) expect(grants.allows('subscribe', `users/${other}/${tail}`)).toBe(false);
      }),
    );
  });

  it('no grant admits a topic that breaks the name rules', () => {
    const badTopic = fc.oneof(
      topicArb.map((t) => `${t}/`),
      topicArb.map((t) => `/${t}`),
      topicArb.map((t) => t.replace('/', '//')).filter((t) => t.includes('//')),
      topicArb.map((t) => `${t}/..`),
      topicArb.map((t) => `${t}/*`),
      fc.tuple(topicArb, fc.constantFrom('\u0430', '\uff0f', '\u2215', ':', ' ', '\u0000', '\u00e9')).map(([t, c]) => `${t}${c}x`),
    );
    fc.assert(
      fc.property(actionArb, badTopic, (action, topic) => {
        const grants = compileGrants(`${action}:** ${action}:* ${action}:*/** ${action}:*/*`, 'u');
        expect(grants.allows(action, topic)).toBe(false);
      }),
    );
  });

  it('isValidTopic agrees with topicProblem on any string', () => {
    const chars = fc.constantFrom('a', 'Z', '9', '.', '_', '~', '-', '/', '*', ' ', ':', '\u0430', '\uff0f', '\u2215', '\n');
    const near = fc.array(chars, { maxLength: 40 }).map((c) => c.join(''));
    const long = fc.array(segmentArb, { minLength: 14, maxLength: 18 }).map((s) => s.join('/'));
    const wide = fc.tuple(fc.integer({ min: 60, max: 70 }), topicArb).map(([n, t]) => `${'x'.repeat(n)}/${t}`);
    fc.assert(fc.property(fc.oneof(near, long, wide, topicArb, fc.string()), (topic) => {
      expect(isValidTopic(topic)).toBe(topicProblem(topic) === undefined);
    }), { numRuns: 5_000 });
  });

  it('literal dots in a grant are not regex wildcards', () => {
    const grants = compileGrants('subscribe:a.b/* subscribe:v1.0/**', 'u');
    expect(grants.allows('subscribe', 'a.b/x')).toBe(true);
    expect(grants.allows('subscribe', 'aXb/x')).toBe(false);
    expect(grants.allows('subscribe', 'v1.0/x/y')).toBe(true);
    expect(grants.allows('subscribe', 'v1-0/x/y')).toBe(false);
  });

  it('never throws, whatever the scope claim and subject', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), actionArb, fc.string(), (scope, subject, action, name) => {
        const grants = compileGrants(scope, subject);
        expect(typeof grants.allows(action, name)).toBe('boolean');
      }),
    );
  });
});
