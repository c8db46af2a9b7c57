// The Redis node registry format, shared by nodes (which register) and gateways (which watch).
//   {prefix}.registry            set of registered node ids
//   {prefix}.registry.node:<id>  JSON registration, expiring unless refreshed by heartbeats
//   <prefix>.registry            pub/sub channel: join, heartbeat and leave announcements
// Key names share the {prefix} hash tag so a Redis Cluster keeps them in one slot.
import { Cluster, Redis } from 'ioredis';

/** What a node announces about itself. */
export interface NodeRegistration {
  readonly id: string;
  /** HTTP base URL gateways use. */
  readonly url: string;
  /** Binary link URL (relaygate+tcp://), when the node serves one. */
  readonly linkUrl?: string;
  readonly weight: number;
  readonly functions: readonly string[];
}

/** One announcement on the registry channel. */
export interface RegistryMessage {
  readonly type: 'join' | 'heartbeat' | 'leave';
  readonly node: NodeRegistration;
}

export interface RegistryKeys {
  readonly set: string;
  readonly channel: string;
  node(id: string): string;
}

/** Key and channel names under `prefix` (RELAYGATE_REDIS_PREFIX). */
export function registryKeys(prefix: string): RegistryKeys {
  return {
    set: `{${prefix}}.registry`,
    channel: `${prefix}.registry`,
    node: (id) => `{${prefix}}.registry.node:${id}`,
  };
}

/** A registration's time to live: heartbeats every `heartbeatMs` keep it; silence for 1.5 periods ends it. */
export function registrationTtlMs(heartbeatMs: number): number {
  return Math.ceil(heartbeatMs * 1.5);
}

/** Parses a stored or announced registration; undefined when it is not a valid one. */
export function parseRegistration(value: unknown): NodeRegistration | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.id !== 'string' || v.id === '' || v.id.length > 256) return undefined;
  if (typeof v.url !== 'string' || !/^https?:\/\//i.test(v.url)) return undefined;
  if (v.linkUrl !== undefined && typeof v.linkUrl !== 'string') return undefined;
  const weight = v.weight === undefined ? 1 : v.weight;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) return undefined;
  if (!Array.isArray(v.functions) || !v.functions.every((f) => typeof f === 'string')) return undefined;
  return {
    id: v.id,
    url: v.url,
    weight,
    functions: v.functions as string[],
    ...(typeof v.linkUrl === 'string' && v.linkUrl !== '' ? { linkUrl: v.linkUrl } : {}),
  };
}

/** Parses a channel message; undefined when malformed. */
export function parseRegistryMessage(text: string): RegistryMessage | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { type, node } = parsed as { type?: unknown; node?: unknown };
  if (type !== 'join' && type !== 'heartbeat' && type !== 'leave') return undefined;
  const registration = parseRegistration(node);
  return registration ? { type, node: registration } : undefined;
}

/** A Redis connection for registry use: a single server URL, or comma-separated Cluster seeds. */
export function openRegistryRedis(url: string, cluster: boolean, name: string, maxRetriesPerRequest: number | null = 2): Redis | Cluster {
  // Reconnect quickly (at most every half second): after a Redis restart the registry is empty
  // until every node has announced itself again.
  const options = { connectionName: name, maxRetriesPerRequest, enableOfflineQueue: true, lazyConnect: false, retryStrategy: (times: number) => Math.min(times * 50, 500) };
  if (!cluster) return new Redis(url, options);
  const seeds = url.split(',').map((seed) => {
    const u = new URL(seed.trim());
    return { host: u.hostname, port: Number(u.port || 6379) };
  });
  const first = new URL(url.split(',')[0]!.trim());
  return new Cluster(seeds, {
    redisOptions: { ...options, ...(first.password ? { password: decodeURIComponent(first.password) } : {}), ...(first.username ? { username: decodeURIComponent(first.username) } : {}) },
  });
}
