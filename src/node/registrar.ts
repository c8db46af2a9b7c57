// A node's registration in the Redis registry: announced on start, refreshed every heartbeat,
// withdrawn on drain. Gateways learn joins and leaves from the registry channel at once.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { openRegistryRedis, registrationTtlMs, registryKeys, type NodeRegistration, type RegistryKeys, type RegistryMessage } from '../nodes/registration.js';

export interface RegistrarOptions {
  readonly redisUrl: string;
  readonly redisCluster?: boolean;
  readonly redisPrefix?: string;
  readonly heartbeatMs?: number;
}

/** Keeps one node registered while it runs. Guarantee: after `stop` resolves the node is gone from the registry. */
export class NodeRegistrar {
  private readonly redis: Redis | Cluster;
  private readonly keys: RegistryKeys;
  private readonly heartbeatMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly registration: NodeRegistration, options: RegistrarOptions, private readonly log?: Logger) {
    this.keys = registryKeys(options.redisPrefix ?? 'relaygate');
    this.heartbeatMs = options.heartbeatMs ?? 2_000;
    this.redis = openRegistryRedis(options.redisUrl, options.redisCluster ?? false, `relaygate-node-${registration.id}`);
    this.redis.on('error', (err: Error) => this.log?.warn({ err: err.message }, 'registry redis error'));
    // Back after a disconnect (perhaps to an empty, restarted Redis): announce again at once.
    let connectedBefore = false;
    this.redis.on('ready', () => {
      if (connectedBefore && this.timer) this.announce('join').catch((err: Error) => this.log?.warn({ err: err.message }, 'registry announcement failed'));
      connectedBefore = true;
    });
  }

  /** Registers and starts heartbeating; resolves after the first announcement (or rejects when Redis refuses it). */
  async start(): Promise<void> {
    await this.announce('join');
    this.timer = setInterval(() => {
      this.announce('heartbeat').catch((err: Error) => this.log?.warn({ err: err.message }, 'registry heartbeat failed'));
    }, this.heartbeatMs);
    this.timer.unref();
  }

  /** Withdraws the registration and closes the connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const { id } = this.registration;
    const leave: RegistryMessage = { type: 'leave', node: this.registration };
    try {
      await this.redis.multi().del(this.keys.node(id)).srem(this.keys.set, id).exec();
      await this.redis.publish(this.keys.channel, JSON.stringify(leave));
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, 'registry withdrawal failed; the registration expires on its own');
    }
    this.redis.disconnect();
  }

  private async announce(type: 'join' | 'heartbeat'): Promise<void> {
    if (this.stopped) return;
    const { id } = this.registration;
    const message: RegistryMessage = { type, node: this.registration };
    await this.redis
      .multi()
      .set(this.keys.node(id), JSON.stringify(this.registration), 'PX', registrationTtlMs(this.heartbeatMs))
      .sadd(this.keys.set, id)
      .exec();
    await this.redis.publish(this.keys.channel, JSON.stringify(message));
  }
}
