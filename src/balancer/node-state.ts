// One compute node as the balancer sees it: load, active health, passive outlier ejection, drain
// and slow start. Pure: time is passed in, nothing here does I/O.

/** How health and ejection decisions are made (the RELAYGATE_HEALTH_*, EJECT_* and SLOW_START settings). */
export interface HealthPolicy {
  /** Failed active checks before a healthy node is taken out. */
  readonly healthFall: number;
  /** Passing checks before an unhealthy or draining node is back. */
  readonly healthRise: number;
  /** Consecutive connection errors, or consecutive 5xx answers, that eject a node. */
  readonly ejectAfter: number;
  /** Ejection time, multiplied by the number of ejections in a row. */
  readonly ejectBaseMs: number;
  /** Longest ejection. */
  readonly ejectMaxMs: number;
  /** A joined or readmitted node ramps its weight from 10% to 100% over this window (0 = off). */
  readonly slowStartMs: number;
}

/** The smallest share of its weight a node in slow start gets. */
const SLOW_START_FLOOR = 0.1;

/** A change of a node's membership in the rotation, for logs and metrics. */
export type RotationChange = 'in' | 'out' | undefined;

/** What a node's registration says about it (static list or Redis). */
export interface NodeDescriptor {
  /** Unique key: the node's id when registered, else its URL. Metrics are labelled with it. */
  readonly key: string;
  /** The URL the gateway connects to (http(s):// or relaygate+tcp://). */
  readonly url: string;
  readonly weight: number;
  /** Functions the node serves; undefined = it did not say (static nodes), so any. */
  readonly functions: readonly string[] | undefined;
}

/** A node in the balancer. Guarantee: `inFlight` counts exactly the calls acquired and not yet released. */
export class BalancedNode {
  readonly key: string;
  url: string;
  weight: number;
  private functionSet: ReadonlySet<string> | undefined;

  inFlight = 0;
  /** Active checks say it takes work. Starts true so a fresh gateway is usable at once; the first failed check takes it out. */
  healthy = true;
  /** Asked to leave the rotation (drain header or message); back after `healthRise` passing checks. */
  draining = false;
  /** Passive ejection in force. */
  ejected = false;
  ejectedUntilMs = 0;
  ejectionsInRow = 0;
  /** When it last left the rotation; the all-out policy prefers the longest-out node. */
  outSinceMs = 0;
  /** When it (re)entered the rotation; slow start counts from here. */
  admittedAtMs: number;
  /** Deregistered or dropped from the list; kept only until its in-flight calls end. */
  removed = false;

  connectErrorsInRow = 0;
  nodeErrorsInRow = 0;
  private checksFailed = 0;
  private checksPassed = 0;
  private checked = false;

  constructor(descriptor: NodeDescriptor, private readonly policy: HealthPolicy, admittedAtMs: number) {
    this.key = descriptor.key;
    this.url = descriptor.url;
    this.weight = descriptor.weight;
    this.functionSet = descriptor.functions ? new Set(descriptor.functions) : undefined;
    this.admittedAtMs = admittedAtMs;
  }

  /** Applies a new registration of the same node (weight or functions changed). */
  update(descriptor: NodeDescriptor): void {
    this.url = descriptor.url;
    this.weight = descriptor.weight;
    this.functionSet = descriptor.functions ? new Set(descriptor.functions) : undefined;
  }

  /** The functions it declared, or undefined when it serves anything. */
  get functions(): readonly string[] | undefined {
    return this.functionSet ? [...this.functionSet] : undefined;
  }

  serves(fn: string): boolean {
    return this.functionSet === undefined || this.functionSet.has(fn);
  }

  /** Healthy, not ejected, not draining, not removed: normal picks may choose it. */
  get inRotation(): boolean {
    return this.healthy && !this.ejected && !this.draining && !this.removed;
  }

  /** Weight after slow start: ramps linearly from 10% to 100% over the window after admission. */
  effectiveWeight(nowMs: number): number {
    const window = this.policy.slowStartMs;
    if (window <= 0) return this.weight;
    const elapsed = nowMs - this.admittedAtMs;
    if (elapsed >= window) return this.weight;
    return this.weight * Math.max(SLOW_START_FLOOR, elapsed / window);
  }

