// The ComputeService the router calls: picks a node (balancer), forwards over its link, keeps the
// nodes' health, retries only calls that provably never reached a node, and queues when every
// node is full. Guarantee: every invoke gets exactly one result or error on its sink.
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { ConfigError, type SettingValues } from '../config.js';
import { Code, codeName, GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { createNodeLink, UnsupportedNodeUrlError, type NodeLinkOptions } from '../nodes/create-link.js';
import type { NodeCallHandler, NodeFailure, NodeLink } from '../nodes/node-link.js';
import type { NodeRegistration } from '../nodes/registration.js';
import type { ComputeService, InvokeCall, InvokeSink } from '../router/services.js';
import { Balancer, retryAllowed, type PickMiss } from './balancer.js';
import { ComputeMetrics, type NodeMetrics } from './metrics.js';
import { BalancedNode, type HealthPolicy, type NodeDescriptor, type RotationChange } from './node-state.js';
import type { RandomSource } from './random.js';
import { RegistryWatcher } from './registry.js';
import { parseNodeList } from './static-nodes.js';
import { WaitQueue, type QueueEntry } from './wait-queue.js';

/** The settings compute reads (RELAYGATE_NODES, RELAYGATE_REDIS_*, and the compute section). */
export interface ComputeOptions {
  readonly nodes: readonly string[] | undefined;
  readonly redisUrl: string | undefined;
  readonly redisCluster: boolean;
  readonly redisPrefix: string;
  readonly registryHeartbeat: number;
  readonly nodeMaxInFlight: number;
  readonly queueSize: number;
  readonly slowStart: number;
  readonly healthInterval: number;
  readonly healthFall: number;
  readonly healthRise: number;
  readonly ejectAfter: number;
  readonly ejectBase: number;
  readonly ejectMax: number;
  readonly retryBudget: number;
  readonly nodeConnections: number;
}

/** The compute slice of the settings. */
export function computeOptionsFrom(values: SettingValues): ComputeOptions {
  const {
    nodes, redisUrl, redisCluster, redisPrefix, registryHeartbeat, nodeMaxInFlight, queueSize, slowStart,
    healthInterval, healthFall, healthRise, ejectAfter, ejectBase, ejectMax, retryBudget, nodeConnections,
  } = values;
  return {
    nodes, redisUrl, redisCluster, redisPrefix, registryHeartbeat, nodeMaxInFlight, queueSize, slowStart,
    healthInterval, healthFall, healthRise, ejectAfter, ejectBase, ejectMax, retryBudget, nodeConnections,
  };
}

/** What the composition root may hand in besides settings. */
export interface ComputeDeps {
  /** Where the per-node metrics are registered (the gateway's registry); a private one otherwise. */
  readonly registry?: Registry;
  /** Seedable randomness for balancing and check jitter. */
  readonly random?: RandomSource;
  /** Builds a node's link from its URL (defaults to createNodeLink). */
  readonly createLink?: (url: string, options: NodeLinkOptions) => NodeLink;
}

/** A node of this gateway's pool: balancer state plus its link and health-check timer. */
class PoolNode extends BalancedNode {
  healthTimer: NodeJS.Timeout | undefined;
  checking = false;
  /** Configured without a function list (RELAYGATE_NODES): takes the one its health checks report. */
  readonly learnsFunctions: boolean;
  constructor(
    descriptor: NodeDescriptor,
    policy: HealthPolicy,
    admittedAtMs: number,
    readonly link: NodeLink,
    /** The URL the node asked to be reached at. */
    readonly wantedUrl: string,
    /** The URL its link actually uses. */
    readonly linkUrl: string,
    readonly metrics: NodeMetrics,
  ) {
    super(descriptor, policy, admittedAtMs);
    this.learnsFunctions = descriptor.functions === undefined;
  }
}

/** A node's state, for readiness detail, logs and tests. */
export interface NodeSnapshot {
  readonly key: string;
  readonly url: string;
  readonly linkUrl: string;
  readonly weight: number;
  readonly effectiveWeight: number;
  readonly inFlight: number;
  readonly healthy: boolean;
  readonly ejected: boolean;
  readonly draining: boolean;
  readonly inRotation: boolean;
  readonly ejectionsInRow: number;
  readonly functions: readonly string[] | undefined;
}

/** Shortest and longest retry_after_ms suggested when refusing for lack of capacity. */
const RETRY_AFTER_MIN_MS = 100;
const RETRY_AFTER_MAX_MS = 5_000;
/** retry_after_ms when no node is reachable at all. */
const NO_NODE_RETRY_AFTER_MS = 1_000;

/** How long close() waits for calls in flight before closing their links. */
const CLOSE_GRACE_MS = 5_000;

/** One invocation from arrival to its terminal answer, across queueing and attempts. */
class PendingInvoke implements NodeCallHandler {
  done = false;
  node: PoolNode | undefined;
  tried: PoolNode[] | undefined;
  isRetry = false;
  sentAt = 0;
  lastFailure: GatewayError | undefined;
  entry: QueueEntry<PendingInvoke> | undefined;
  queueTimer: NodeJS.Timeout | undefined;

  constructor(readonly service: NodePoolCompute, readonly call: InvokeCall, readonly sink: InvokeSink) {}

  onProgress(fraction: number, payload: Uint8Array): void {
    if (!this.done) this.sink.progress(fraction, payload);
  }

  onResult(payload: Uint8Array, contentType: string, nodeId: string, durationMs: number, drain: boolean): void {
    this.service.attemptSucceeded(this, payload, contentType, nodeId, durationMs, drain);
  }

  onError(failure: NodeFailure): void {
    this.service.attemptFailed(this, failure);
  }

  /** The signal fired while waiting in the queue. */
  handleEvent(): void {
    this.service.leaveQueue(this, new GatewayError(Code.CANCELLED, 'cancelled'), undefined);
  }
}

/** Least-connections compute over HTTP (and binary-link) nodes from RELAYGATE_NODES and the Redis registry. */
export class NodePoolCompute implements ComputeService {
  private readonly balancer: Balancer<PoolNode>;
  private readonly byKey = new Map<string, PoolNode>();
  private readonly queue: WaitQueue<PendingInvoke>;
  private readonly policy: HealthPolicy;
  private readonly metrics: ComputeMetrics;
  private readonly random: RandomSource;
  private readonly createLink: (url: string, options: NodeLinkOptions) => NodeLink;
  private readonly watcher: RegistryWatcher | undefined;
  private readonly staticUrls = new Set<string>();
  private retriesInFlight = 0;
  private latencyEwmaMs = 10;
  private drainingQueue = false;
  private drainAgain = false;
  private drainSlots = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: ComputeOptions, private readonly log: Logger, deps: ComputeDeps = {}) {
    this.random = deps.random ?? Math.random;
    this.createLink = deps.createLink ?? createNodeLink;
    this.balancer = new Balancer<PoolNode>({ maxInFlight: options.nodeMaxInFlight, random: this.random });
    this.queue = new WaitQueue(options.queueSize);
    this.policy = {
      healthFall: options.healthFall,
      healthRise: options.healthRise,
      ejectAfter: options.ejectAfter,
      ejectBaseMs: options.ejectBase,
      ejectMaxMs: options.ejectMax,
      slowStartMs: options.slowStart,
    };
    this.metrics = new ComputeMetrics(deps.registry ?? new Registry(), {
      nodes: () => this.byKey.values(),
      pending: (node) => (node as PoolNode).link.pending?.() ?? 0,
      queueLength: () => this.queue.size,
    });
    const now = Date.now();
    for (const descriptor of parseNodeList(options.nodes ?? [])) {
      // Nodes configured at start are taken as warm: slow start is for nodes joining a running pool.
      try {
        this.addNode(descriptor, descriptor.url, now - options.slowStart);
      } catch (err) {
        if (err instanceof UnsupportedNodeUrlError) throw new ConfigError('RELAYGATE_NODES', `${descriptor.url}: no link for this scheme in this build`);
        throw err;
      }
      this.staticUrls.add(descriptor.url);
    }
    if (options.redisUrl) {
      this.watcher = new RegistryWatcher(
        { redisUrl: options.redisUrl, redisCluster: options.redisCluster, redisPrefix: options.redisPrefix, heartbeatMs: options.registryHeartbeat },
        { join: (node, initial) => this.joined(node, initial), leave: (id) => this.left(id) },
        log,
      );
    }
  }

  /**
   * Reads the Redis registry (when configured); resolves once the nodes registered now are known,
   * or after `waitMs` when Redis is not answering (the registry keeps trying in the background).
   */
  async start(waitMs = 5_000): Promise<void> {
    if (!this.watcher) return;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'late'>((resolve) => { timer = setTimeout(resolve, waitMs, 'late'); });
    try {
      const outcome = await Promise.race([this.watcher.start().then(() => 'read' as const), gaveUp]);
      if (outcome === 'late') this.log.warn({ waitMs }, 'node registry not read yet; continuing with the nodes known so far');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'node registry read failed; retrying in the background');
    } finally {
      clearTimeout(timer);
    }
  }

  ready(): boolean {
    return !this.closed && this.balancer.anyInRotation();
  }

  /** Every node's state. */
  snapshot(): NodeSnapshot[] {
    const now = Date.now();
    return [...this.byKey.values()].map((n) => ({
      key: n.key, url: n.url, linkUrl: n.linkUrl, weight: n.weight, effectiveWeight: n.effectiveWeight(now),
      inFlight: n.inFlight, healthy: n.healthy, ejected: n.ejected, draining: n.draining, inRotation: n.inRotation,
      ejectionsInRow: n.ejectionsInRow, functions: n.functions,
    }));
  }

  invoke(call: InvokeCall, sink: InvokeSink): void {
    const pending = new PendingInvoke(this, call, sink);
    if (this.closed) return this.finishError(pending, new GatewayError(Code.UNAVAILABLE, 'gateway shutting down', { retryAfterMs: NO_NODE_RETRY_AFTER_MS }));
    if (call.signal.aborted) return this.finishError(pending, new GatewayError(Code.CANCELLED, 'cancelled'));
    if (Date.now() >= call.deadlineAtMs) return this.finishError(pending, new GatewayError(Code.DEADLINE_EXCEEDED, 'deadline exceeded'));
    this.place(pending);
  }

  // --- placing calls ------------------------------------------------------------------------------

  private place(p: PendingInvoke): void {
    const choice = this.balancer.pick(p.call.function, Date.now(), p.tried);
    if (typeof choice !== 'string') this.send(p, choice);
    else if (choice === 'busy') this.enqueue(p);
    else this.refuse(p, choice);
  }

  private refuse(p: PendingInvoke, miss: Exclude<PickMiss, 'busy'>): void {
    if (p.lastFailure) return this.finishError(p, p.lastFailure);
    if (miss === 'unknown-function') {
      this.metrics.reject('unknown_function');
      return this.finishError(p, new GatewayError(Code.NOT_FOUND, `no node serves function "${p.call.function}"`));
    }
    this.metrics.reject('no_node');
    this.finishError(p, new GatewayError(Code.UNAVAILABLE, 'no compute node available', { retryAfterMs: NO_NODE_RETRY_AFTER_MS }));
  }

  private send(p: PendingInvoke, node: PoolNode): void {
    this.balancer.acquire(node);
    p.node = node;
    p.sentAt = performance.now();
    if (p.isRetry) this.retriesInFlight++;
    node.metrics.sent();
    node.link.call(p.call, p);
  }

  private enqueue(p: PendingInvoke): void {
    const entry = this.queue.push(p);
    if (!entry) {
      this.metrics.reject('queue_full');
      return this.finishError(p, new GatewayError(Code.RESOURCE_EXHAUSTED, 'every node is busy and the queue is full', { retryAfterMs: this.suggestedRetryAfterMs() }));
    }
    p.entry = entry;
    p.queueTimer = setTimeout(onQueueTimeout, Math.max(0, p.call.deadlineAtMs - Date.now()), p);
    p.call.signal.addEventListener('abort', p);
  }

  /** Takes `p` out of the queue; answers `err` when given (cancel, timeout), else it is about to be sent. */
  leaveQueue(p: PendingInvoke, err: GatewayError | undefined, reason: 'queue_timeout' | undefined): void {
    if (!p.entry || !this.queue.remove(p.entry)) return;
    p.entry = undefined;
    clearTimeout(p.queueTimer);
    p.call.signal.removeEventListener('abort', p);
    if (err) {
      if (reason) this.metrics.reject(reason);
      this.finishError(p, err);
    }
  }

  /**
   * Hands waiting calls to nodes that have room, oldest first, sending at most `slots` of them
   * (a finished call frees one slot; a node entering the rotation frees many).
   */
  private drainQueue(slots = Infinity): void {
    if (this.queue.size === 0 || this.closed) return;
    this.drainSlots += slots;
    if (this.drainingQueue) {
      this.drainAgain = true;
      return;
    }
    this.drainingQueue = true;
    try {
      do {
        this.drainAgain = false;
        // Within one pass a function found busy stays busy (sending only takes capacity away).
        let busy: Set<string> | undefined;
        const now = Date.now();
        for (const entry of this.queue.entries()) {
          const p = entry.value;
          const fn = p.call.function;
          if (p.tried === undefined && busy?.has(fn)) continue;
          const choice = this.balancer.pick(fn, now, p.tried);
          if (choice === 'busy') {
            if (p.tried === undefined) (busy ??= new Set()).add(fn);
            continue;
          }
          this.leaveQueue(p, undefined, undefined);
          if (typeof choice === 'string') {
            this.refuse(p, choice);
            continue;
          }
          this.send(p, choice);
          if (--this.drainSlots <= 0) break;
        }
      } while (this.drainAgain && this.drainSlots > 0 && this.queue.size > 0);
    } finally {
      this.drainingQueue = false;
      this.drainSlots = 0;
    }
  }

  /** A suggested wait before retrying, from recent latency, the queue and the capacity in rotation. */
  suggestedRetryAfterMs(): number {
    let capacity = 0;
    for (const node of this.balancer.list()) if (node.inRotation) capacity += this.options.nodeMaxInFlight;
    const estimate = (this.latencyEwmaMs * (this.queue.size + 1)) / Math.max(1, capacity);
    return Math.round(Math.min(RETRY_AFTER_MAX_MS, Math.max(RETRY_AFTER_MIN_MS, estimate)));
  }

  // --- answers ------------------------------------------------------------------------------------

  /** @internal called by PendingInvoke. */
  attemptSucceeded(p: PendingInvoke, payload: Uint8Array, contentType: string, nodeId: string, durationMs: number, drain: boolean): void {
    const node = this.endAttempt(p);
    if (!node || p.done) return;
    const now = Date.now();
    const elapsedMs = performance.now() - p.sentAt;
    node.metrics.observe(elapsedMs / 1000);
    this.latencyEwmaMs += (elapsedMs - this.latencyEwmaMs) * 0.05;
    this.rotation(node, node.recordSuccess(now));
    if (drain) this.rotation(node, node.startDraining(now), 'node asked to drain');
    p.done = true;
    p.sink.result({ payload, contentType, nodeId, durationMs });
    this.afterRelease(node);
  }

  /** @internal called by PendingInvoke. */
  attemptFailed(p: PendingInvoke, failure: NodeFailure): void {
    const node = this.endAttempt(p);
    if (!node || p.done) return;
    const now = Date.now();
    const code = failure.error.code;
    node.metrics.observe((performance.now() - p.sentAt) / 1000);
    this.metrics.error(node.key, codeName(code));
    if (failure.connectionError) this.nodeFailed(node, now, true);
    else if (code === Code.INTERNAL || code === Code.UNAVAILABLE || code === Code.UNKNOWN) this.nodeFailed(node, now, false);
    else if (code !== Code.CANCELLED && code !== Code.DEADLINE_EXCEEDED) this.rotation(node, node.recordSuccess(now));
    if (failure.drain) this.rotation(node, node.startDraining(now), 'node asked to drain');

    if (failure.unsent && this.mayRetry(p)) {
      this.metrics.retried(node.key);
      (p.tried ??= []).push(node);
      p.isRetry = true;
      p.lastFailure = failure.error;
      this.log.debug({ node: node.key, requestId: p.call.requestId }, 'call never reached the node; trying another');
      this.place(p);
    } else {
      p.done = true;
      p.sink.error(failure.error);
    }
    this.afterRelease(node);
  }

  /** Counts a failure toward ejection; an ejection is counted even when the node was already out for another reason. */
  private nodeFailed(node: PoolNode, now: number, connection: boolean): void {
    const wasEjected = node.ejected;
    const change = node.recordFailure(now, connection);
    if (!wasEjected && node.ejected) {
      this.metrics.ejected(node.key);
      this.log.warn({ node: node.key, forMs: node.ejectionMs(), inRow: node.ejectionsInRow, connection }, 'node ejected');
    } else this.rotation(node, change);
  }

  private mayRetry(p: PendingInvoke): boolean {
    if (this.closed || p.call.signal.aborted || Date.now() >= p.call.deadlineAtMs) return false;
    return retryAllowed(this.retriesInFlight, this.balancer.inFlight, this.options.retryBudget);
  }

  /** Releases the attempt's node; returns it (undefined when the attempt had already ended). */
  private endAttempt(p: PendingInvoke): PoolNode | undefined {
    const node = p.node;
    if (!node) return undefined;
    p.node = undefined;
    this.balancer.release(node);
    if (p.isRetry) this.retriesInFlight--;
    return node;
  }

  private afterRelease(node: PoolNode): void {
    if (node.removed && node.inFlight === 0) void this.closeLink(node);
    if (this.balancer.inFlight === 0 && this.idleWaiters.length > 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
    this.drainQueue(1);
  }

  private finishError(p: PendingInvoke, err: GatewayError): void {
    if (p.done) return;
    p.done = true;
    p.sink.error(err);
  }

  // --- membership and health ----------------------------------------------------------------------

  /** Adds a node reached at `wantedUrl` (its binary link URL, when it has one), falling back to its HTTP URL when this build has no link for that scheme. */
  private addNode(descriptor: NodeDescriptor, wantedUrl: string, admittedAtMs: number): PoolNode {
    const options: NodeLinkOptions = { connections: this.options.nodeConnections, log: this.log.child({ node: descriptor.key }) };
    let linkUrl = wantedUrl;
    let link: NodeLink;
    try {
      link = this.createLink(wantedUrl, options);
    } catch (err) {
      if (!(err instanceof UnsupportedNodeUrlError) || wantedUrl === descriptor.url) throw err;
      linkUrl = descriptor.url;
      link = this.createLink(linkUrl, options);
    }
    const node = new PoolNode(descriptor, this.policy, admittedAtMs, link, wantedUrl, linkUrl, this.metrics.forNode(descriptor.key));
    this.byKey.set(node.key, node);
    this.balancer.add(node);
    this.scheduleCheck(node, 0);
    return node;
  }

  private joined(reg: NodeRegistration, initial: boolean): void {
    if (this.closed) return;
    if (this.staticUrls.has(reg.url.replace(/\/+$/, ''))) return; // configured statically already
    const descriptor: NodeDescriptor = { key: reg.id, url: reg.url, weight: reg.weight, functions: reg.functions };
    const wanted = reg.linkUrl ?? reg.url;
    const existing = this.byKey.get(reg.id);
    if (existing && existing.url === reg.url && existing.wantedUrl === wanted) {
      existing.update(descriptor);
      return;
    }
    if (existing) this.removeNode(existing);
    const now = Date.now();
    const node = this.addNode(descriptor, wanted, initial ? now - this.options.slowStart : now);
    this.log.info({ node: reg.id, url: node.linkUrl, weight: reg.weight, functions: reg.functions.length }, 'node joined');
    this.drainQueue();
  }

  private left(id: string): void {
    const node = this.byKey.get(id);
    if (!node) return;
    this.log.info({ node: id }, 'node left');
    this.removeNode(node);
  }

  private removeNode(node: PoolNode): void {
    this.byKey.delete(node.key);
    this.balancer.remove(node);
    clearTimeout(node.healthTimer);
    node.healthTimer = undefined;
    this.metrics.removeNode(node.key);
    if (node.inFlight === 0) void this.closeLink(node);
    // Calls queued for a function only this node served now have no node at all.
    this.drainQueue();
  }

  private async closeLink(node: PoolNode): Promise<void> {
    try {
      await node.link.close();
    } catch (err) {
      this.log.debug({ node: node.key, err }, 'closing node link failed');
    }
  }

  private scheduleCheck(node: PoolNode, delayMs: number): void {
    if (this.closed || node.removed) return;
    node.healthTimer = setTimeout(() => void this.check(node), delayMs);
    node.healthTimer.unref();
  }

  private async check(node: PoolNode): Promise<void> {
    if (this.closed || node.removed || node.checking) return;
    node.checking = true;
    const interval = this.options.healthInterval;
    let ok = false;
    try {
      ok = await node.link.checkHealth(Math.max(200, Math.min(interval, 5_000)));
    } finally {
      node.checking = false;
    }
    if (this.closed || node.removed) return;
    // A statically configured node may say at its health check which functions it serves.
    const advertised = node.learnsFunctions ? node.link.advertisedFunctions?.() : undefined;
    if (advertised) node.update({ key: node.key, url: node.url, weight: node.weight, functions: advertised });
    this.rotation(node, node.recordCheck(ok, Date.now()), ok ? 'health check passed' : 'health check failed');
    // Jitter spreads the checks of many gateways.
    this.scheduleCheck(node, Math.round(interval * (0.9 + 0.2 * this.random())));
  }

  /** Logs a rotation change; a node coming back may take queued calls. */
  private rotation(node: PoolNode, change: RotationChange, why?: string): void {
    if (change === undefined) return;
    if (change === 'out') {
      this.log.warn({ node: node.key, healthy: node.healthy, draining: node.draining, why }, 'node out of rotation');
      return;
    }
    this.log.info({ node: node.key, why }, 'node in rotation (slow start)');
    this.drainQueue();
  }

  // --- shutdown -----------------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watcher?.close();
    for (const p of this.queue.takeAll()) {
      clearTimeout(p.queueTimer);
      p.call.signal.removeEventListener('abort', p);
      p.entry = undefined;
      this.finishError(p, new GatewayError(Code.UNAVAILABLE, 'gateway shutting down', { retryAfterMs: NO_NODE_RETRY_AFTER_MS }));
    }
    for (const node of this.byKey.values()) clearTimeout(node.healthTimer);
    // In-flight calls end by their answer, their deadline or their signal (the gateway aborts them on
    // drain); whatever is still running after the grace ends UNAVAILABLE when its link closes.
    if (this.balancer.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, CLOSE_GRACE_MS); }),
      ]);
      clearTimeout(timer);
    }
    await Promise.all([...this.byKey.values()].map((node) => this.closeLink(node)));
  }
}

function onQueueTimeout(p: PendingInvoke): void {
  const retryAfterMs = p.service.suggestedRetryAfterMs();
  p.service.leaveQueue(p, new GatewayError(Code.RESOURCE_EXHAUSTED, 'no node was free before the deadline', { retryAfterMs }), 'queue_timeout');
}
