import { describe, expect, it } from 'vitest';
import { Balancer, FULL_SCAN_LIMIT, retryAllowed } from '../../src/balancer/balancer.js';
import { BalancedNode, type HealthPolicy } from '../../src/balancer/node-state.js';
import { seededRandom } from '../../src/balancer/random.js';
import { parseNodeList } from '../../src/balancer/static-nodes.js';
import { WaitQueue } from '../../src/balancer/wait-queue.js';
import { ConfigError } from '../../src/config.js';

const policy: HealthPolicy = { healthFall: 3, healthRise: 2, ejectAfter: 5, ejectBaseMs: 5_000, ejectMaxMs: 60_000, slowStartMs: 10_000 };
const T0 = 1_000_000;

function node(key: string, opts: { weight?: number; functions?: string[]; admittedAt?: number; policy?: Partial<HealthPolicy> } = {}): BalancedNode {
  return new BalancedNode(
    { key, url: `http://${key}`, weight: opts.weight ?? 1, functions: opts.functions },
    { ...policy, ...opts.policy },
    opts.admittedAt ?? T0 - 60_000,
  );
}

function balancer(nodes: BalancedNode[], maxInFlight = 100, seed = 1): Balancer {
  const b = new Balancer({ maxInFlight, random: seededRandom(seed) });
  for (const n of nodes) b.add(n);
  return b;
}

