// Closed-loop simulation: C clients each send a new call the moment their previous one ends. Node
// latencies are fixed (with seeded jitter); the balancer alone decides where calls go.
import { describe, expect, it } from 'vitest';
import { Balancer } from '../../src/balancer/balancer.js';
import { BalancedNode } from '../../src/balancer/node-state.js';
import { seededRandom } from '../../src/balancer/random.js';

interface SimNode { latencyMs: number; weight?: number }

function simulate(specs: SimNode[], clients: number, calls: number, seed = 1): number[] {
  const random = seededRandom(seed);
  const policy = { healthFall: 3, healthRise: 2, ejectAfter: 5, ejectBaseMs: 5_000, ejectMaxMs: 60_000, slowStartMs: 0 };
  const nodes = specs.map((s, i) => new BalancedNode({ key: `n${i}`, url: `http://n${i}`, weight: s.weight ?? 1, functions: undefined }, policy, 0));
  const balancer = new Balancer({ maxInFlight: 10_000, random });
  for (const n of nodes) balancer.add(n);
  const served = nodes.map(() => 0);
  // Pending completions, kept sorted by time (small sizes: insertion is fine).
  const events: { at: number; node: number }[] = [];
  let now = 0;
  const start = (): void => {
    const picked = balancer.pick('f', now) as BalancedNode;
    const index = nodes.indexOf(picked);
    balancer.acquire(picked);
    const jitter = 0.9 + 0.2 * random();
    const at = now + specs[index]!.latencyMs * jitter;
    let i = events.length;
    while (i > 0 && events[i - 1]!.at > at) i--;
    events.splice(i, 0, { at, node: index });
  };
  for (let c = 0; c < clients; c++) start();
  let done = 0;
  // Let the system settle before counting.
  const warmup = Math.floor(calls / 10);
  while (done < calls + warmup) {
    const event = events.shift()!;
    now = event.at;
    balancer.release(nodes[event.node]!);
    if (done >= warmup) served[event.node]!++;
    done++;
    start();
  }
  return served.map((s) => s / calls);
}

describe('least-connections under simulation', () => {
  it('a slow node gets a share in proportion to its speed (latencies 10, 10, 40 ms)', () => {
    const shares = simulate([{ latencyMs: 10 }, { latencyMs: 10 }, { latencyMs: 40 }], 30, 20_000);
    // Equal in-flight per node → throughput ∝ 1/latency: 4 : 4 : 1.
    expect(shares[2]).toBeGreaterThan(0.08);
    expect(shares[2]).toBeLessThan(0.15);
    expect(shares[2]! / shares[0]!).toBeGreaterThan(0.2);
    expect(shares[2]! / shares[0]!).toBeLessThan(0.33);
    expect(Math.abs(shares[0]! - shares[1]!)).toBeLessThan(0.03);
  });

  it('the slower a node, the smaller its share (10, 20, 40 ms → about 4 : 2 : 1)', () => {
    const shares = simulate([{ latencyMs: 10 }, { latencyMs: 20 }, { latencyMs: 40 }], 42, 20_000);
    expect(shares[1]! / shares[0]!).toBeGreaterThan(0.4);
    expect(shares[1]! / shares[0]!).toBeLessThan(0.6);
    expect(shares[2]! / shares[0]!).toBeGreaterThan(0.18);
    expect(shares[2]! / shares[0]!).toBeLessThan(0.32);
  });

  it('shares follow weights 3:1 when latencies are equal', () => {
    const shares = simulate([{ latencyMs: 10, weight: 3 }, { latencyMs: 10, weight: 1 }], 40, 20_000);
    expect(shares[0]).toBeGreaterThan(0.7);
    expect(shares[0]).toBeLessThan(0.8);
    expect(shares[0]! / shares[1]!).toBeGreaterThan(2.6);
    expect(shares[0]! / shares[1]!).toBeLessThan(3.4);
  });

  it('with many nodes (power of two choices) a slow node still gets far less', () => {
    const specs: SimNode[] = Array.from({ length: 12 }, (_, i) => ({ latencyMs: i === 0 ? 40 : 10 }));
    const shares = simulate(specs, 120, 30_000, 9);
    const fastAverage = shares.slice(1).reduce((a, b) => a + b, 0) / 11;
    expect(shares[0]! / fastAverage).toBeLessThan(0.5);
    expect(shares[0]).toBeGreaterThan(0);
  });

  it('is deterministic under a seed', () => {
    const specs: SimNode[] = [{ latencyMs: 10 }, { latencyMs: 15 }, { latencyMs: 30 }];
    expect(simulate(specs, 20, 3_000, 5)).toEqual(simulate(specs, 20, 3_000, 5));
  });
});
