// Two real gateway processes in cluster mode (RELAYGATE_REDIS_CLUSTER=1) on a real three-primary
// Redis Cluster: sharded pub/sub across gateways, history, and a slot migration of a subscribed topic.
import { describe, expect, it } from 'vitest';
import { hashSlot } from '../../src/bus/slot.js';
import { connect, eventsOf, gatewaysFor, publish, subscribe, until, waitEvents } from '../helpers/events.js';
import { clusterFor } from '../helpers/redis.js';

describe('events on Redis Cluster', () => {
  const given = clusterFor();
  const { gateways } = gatewaysFor(2, () => ({
    RELAYGATE_REDIS_URL: given.cluster.seeds,
    RELAYGATE_REDIS_CLUSTER: '1',
    RELAYGATE_HISTORY: 'orders/**=100:1h',
  }));

  it('delivers across gateways, recovers from history, and keeps delivering after the topic\'s slot migrates', async () => {
    const [a, b] = gateways;
    const subscriber = await connect(a!);
    await subscribe(subscriber, 'orders/42');
    const other = await connect(a!);
    await subscribe(other, 'orders/7');
    const publisher = await connect(b!);
    for (const text of ['o1', 'o2']) expect((await publish(publisher, 'orders/42', text)).kind).toBe('ack');
    const seen = await waitEvents(subscriber, 'orders/42', 2);
    expect(seen.map((e) => [e.text, e.position!.offset])).toEqual([['o1', 1], ['o2', 2]]);

    const slot = hashSlot('relaygate:default:orders/42');
    const owner = await given.cluster.ownerOf(slot);
    await given.cluster.migrateSlot(slot, given.cluster.nodes.find((n) => n !== owner)!);

    // The gateway follows the slot to its new shard: later events arrive, or, if one was lost
    // in the move, the subscription is closed with 4010 and recovery fills the hole.
    let n = 3;
    let closedWith: number | undefined;
    void subscriber.closed.then(({ code }) => { closedWith = code; });
    await until('delivery after the migration', async () => {
      await publish(publisher, 'orders/42', `o${n++}`);
      await new Promise((r) => setTimeout(r, 100));
      return closedWith !== undefined || eventsOf(subscriber, 'orders/42').length > 2;
    }, 30_000);
    if (closedWith === undefined) {
      await publish(publisher, 'orders/42', 'final');
      await until('the final event live', () => eventsOf(subscriber, 'orders/42').some((e) => e.text === 'final'));
      const offsets = eventsOf(subscriber, 'orders/42').map((e) => e.position!.offset);
      // Whatever was published while the slot moved and never arrived made the hub close with 4010;
      // the subscription is still open, so nothing was skipped.
      expect(offsets).toEqual(offsets.map((_, i) => 1 + i));
    }
    const resumed = await connect(b!);
    const ack = await subscribe(resumed, 'orders/42', { recover: true, since: seen[1]!.position! });
    expect(ack.recovered).toBe(true);
    const all = [...eventsOf(subscriber, 'orders/42').slice(2), ...eventsOf(resumed, 'orders/42')];
    expect(all.length).toBeGreaterThan(0);
    expect(eventsOf(resumed, 'orders/42').map((e) => e.position!.offset)).toEqual(
      Array.from({ length: ack.replayed }, (_, i) => 3 + i),
    );
    if (closedWith !== undefined) expect(closedWith).toBe(4010);

    for (const c of [subscriber, other, publisher, resumed]) c.terminate();
  });
});
