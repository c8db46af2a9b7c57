// A publisher writing straight into Redis with ioredis (the bare pipe's feed, and spec section 7's
// "events from anywhere" path): `window` PUBLISH commands in flight, paced by the slowest subscriber.
import { Redis } from 'ioredis';
import { Meter } from '../lib/meter.js';
import { PublishPacer, stampedPayload, type PublishPacing } from './fanout-payload.js';
import type { RoleFactory } from './role.js';

interface Config extends PublishPacing {
  redisUrl: string;
  channel: string;
}

/** Role "redis-publish". */
export const createRedisPublish: RoleFactory = (raw) => {
  const cfg = raw as unknown as Config;
  const meter = new Meter();
  const pacer = new PublishPacer(cfg.window, cfg.maxLag, cfg.ratePerSec);
  const redis = new Redis(cfg.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let running = false;

  const pump = (): void => {
    while (running && pacer.canSend()) {
      const sent = performance.now();
      pacer.inFlight++;
      pacer.sent();
      redis.publish(cfg.channel, stampedPayload(cfg.payloadBytes, pacer.seq)).then(
        () => { meter.ops++; meter.histogram.record((performance.now() - sent) * 1000); },
        (err: Error) => meter.error(err.message),
      ).finally(() => { pacer.inFlight--; pump(); });
    }
    meter.extra.published = pacer.seq;
  };

  return {
    meter,
    async setup() {
      await redis.connect();
      return { connected: 1 };
    },
    start() { running = true; pacer.start(pump); },
    notify(message) {
      pacer.heard(message);
      pump();
    },
    async stop() {
      running = false;
      pacer.stop();
      redis.disconnect();
    },
  };
};
