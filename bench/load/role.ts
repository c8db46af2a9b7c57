// The contract between the orchestrator and a load role running in a worker process.
import type { Meter } from '../lib/meter.js';

/** One kind of load (invoke, subscribe, publish, idle connections, ...), in one worker process. */
export interface Role {
  readonly meter: Meter;
  /** Opens connections; resolves with what the report needs (connected, failed, accept time). */
  setup(): Promise<Record<string, number>>;
  /** Starts sending (closed-loop roles); receivers may ignore it. */
  start(): void;
  /** Stops sending and closes everything. */
  stop(): Promise<void>;
  /** A message relayed by the orchestrator (e.g. the subscribers' progress for a publisher). */
  notify?(message: Record<string, number>): void;
  /** One-shot roles (autocannon) run to completion and return their own figures. */
  run?(): Promise<Record<string, unknown>>;
}

/** Unsolicited messages a role sends up (progress of subscribers). */
export type Emit = (event: Record<string, number | string>) => void;

export type RoleFactory = (config: Record<string, unknown>, emit: Emit) => Role;

/**
 * Source addresses 127.0.0.1 .. 127.0.0.n: each has its own ~28k ephemeral ports towards one
 * server port. 0 = let the kernel pick at connect, which is much cheaper than binding first
 * (a bind to port 0 scans for a free port) and enough below ~28k connections per server port.
 */
export function loopbackSources(count: number): Array<string | undefined> {
  return count <= 0 ? [undefined] : Array.from({ length: count }, (_, i) => `127.0.0.${i + 1}`);
}

/** How many source addresses `connections` to one server port need (0 = none bound). */
export function sourcesFor(connectionsPerPort: number): number {
  return connectionsPerPort <= 25_000 ? 0 : Math.ceil(connectionsPerPort / 25_000);
}

/** Opens `count` things with at most `concurrency` attempts pending; resolves when all settled. */
export async function openAll(count: number, concurrency: number, openOne: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await openOne(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}