describe('Balancer.pick', () => {
  it('chooses the node with the fewest calls in flight', () => {
    const [a, b, c] = [node('a'), node('b'), node('c')];
    const bal = balancer([a, b, c]);
    a.inFlight = 3; b.inFlight = 1; c.inFlight = 2;
    for (let i = 0; i < 10; i++) expect(bal.pick('f', T0)).toBe(b);
  });

  it('divides load by weight: (in-flight + 1) / weight', () => {
    const heavy = node('heavy', { weight: 3 });
    const light = node('light', { weight: 1 });
    const bal = balancer([heavy, light]);
    heavy.inFlight = 5; // (5+1)/3 = 2
    light.inFlight = 2; // (2+1)/1 = 3
    expect(bal.pick('f', T0)).toBe(heavy);
    heavy.inFlight = 9; // 10/3 > 3
    expect(bal.pick('f', T0)).toBe(light);
  });

  it('breaks ties by rotating, never always the first', () => {
    const nodes = ['a', 'b', 'c', 'd'].map((k) => node(k));
    const bal = balancer(nodes);
    const picks = Array.from({ length: 8 }, () => bal.pick('f', T0) as BalancedNode);
    expect(new Set(picks.map((n) => n.key))).toEqual(new Set(['a', 'b', 'c', 'd']));
    expect(picks.map((n) => n.key)).toEqual(['a', 'b', 'c', 'd', 'a', 'b', 'c', 'd']);
  });

  it('spreads acquired calls evenly over equal nodes', () => {
    const nodes = ['a', 'b', 'c'].map((k) => node(k));
    const bal = balancer(nodes);
    for (let i = 0; i < 30; i++) bal.acquire(bal.pick('f', T0) as BalancedNode);
    expect(nodes.map((n) => n.inFlight)).toEqual([10, 10, 10]);
    expect(bal.inFlight).toBe(30);
  });

  it('only considers nodes that serve the function', () => {
    const a = node('a', { functions: ['sha256'] });
    const b = node('b', { functions: ['sort'] });
    const any = node('any'); // a static node that declared nothing serves anything
    const bal = balancer([a, b]);
    expect(bal.pick('sort', T0)).toBe(b);
    expect(bal.pick('sha256', T0)).toBe(a);
    expect(bal.pick('matmul', T0)).toBe('unknown-function');
    bal.add(any);
    expect(bal.pick('matmul', T0)).toBe(any);
  });

  it('never picks an excluded node (already tried), and says no-node when none is left', () => {
    const [a, b] = [node('a'), node('b')];
    const bal = balancer([a, b]);
    for (let i = 0; i < 5; i++) expect(bal.pick('f', T0, [a])).toBe(b);
    expect(bal.pick('f', T0, [a, b])).toBe('no-node');
  });

  it('skips unhealthy, ejected, draining and removed nodes', () => {
    const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((k) => node(k));
    const bal = balancer([a!, b!, c!, d!, e!]);
    a!.healthy = false;
    b!.ejected = true;
    c!.draining = true;
    bal.remove(d!);
    for (let i = 0; i < 5; i++) expect(bal.pick('f', T0)).toBe(e);
    expect(d!.removed).toBe(true);
  });

  it('reports busy when every candidate is at its in-flight limit', () => {
    const [a, b] = [node('a'), node('b')];
    const bal = balancer([a, b], 2);
    a.inFlight = 2; b.inFlight = 1;
    expect(bal.pick('f', T0)).toBe(b);
    b.inFlight = 2;
    expect(bal.pick('f', T0)).toBe('busy');
    b.inFlight = 1;
    expect(bal.pick('f', T0)).toBe(b);
  });

  it('with every node out of rotation, probes the node out the longest, one call at a time', () => {
    const [a, b, c] = [node('a'), node('b'), node('c')];
    const bal = balancer([a, b, c]);
    a.ejected = true; a.outSinceMs = T0 - 1_000;
    b.ejected = true; b.outSinceMs = T0 - 9_000;
    c.draining = true; c.outSinceMs = T0 - 20_000; // draining nodes are never probed
    expect(bal.pick('f', T0)).toBe(b);
    bal.acquire(b);
    expect(bal.pick('f', T0)).toBe(a);
    bal.acquire(a);
    expect(bal.pick('f', T0)).toBe('busy');
    bal.release(b);
    expect(bal.pick('f', T0)).toBe(b);
    c.ejected = false;
    a.ejected = b.ejected = false;
    a.draining = b.draining = true;
    expect(bal.pick('f', T0)).toBe('no-node');
  });

  it('uses power of two choices beyond the full-scan limit, deterministic under a seed', () => {
    const make = (): BalancedNode[] => Array.from({ length: 20 }, (_, i) => node(`n${i}`));
    const run = (seed: number): string[] => {
      const nodes = make();
      const bal = balancer(nodes, 100, seed);
      const keys: string[] = [];
      for (let i = 0; i < 200; i++) {
        const n = bal.pick('f', T0) as BalancedNode;
        bal.acquire(n);
        keys.push(n.key);
        if (i % 3 === 0) bal.release(nodes[i % 20]!.inFlight > 0 ? nodes[i % 20]! : n);
      }
      return keys;
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
  });

  it('draws the two choices without replacement and takes the less loaded one', () => {
    const nodes = Array.from({ length: FULL_SCAN_LIMIT + 1 }, (_, i) => node(`n${i}`));
    nodes.forEach((n, i) => { n.inFlight = i; });
    // A source that always draws the same index would pick the same node twice with replacement.
    const stuck = new Balancer({ maxInFlight: 100, random: () => 0.5 });
    for (const n of nodes) stuck.add(n);
    const picked = stuck.pick('f', T0) as BalancedNode;
    // i = floor(0.5*9) = 4, j = floor(0.5*8) = 4 → shifted to 5: the lighter of n4/n5 is n4.
    expect(picked.key).toBe('n4');
    // Over many seeded picks the heaviest node is never chosen: it loses every comparison.
    const bal = balancer(nodes, 100, 7);
    for (let i = 0; i < 500; i++) expect((bal.pick('f', T0) as BalancedNode).key).not.toBe(`n${FULL_SCAN_LIMIT}`);
  });
});

describe('slow start', () => {
  it('ramps a new node from 10% to its full weight over the window', () => {
    const n = node('n', { weight: 2, admittedAt: T0 });
    expect(n.effectiveWeight(T0)).toBeCloseTo(0.2);
    expect(n.effectiveWeight(T0 + 5_000)).toBeCloseTo(1);
    expect(n.effectiveWeight(T0 + 10_000)).toBe(2);
    expect(node('off', { admittedAt: T0, policy: { slowStartMs: 0 } }).effectiveWeight(T0)).toBe(1);
  });

  it('gives a fresh node less traffic than a warm one until it has ramped', () => {
    const warm = node('warm');
    const fresh = node('fresh', { admittedAt: T0 });
    const bal = balancer([warm, fresh]);
    const share = (now: number): number => {
      warm.inFlight = fresh.inFlight = 0;
      for (let i = 0; i < 100; i++) bal.acquire(bal.pick('f', now) as BalancedNode);
      return fresh.inFlight / 100;
    };
    expect(share(T0 + 100)).toBeLessThan(0.15);
    expect(share(T0 + 5_000)).toBeGreaterThan(0.25);
    expect(share(T0 + 5_000)).toBeLessThan(0.4);
    expect(share(T0 + 10_000)).toBeCloseTo(0.5, 1);
  });
});

describe('passive ejection', () => {
  it('ejects after ejectAfter consecutive connection errors; a success resets the count', () => {
    const n = node('n');
    for (let i = 0; i < 4; i++) expect(n.recordFailure(T0, true)).toBeUndefined();
    n.recordSuccess(T0);
    for (let i = 0; i < 4; i++) n.recordFailure(T0, true);
    expect(n.ejected).toBe(false);
    expect(n.recordFailure(T0, true)).toBe('out');
    expect(n.ejected).toBe(true);
    expect(n.ejectedUntilMs).toBe(T0 + 5_000);
    expect(n.outSinceMs).toBe(T0);
  });

  it('counts connection errors apart from errors the node answered', () => {
    const n = node('n');
    for (let i = 0; i < 4; i++) n.recordFailure(T0, true);
    // A 5xx answer proves the connection works: the connection count starts over.
    n.recordFailure(T0, false);
    expect(n.connectErrorsInRow).toBe(0);
    expect(n.nodeErrorsInRow).toBe(1);
    for (let i = 0; i < 4; i++) n.recordFailure(T0, true);
    expect(n.ejected).toBe(false);
    for (let i = 0; i < 4; i++) n.recordFailure(T0, false);
    expect(n.ejected).toBe(true); // five 5xx in a row
  });

  it('multiplies the ejection time by ejections in a row, capped at ejectMax', () => {
    const n = node('n', { policy: { ejectAfter: 1, ejectBaseMs: 10_000, ejectMaxMs: 25_000 } });
    let now = T0;
    const durations: number[] = [];
    for (let round = 0; round < 4; round++) {
      n.recordFailure(now, true);
      durations.push(n.ejectedUntilMs - now);
      now = n.ejectedUntilMs;
      expect(n.recordCheck(true, now)).toBe('in');
      now += 1;
    }
    expect(durations).toEqual([10_000, 20_000, 25_000, 25_000]);
  });

  it('readmits only through a passing check after the ejection ends, then slow starts', () => {
    const n = node('n', { policy: { ejectAfter: 1 } });
    n.recordFailure(T0, true);
    expect(n.recordCheck(true, T0 + 1_000)).toBeUndefined();
    expect(n.inRotation).toBe(false);
    expect(n.recordCheck(false, T0 + 6_000)).toBeUndefined();
    expect(n.recordCheck(true, T0 + 7_000)).toBe('in');
    expect(n.inRotation).toBe(true);
    expect(n.admittedAtMs).toBe(T0 + 7_000);
    expect(n.effectiveWeight(T0 + 7_000)).toBeCloseTo(0.1);
  });

  it('a successful probe of an ejected node readmits it; a failed one extends the ejection', () => {
    const n = node('n', { policy: { ejectAfter: 1 } });
    n.recordFailure(T0, true);
    n.recordFailure(T0 + 2_000, true);
    expect(n.ejectedUntilMs).toBe(T0 + 2_000 + 5_000);
    expect(n.recordSuccess(T0 + 3_000)).toBe('in');
    expect(n.ejected).toBe(false);
  });

  it('forgets past ejections once the node stayed in rotation longer than ejectMax', () => {
    const n = node('n', { policy: { ejectAfter: 1, ejectMaxMs: 30_000 } });
    n.recordFailure(T0, true);
    n.recordCheck(true, T0 + 5_000);
    expect(n.ejectionsInRow).toBe(1);
    n.recordSuccess(T0 + 5_000 + 31_000);
    expect(n.ejectionsInRow).toBe(0);
  });
});

describe('active health checks', () => {
  it('takes a node out after healthFall failures and back after healthRise passes', () => {
    const n = node('n');
    n.recordCheck(true, T0);
    expect(n.recordCheck(false, T0)).toBeUndefined();
    expect(n.recordCheck(false, T0)).toBeUndefined();
    expect(n.recordCheck(false, T0 + 1)).toBe('out');
    expect(n.outSinceMs).toBe(T0 + 1);
    expect(n.recordCheck(true, T0 + 2)).toBeUndefined();
    expect(n.recordCheck(true, T0 + 3)).toBe('in');
    expect(n.admittedAtMs).toBe(T0 + 3);
  });

  it('takes a never-checked node out at its first failed check', () => {
    const n = node('n');
    expect(n.recordCheck(false, T0)).toBe('out');
  });

  it('a draining node leaves at once and comes back after healthRise passes', () => {
    const n = node('n');
    n.recordCheck(true, T0);
    expect(n.startDraining(T0)).toBe('out');
    expect(n.startDraining(T0)).toBeUndefined();
    expect(n.recordCheck(true, T0 + 1)).toBeUndefined();
    expect(n.recordCheck(true, T0 + 2)).toBe('in');
  });
});

describe('retry budget', () => {
  it('allows at least three retries in flight, else a share of calls in flight', () => {
    expect(retryAllowed(0, 0, 0.2)).toBe(true);
    expect(retryAllowed(2, 0, 0.2)).toBe(true);
    expect(retryAllowed(3, 0, 0.2)).toBe(false);
    expect(retryAllowed(19, 100, 0.2)).toBe(true);
    expect(retryAllowed(20, 100, 0.2)).toBe(false);
    expect(retryAllowed(3, 100, 0)).toBe(false);
  });
});

describe('WaitQueue', () => {
  it('is FIFO, bounded, and removes any entry in O(1)', () => {
    const q = new WaitQueue<number>(3);
    const e1 = q.push(1)!;
    const e2 = q.push(2)!;
    q.push(3);
    expect(q.push(4)).toBeUndefined();
    expect(q.remove(e2)).toBe(true);
    expect(q.remove(e2)).toBe(false);
    q.push(5);
    expect([...q.entries()].map((e) => e.value)).toEqual([1, 3, 5]);
    expect(q.remove(e1)).toBe(true);
    expect(q.size).toBe(2);
    expect(q.takeAll()).toEqual([3, 5]);
    expect(q.size).toBe(0);
  });

  it('survives removal of the current entry while iterating', () => {
    const q = new WaitQueue<number>(10);
    for (let i = 0; i < 6; i++) q.push(i);
    const seen: number[] = [];
    for (const e of q.entries()) {
      seen.push(e.value);
      if (e.value % 2 === 0) q.remove(e);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...q.entries()].map((e) => e.value)).toEqual([1, 3, 5]);
  });
});

