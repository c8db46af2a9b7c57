// autocannon used as a library, in its own process so its CPU is measured apart from the servers.
import autocannon from 'autocannon';
import { Meter, type WindowResult } from '../lib/meter.js';
import type { RoleFactory } from './role.js';

interface Config {
  url: string;
  method: string;
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  pipelining: number;
  durationSec: number;
  warmupSec: number;
}

/** Role "autocannon": a warm-up run, then one measured run; latency percentiles come from autocannon. */
export const createAutocannon: RoleFactory = (raw) => {
  const cfg = raw as unknown as Config;
  const meter = new Meter();
  const options = (duration: number) => ({
    url: cfg.url,
    method: cfg.method,
    connections: cfg.connections,
    pipelining: cfg.pipelining,
    duration,
    ...(cfg.headers ? { headers: cfg.headers } : {}),
    ...(cfg.body !== undefined ? { body: cfg.body } : {}),
  });
  return {
    meter,
    async setup() {
      return { connected: cfg.connections };
    },
    start() {},
    async stop() {},
    async run() {
      if (cfg.warmupSec > 0) await autocannon(options(cfg.warmupSec));
      meter.begin();
      const r = await autocannon(options(cfg.durationSec));
      const w: WindowResult = meter.end();
      const ok = r['2xx'] ?? 0;
      w.ops = ok;
      w.errors = r.errors + r.non2xx;
      w.elapsedMs = r.duration * 1000;
      if (r.non2xx) w.errorKinds.non2xx = r.non2xx;
      if (r.errors) w.errorKinds.connection = r.errors;
      return { ...w, percentilesUs: { p50: r.latency.p50 * 1000, p90: r.latency.p90 * 1000, p99: r.latency.p99 * 1000, p999: r.latency.p99_9 * 1000 } };
    },
  };
};
