// Job topics keep history by default: the progress and result of an invocation published on its
// job_topic can be collected later, through another gateway, with recover.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNodeFrame } from '../../src/protocol/codec.js';
import { eventsOf, gatewaysFor, id, readyz, subscribe, until } from '../helpers/events.js';
import { spawnReferenceNode, type NodeProcess } from '../helpers/nodes.js';

const REDIS = process.env.RELAYGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('job topics', () => {
  let node: NodeProcess;
  beforeAll(async () => {
    node = await spawnReferenceNode();
  });
  afterAll(async () => {
    await node?.kill();
  });
  const { gateways, clients } = gatewaysFor(2, () => ({
    RELAYGATE_REDIS_URL: REDIS,
    RELAYGATE_REDIS_PREFIX: `rgjobs-${process.pid}-${Date.now().toString(36)}`,
    RELAYGATE_NODES: node.url,
  }));

  it('a client on another gateway recovers the whole job, progress and result, from the job topic', async () => {
    const [a, b] = gateways;
    for (const g of gateways) await until('gateway ready for work', async () => (await readyz(g.port)).status === 200);

    const caller = await clients.open(a!);
    const invokeId = id();
    caller.send({ id: invokeId, invoke: { function: 'primes', payload: Buffer.from('{"n":3000000}').toString('base64'), jobTopic: 'jobs/report-7' } });
    const result = await caller.next((f) => f.id === invokeId && (f.kind === 'result' || f.kind === 'error'), 30_000);
    expect(result.kind).toBe('result');
    const progressSeen = caller.received.filter((f) => f.id === invokeId && f.kind === 'progress').length;
    expect(progressSeen).toBeGreaterThan(0);

    // Later, elsewhere: nothing was subscribed to the job topic while the job ran.
    const late = await clients.open(b!);
    const ack = await subscribe(late, 'jobs/report-7', { recover: true });
    expect(ack.recovered).toBe(true);
    expect(ack.replayed).toBe(progressSeen + 1);
    const events = eventsOf(late, 'jobs/report-7');
    expect(events.map((e) => e.position!.offset)).toEqual(events.map((_, i) => i + 1));
    const frames = late.received.filter((f) => f.kind === 'event').map((f) => decodeNodeFrame(f.body.payload as Uint8Array));
    expect(frames.slice(0, -1).every((f) => 'progress' in f)).toBe(true);
    const last = frames[frames.length - 1]!;
    expect('result' in last && JSON.parse(Buffer.from(last.result.payload).toString())).toEqual({ n: 3000000, count: 216816 });
  });
});