describe('RELAYGATE_NODES', () => {
  it('parses URLs with optional weights', () => {
    expect(parseNodeList(['http://127.0.0.1:9001?weight=2', 'https://n2.example:8443/base/', 'relaygate+tcp://10.0.0.3:7001', 'relaygate+tls://n4.example:7002?weight=0.5'])).toEqual([
      { key: 'http://127.0.0.1:9001', url: 'http://127.0.0.1:9001', weight: 2, functions: undefined },
      { key: 'https://n2.example:8443/base', url: 'https://n2.example:8443/base', weight: 1, functions: undefined },
      { key: 'relaygate+tcp://10.0.0.3:7001', url: 'relaygate+tcp://10.0.0.3:7001', weight: 1, functions: undefined },
      { key: 'relaygate+tls://n4.example:7002', url: 'relaygate+tls://n4.example:7002', weight: 0.5, functions: undefined },
    ]);
  });

  it.each([
    ['not a url', /not a URL/],
    ['ftp://x:1', /scheme/],
    ['http://x:1?weight=0', /weight/],
    ['http://x:1?weight=abc', /weight/],
    ['http://x:1?weight=', /weight/],
    ['http://x:1?other=1', /only \?weight/],
  ])('refuses %s naming the setting', (entry, message) => {
    expect(() => parseNodeList([entry])).toThrow(ConfigError);
    expect(() => parseNodeList([entry])).toThrow(message);
    try { parseNodeList([entry]); } catch (err) { expect((err as ConfigError).message).toMatch(/^RELAYGATE_NODES: /); }
  });

  it('refuses a node listed twice', () => {
    expect(() => parseNodeList(['http://a:1', 'http://a:1/'])).toThrow(/listed twice/);
  });
});
