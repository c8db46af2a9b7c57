// Composition root of one gateway process: settings -> concrete objects -> listening socket.
// The only module that names concrete implementations.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createTokenVerifier, verifierOptionsFrom } from './auth/verifier.js';
import { MemoryBus } from './bus/memory-bus.js';
import { RedisBus } from './bus/redis-bus.js';
import { EventsHub } from './bus/hub.js';
import { HistoryPolicy } from './bus/history-policy.js';
import { BusMetrics } from './bus/metrics.js';
import { computeOptionsFrom, NodePoolCompute } from './balancer/compute-service.js';
import type { SettingValues } from './config.js';
import { Close, Code, GatewayError } from './errors.js';
import type { Logger } from './log.js';
import { GatewayMetrics } from './metrics/metrics.js';
import { Invoker } from './router/invoke.js';
import { NoComputeService } from './router/no-compute.js';
import { Router } from './router/router.js';
import type { ComputeService, EventsService } from './router/services.js';
import type { Session } from './router/session.js';
import type { Fanout } from './router/session.js';
import { Transport } from './transport/server.js';

/** A running gateway. */
export interface Gateway {
  readonly port: number;
  readonly gatewayId: string;
  /** This gateway's metrics registry (GET /metrics). */
  readonly metrics: GatewayMetrics;
  /**
   * Graceful stop: stop listening, /readyz 503, GoAway to every client, in-flight work gets up to
   * drainGrace, the rest ends UNAVAILABLE, connections close 1001 spread over closeSpread.
   */
  drain(): Promise<void>;
  /** Immediate stop: in-flight work ends UNAVAILABLE, every connection closes 1001 at once. */
  close(): Promise<void>;
}

/** How often drain re-checks whether in-flight work has finished. */
const DRAIN_POLL_MS = 20;

// ---- Compute: the balancer over RELAYGATE_NODES and the Redis node registry, or no compute at all.
async function createCompute(values: SettingValues, log: Logger, metrics: GatewayMetrics): Promise<ComputeService> {
  if ((values.nodes && values.nodes.length > 0) || values.redisUrl) {
    const compute = new NodePoolCompute(computeOptionsFrom(values), log.child({ part: 'compute' }), { registry: metrics.registry });
    await compute.start();
    return compute;
  }
  return new NoComputeService();
}

// ---- Events: Redis across instances, or the in-process bus.
function createEvents(values: SettingValues, fanout: Fanout, log: Logger, metrics: GatewayMetrics, gatewayId: string): EventsService {
  const history = HistoryPolicy.parse(values.history, values.jobHistory);
  const busMetrics = new BusMetrics(metrics.registry);
  const bus = values.redisUrl
    ? new RedisBus({
      url: values.redisUrl, cluster: values.redisCluster, prefix: values.redisPrefix, heartbeatMs: values.busHeartbeat,
      probeMs: values.busProbe, instanceId: gatewayId, log, metrics: busMetrics,
    })
    : new MemoryBus();
  return new EventsHub(bus, fanout, { history, log, metrics: busMetrics });
}

/** Starts one gateway on `values.host`:`values.port` (port 0 picks a free port). */
export async function startGateway(values: SettingValues, log: Logger): Promise<Gateway> {
  const gatewayId = values.gatewayId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const verifier = await createTokenVerifier({
    ...(await verifierOptionsFrom(values)),
    onIgnoredGrant: (grant, problem) => log.warn({ grant, problem }, 'scope grant ignored'),
  });
  const metrics = new GatewayMetrics();
  const tls = Boolean(values.tlsCert && values.tlsKey);
  // What was started so far, closed again when a later step fails (bad TLS key, port taken...).
  const started: { close(): unknown }[] = [{ close: () => metrics.close() }];
  const startOrUndo = async <T>(step: () => T | Promise<T>): Promise<T> => {
    try {
      return await step();
    } catch (err) {
      await Promise.allSettled(started.map(async (part) => part.close()));
      throw err;
    }
  };
  const transport = await startOrUndo(() => new Transport({
    host: values.host,
    port: values.port ?? (tls ? 8443 : 8080),
    tlsCert: values.tlsCert,
    tlsKey: values.tlsKey,
    tlsPassphrase: values.tlsPassphrase,
    origins: values.origins,
    gatewayId,
    maxFrameBytes: values.maxFrameBytes,
    maxInFlight: values.maxInFlight,
    idleTimeout: values.idleTimeout,
    maxBackpressure: values.maxBackpressure,
    permessageDeflate: values.permessageDeflate,
  }, metrics));

  const compute = await startOrUndo(() => createCompute(values, log, metrics));
  started.push(compute);
  const events = await startOrUndo(() => createEvents(values, transport.fanout, log, metrics, gatewayId));
  started.push(events);

  const invoker = new Invoker(compute, events, { invokeTimeout: values.invokeTimeout, invokeMaxTimeout: values.invokeMaxTimeout }, log);
  const router = new Router({
    maxInFlight: values.maxInFlight,
    maxSubscriptions: values.maxSubscriptions,
    rateLimit: values.rateLimit,
    rateBurst: values.rateBurst,
    rateStrikes: values.rateStrikes,
    violationLimit: values.violationLimit,
    violationWindow: values.violationWindow,
  }, verifier, events, invoker, metrics, log);

  const port = await startOrUndo(() => transport.listen({ verifier, router, invoker, compute, events, metrics, log }));
  log.debug({ gatewayId, port, tls }, 'gateway started');

  let stopping: Promise<void> | undefined;
  const shutDown = async (): Promise<void> => {
    await Promise.allSettled([compute.close(), events.close()]);
    metrics.close();
    transport.closeAll();
  };

  return {
    port,
    gatewayId,
    metrics,
    drain() {
      stopping ??= (async () => {
        transport.stopListening();
        router.startDrain(values.drainGrace + values.closeSpread);
        const graceEnds = Date.now() + values.drainGrace;
        while ((invoker.inFlight > 0 || router.inFlight > 0) && Date.now() < graceEnds) {
          await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
        }
        invoker.endAll(new GatewayError(Code.UNAVAILABLE, 'gateway shutting down', { retryAfterMs: 100 }));
        await closeSpread(router.sessions(), values.closeSpread);
        log.info({ gatewayId }, 'drained');
        await shutDown();
      })();
      return stopping;
    },
    close() {
      stopping ??= (async () => {
        transport.stopListening();
        invoker.endAll(new GatewayError(Code.UNAVAILABLE, 'gateway shutting down', { retryAfterMs: 100 }));
        for (const session of router.sessions()) session.close(Close.GOING_AWAY);
        await shutDown();
      })();
      return stopping;
    },
  };
}

/** Closes `sessions` with 1001, evenly over `spreadMs`, so clients do not all reconnect at once. */
async function closeSpread(sessions: readonly Session[], spreadMs: number): Promise<void> {
  const ticks = Math.max(1, Math.floor(spreadMs / 10));
  const perTick = Math.ceil(sessions.length / ticks);
  for (let i = 0; i < sessions.length; i += perTick) {
    for (const session of sessions.slice(i, i + perTick)) session.close(Close.GOING_AWAY);
    if (i + perTick < sessions.length) await new Promise((resolve) => setTimeout(resolve, spreadMs / ticks));
  }
}
