import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ComputeMetrics } from '../../src/balancer/metrics.js';

const noNodes = { nodes: () => [], pending: () => 0, queueLength: () => 0 };
const samples = [0.0004, 0.001, 0.003, 0.003, 0.7, 45, 400];

function seriesOf(text: string, prefix: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(prefix));
}

describe('compute metrics kept as plain numbers per node', () => {
  it('renders node latency exactly as a prom-client histogram of the same observations would', async () => {
    const registry = new Registry();
    const metrics = new ComputeMetrics(registry, noNodes);
    const node = metrics.forNode('http://a:1');
    for (const s of samples) node.observe(s);

    const reference = new Registry();
    const histogram = new Histogram({
      name: 'relaygate_node_latency_seconds', help: 'reference', labelNames: ['node'], registers: [reference],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    });
    for (const s of samples) histogram.observe({ node: 'http://a:1' }, s);

    const ours = seriesOf(await registry.metrics(), 'relaygate_node_latency_seconds_');
    const theirs = seriesOf(await reference.metrics(), 'relaygate_node_latency_seconds_');
    expect(ours.length).toBe(19);
    expect(ours).toEqual(theirs);
    expect(ours).toContain('relaygate_node_latency_seconds_bucket{le="0.001",node="http://a:1"} 2');
    expect(ours).toContain('relaygate_node_latency_seconds_bucket{le="+Inf",node="http://a:1"} 7');
  });

  it('adds the calls counted since the last scrape once, and forgets a removed node', async () => {
    const registry = new Registry();
    const metrics = new ComputeMetrics(registry, noNodes);
    const a = metrics.forNode('a');
    expect(metrics.forNode('a')).toBe(a);
    a.sent();
    a.sent();
    metrics.forNode('b').sent();
    expect(seriesOf(await registry.metrics(), 'relaygate_node_requests_total')).toEqual([
      'relaygate_node_requests_total{node="a"} 2',
      'relaygate_node_requests_total{node="b"} 1',
    ]);
    a.sent();
    const again = await registry.metrics();
    expect(seriesOf(again, 'relaygate_node_requests_total{node="a"}')).toEqual(['relaygate_node_requests_total{node="a"} 3']);
    expect(seriesOf(again, 'relaygate_node_requests_total{node="b"}')).toEqual(['relaygate_node_requests_total{node="b"} 1']);

    a.observe(0.002);
    metrics.removeNode('a');
    const after = await registry.metrics();
    expect(after).not.toContain('node="a"');
    expect(after).toContain('relaygate_node_requests_total{node="b"} 1');
  });
});
