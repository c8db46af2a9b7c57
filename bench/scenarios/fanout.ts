// fan-out: one publisher → M subscribers on one topic through Redis across two gateway instances:
// deliveries/s and publish-to-receive latency, side by side with Socket.IO + redis-adapter, the
// bare Redis → ioredis → uWS pipe (two instances, like the gateways) and bare uWS topics (one
// process, no Redis, no protocol: the ceiling of this machine).
import type { BenchContext } from '../lib/context.js';
import type { CaseResult } from '../lib/measure.js';
import type { LoadWorker, Server } from '../lib/procs.js';
import { startRedis } from '../lib/procs.js';
import { caseCharts, caseTable, per, ratio, type ScenarioResult } from '../lib/report.js';
import { sourcesFor } from '../load/role.js';
import { compareRounds, profilePass, split, startWorkers, type CaseFactory } from './common.js';

const TOPIC = 'bench/fanout';
const SUBSCRIBER_WORKERS = 2;

/** Forwards the slowest subscriber's sequence to the publisher, which never runs more than maxLag ahead. */
function pace(subscribers: LoadWorker[], publisher: LoadWorker): void {
  const latest = new Map<number, number>();
  for (const s of subscribers) {
    s.onEvent((e) => {
      if (e.type !== 'progress') return;
      latest.set(s.pid, Number(e.minSeq));
      if (latest.size < subscribers.length) return;
      publisher.notify({ minSeq: Math.min(...latest.values()) });
    });
  }
}