  /** Least-connections load key: (in-flight + 1) / effective weight. */
  load(nowMs: number): number {
    return (this.inFlight + 1) / this.effectiveWeight(nowMs);
  }

  /** A call got a well-formed answer that is not a node failure (any 2xx or 4xx). */
  recordSuccess(nowMs: number): RotationChange {
    this.connectErrorsInRow = 0;
    this.nodeErrorsInRow = 0;
    // A node that stayed in rotation longer than the longest ejection has earned a clean record.
    if (this.ejectionsInRow > 0 && !this.ejected && nowMs - this.admittedAtMs > this.policy.ejectMaxMs) this.ejectionsInRow = 0;
    if (this.ejected) {
      // A probe sent under the all-out policy succeeded: readmit now rather than wait.
      this.ejected = false;
      this.admit(nowMs);
      return this.inRotation ? 'in' : undefined;
    }
    return undefined;
  }

  /**
   * A call failed: `connection` for connect errors and broken connections, else a 5xx the node
   * answered. The two are counted apart; either reaching `ejectAfter` in a row ejects the node.
   */
  recordFailure(nowMs: number, connection: boolean): RotationChange {
    if (connection) this.connectErrorsInRow++;
    else {
      this.nodeErrorsInRow++;
      // The node answered, so the connection works.
      this.connectErrorsInRow = 0;
    }
    if (this.ejected) {
      // A failed probe of an ejected node: the ejection continues from now.
      this.extendEjection(nowMs);
      return undefined;
    }
    if (this.connectErrorsInRow >= this.policy.ejectAfter || this.nodeErrorsInRow >= this.policy.ejectAfter) {
      const wasIn = this.inRotation;
      this.ejected = true;
      this.ejectionsInRow++;
      this.extendEjection(nowMs);
      this.outSinceMs = nowMs;
      return wasIn ? 'out' : undefined;
    }
    return undefined;
  }

  /** Milliseconds of the current (or next) ejection: base × ejections in a row, capped. */
  ejectionMs(): number {
    return Math.min(this.policy.ejectMaxMs, this.policy.ejectBaseMs * Math.max(1, this.ejectionsInRow));
  }

  private extendEjection(nowMs: number): void {
    this.ejectedUntilMs = nowMs + this.ejectionMs();
    this.connectErrorsInRow = 0;
    this.nodeErrorsInRow = 0;
  }

  /** The result of one active health check. A pass readmits (through slow start) a node whose ejection is over. */
  recordCheck(ok: boolean, nowMs: number): RotationChange {
    const wasIn = this.inRotation;
    const firstCheck = !this.checked;
    this.checked = true;
    if (ok) {
      this.checksFailed = 0;
      this.checksPassed++;
      let admitted = false;
      if (!this.healthy && this.checksPassed >= this.policy.healthRise) {
        this.healthy = true;
        admitted = true;
      }
      if (this.draining && this.checksPassed >= this.policy.healthRise) {
        this.draining = false;
        admitted = true;
      }
      if (this.ejected && nowMs >= this.ejectedUntilMs) {
        this.ejected = false;
        admitted = true;
      }
      if (admitted && !wasIn) this.admit(nowMs);
    } else {
      this.checksPassed = 0;
      this.checksFailed++;
      // Until a first check passes, one failure is enough: the node was never seen working.
      if (this.healthy && (firstCheck || this.checksFailed >= this.policy.healthFall)) {
        this.healthy = false;
        if (wasIn) this.outSinceMs = nowMs;
      }
    }
    const isIn = this.inRotation;
    return isIn === wasIn ? undefined : isIn ? 'in' : 'out';
  }

  /** The node asked to leave the rotation now (x-relaygate-drain: 1). */
  startDraining(nowMs: number): RotationChange {
    if (this.draining) return undefined;
    const wasIn = this.inRotation;
    this.draining = true;
    this.checksPassed = 0;
    if (wasIn) this.outSinceMs = nowMs;
    return wasIn ? 'out' : undefined;
  }

  private admit(nowMs: number): void {
    this.admittedAtMs = nowMs;
    this.connectErrorsInRow = 0;
    this.nodeErrorsInRow = 0;
  }
}