export async function fanout(ctx: BenchContext): Promise<ScenarioResult> {
  const p = ctx.params;
  const redis = await startRedis();
  const redisUrl = `redis://127.0.0.1:${redis.port}`;
  const gwEnv = { RELAYGATE_REDIS_URL: redisUrl, RELAYGATE_MAX_BACKPRESSURE: '64mb' };
  const sioEnv = { BENCH_JWT_SECRET: ctx.secret, BENCH_REDIS_URL: redisUrl };
  const pipeEnv = { BENCH_REDIS_URL: redisUrl, BENCH_CHANNEL: 'bench-pipe' };
  const gateways = ctx.wants('relaygate') ? [await ctx.gateway('gateway-a', gwEnv), await ctx.gateway('gateway-b', gwEnv)] : [];
  const sios = ctx.wants('socket.io') ? [await ctx.peer('socket.io-a', 'sio-gateway.js', sioEnv), await ctx.peer('socket.io-b', 'sio-gateway.js', sioEnv)] : [];
  const pipes = ctx.wants('pipe') ? [await ctx.peer('pipe-a', 'redis-uws-pipe.js', pipeEnv), await ctx.peer('pipe-b', 'redis-uws-pipe.js', pipeEnv)] : [];
  const uws = ctx.wants('uws') ? await ctx.peer('uws-topics', 'uws-topics.js', { BENCH_TOPIC: 'bench' }) : undefined;
  const token = await ctx.token('subscribe:bench/** publish:bench/**');
  const pub = { payloadBytes: p.fanoutPayload, window: p.publishWindow, maxLag: p.maxLag };
  const cases: CaseResult[] = [];
  const notes: string[] = [];

  const sources = (m: number, ports: number): number => sourcesFor(Math.ceil(m / ports));
  const factory = (m: number, system: string, servers: Server[], subRole: string, subConfig: Record<string, unknown>, pubRole: string, pubConfig: Record<string, unknown>): CaseFactory => {
    let connected = 0;
    return {
      label: `${m.toLocaleString('en')} subscribers`, system, unit: 'deliveries/s', servers,
      async start() {
        const { workers: subs, info } = await startWorkers('subscribers', subRole, split(m, SUBSCRIBER_WORKERS), (_i, share) => ({ ...subConfig, connections: share }));
        connected = info.reduce((a, i) => a + (i.connected ?? 0), 0);
        let publisher: LoadWorker;
        try {
          publisher = (await startWorkers('publisher', pubRole, [1], () => pubConfig)).workers[0]!;
        } catch (err) {
          await Promise.all(subs.map((s) => s.stop()));
          throw err;
        }
        pace(subs, publisher);
        return { workers: [...subs, publisher], counted: subs };
      },
      finish(result) {
        result.extra.subscribersConnected = connected;
        result.extra.publishesPerSec = result.elapsedMs > 0 ? (result.extra.published ?? 0) / (result.elapsedMs / 1000) : 0;
        if (connected < m) notes.push(`${system} at ${m} subscribers: only ${connected} subscribed.`);
      },
    };
  };

  type Spec = Parameters<typeof factory>;
  const halfLoad: CaseResult[] = [];
  for (const m of p.subscribers) {
    ctx.log(` ${m} subscribers`);
    const specs: Spec[] = [];
    if (gateways.length) specs.push([m, 'relaygate', [...gateways, redis],
      'ws-subscribe', { target: 'gateway', host: '127.0.0.1', ports: gateways.map((g) => g.port), token, topic: TOPIC, sources: sources(m, 2) },
      'ws-publish', { target: 'gateway', host: '127.0.0.1', port: gateways[0]!.port, token, topic: TOPIC, ...pub }]);
    if (sios.length) specs.push([m, 'socket.io + redis-adapter', [...sios, redis],
      'sio-subscribe', { host: '127.0.0.1', ports: sios.map((s) => s.port), token, topic: TOPIC },
      'sio-publish', { host: '127.0.0.1', ports: [sios[0]!.port], token, topic: TOPIC, ...pub }]);
    if (pipes.length) specs.push([m, 'bare redis→ioredis→uWS', [...pipes, redis],
      'ws-subscribe', { target: 'uws', host: '127.0.0.1', ports: pipes.map((s) => s.port), token: '', topic: 'bench', sources: sources(m, 2) },
      'redis-publish', { redisUrl, channel: 'bench-pipe', ...pub }]);
    if (uws) specs.push([m, 'bare uWS topics', [uws],
      'ws-subscribe', { target: 'uws', host: '127.0.0.1', ports: [uws.port], token: '', topic: 'bench', sources: sources(m, 1) },
      'ws-publish', { target: 'uws', host: '127.0.0.1', port: uws.port, token: '', topic: 'bench', ...pub }]);
    // Opening ten thousand Socket.IO clients takes long: large counts run once.
    const saturated = await compareRounds(ctx, specs.map((a) => factory(...a)), m > 2000 ? 1 : p.rounds);
    cases.push(...saturated);
    // Latency at saturation is mostly queueing; each system is also measured at half its own
    // sustained rate, an open-loop load it can keep up with.
    ctx.log('  at half load');
    const half = await compareRounds(ctx, specs.map((a, i) => {
      const rate = Math.max(1, (0.5 * saturated[i]!.opsPerSec) / m);
      return factory(a[0], a[1], a[2], a[3], a[4], a[5], { ...a[6], ratePerSec: rate });
    }), 1);
    halfLoad.push(...half);
  }

  const profiles = p.profile && gateways.length
    ? await profilePass(ctx, ['gateway-a-profiled', 'gateway-b-profiled'], (name) => ctx.gateway(name, gwEnv, { profiled: true }), (gws) => factory(p.subscribers[0]!, 'relaygate', [...gws, redis],
      'ws-subscribe', { target: 'gateway', host: '127.0.0.1', ports: gws.map((g) => g.port), token, topic: TOPIC, sources: sources(p.subscribers[0]!, 2) },
      'ws-publish', { target: 'gateway', host: '127.0.0.1', port: gws[0]!.port, token, topic: TOPIC, ...pub }))
    : [];

  const at = p.subscribers.includes(1000) ? 1000 : p.subscribers[0]!;
  const label = `${at.toLocaleString('en')} subscribers`;
  const find = (system: string): CaseResult | undefined => cases.find((c) => c.label === label && c.system === system);
  const gw = find('relaygate');
  const vsSio = per(gw, find('socket.io + redis-adapter'));
  const vsPipe = per(gw, find('bare redis→ioredis→uWS'));
  const ratios = [
    ratio(`fan-out ${label}: relaygate ÷ Socket.IO + redis-adapter`, vsSio.value, '>=', 20, `deliveries/s, ${p.publishWindow} publishes in flight, 2 instances each${vsSio.cpu}`),
    ratio(`fan-out ${label}: relaygate ÷ bare Redis→ioredis→uWS pipe`, vsPipe.value, '>=', 0.7, `same Redis, 2 instances each, same subscriber clients${vsPipe.cpu}`),
  ];
  for (const c of cases) {
    notes.push(`${c.system}, ${c.label}: ${Math.round(c.extra.publishesPerSec ?? 0)} publishes/s; ${c.lost} deliveries lost; ${c.extra.subscribersConnected} subscribed.`);
  }
  return {
    name: 'fanout',
    title: 'fan-out: one publisher, many subscribers, through Redis',
    params: { rounds: `${p.rounds} (1 above 2,000 subscribers)`, subscribers: p.subscribers, publishWindow: p.publishWindow, maxLag: p.maxLag, payloadBytes: p.fanoutPayload, subscriberWorkers: SUBSCRIBER_WORKERS, durationSec: p.durationSec, warmupSec: p.warmupSec },
    cases,
    tables: [
      caseTable('At saturation (publisher paced only by its window and the slowest subscriber)', cases),
      caseTable('At half load (each system at half its own sustained rate: publish-to-receive latency without a queue)', halfLoad),
      ...profiles,
    ],
    charts: [
      caseCharts('fanout', 'deliveries per second', cases)[0]!,
      caseCharts('fanout-half-load', 'deliveries per second', halfLoad)[1]!,
    ],
    ratios,
    notes,
  };
}
