// Least-connections choice among compute nodes. Pure and deterministic: time and randomness are
// passed in, so every decision replays exactly under a seeded random source.
import type { BalancedNode } from './node-state.js';
import type { RandomSource } from './random.js';

/** Up to this many candidates are scanned in full; beyond it, power of two choices. */
export const FULL_SCAN_LIMIT = 8;

/**
 * Why no node was chosen. `busy`: nodes exist but every one is at its in-flight limit (wait in the
 * queue); `unknown-function`: no node declares the function; `no-node`: none can take work at all.
 */
export type PickMiss = 'busy' | 'unknown-function' | 'no-node';

export interface BalancerOptions {
  /** Calls in flight per node per gateway; beyond it requests wait. */
  readonly maxInFlight: number;
  readonly random: RandomSource;
}

/**
 * Picks a node for each call. Load key = (in-flight + 1) / weight after slow start, counted locally.
 * Only nodes serving the function, healthy, not ejected and not draining are candidates. With no
 * candidate in rotation at all, the all-out policy applies: the node out of rotation the longest
 * (and not draining) gets one probe call at a time, so a fleet-wide blip does not fail everything.
 */
export class Balancer<N extends BalancedNode = BalancedNode> {
  private readonly nodes: N[] = [];
  private readonly scratch: N[] = [];
  private readonly outScratch: N[] = [];
  private turn = 0;
  private inFlightTotal = 0;

  constructor(private readonly options: BalancerOptions) {}

  /** Calls in flight on every node. */
  get inFlight(): number {
    return this.inFlightTotal;
  }

  /** The nodes, in the order they were added. */
  list(): readonly N[] {
    return this.nodes;
  }

  add(node: N): void {
    this.nodes.push(node);
  }

  /** Takes `node` out of every future pick; its calls in flight still release normally. */
  remove(node: N): void {
    node.removed = true;
    const i = this.nodes.indexOf(node);
    if (i >= 0) this.nodes.splice(i, 1);
  }

  /** Some node is in rotation (healthy, not ejected, not draining). */
  anyInRotation(): boolean {
    for (const node of this.nodes) if (node.inRotation) return true;
    return false;
  }

  /** Counts a call against `node` until release. */
  acquire(node: N): void {
    node.inFlight++;
    this.inFlightTotal++;
  }

  release(node: N): void {
    node.inFlight--;
    this.inFlightTotal--;
  }

  /** The node for a call of `fn`, never one in `exclude` (nodes already tried). */
  pick(fn: string, nowMs: number, exclude?: readonly N[]): N | PickMiss {
    const candidates = this.scratch;
    const out = this.outScratch;
    candidates.length = 0;
    out.length = 0;
    let serving = 0;
    let busy = false;
    const limit = this.options.maxInFlight;
    for (const node of this.nodes) {
      if (!node.serves(fn)) continue;
      serving++;
      if (node.draining || (exclude !== undefined && exclude.includes(node))) continue;
      if (!node.inRotation) out.push(node);
      else if (node.inFlight >= limit) busy = true;
      else candidates.push(node);
    }
    const n = candidates.length;
    if (n === 0) {
      if (serving === 0) return 'unknown-function';
      if (busy) return 'busy';
      return this.pickOut(out);
    }
    if (n === 1) return candidates[0]!;
    if (n <= FULL_SCAN_LIMIT) {
      // Full scan from a rotating start: among equal loads the first after the start wins, so ties
      // are spread instead of always landing on the first node.
      const start = this.turn++ % n;
      if (this.turn >= 0x3fffffff) this.turn = 0;
      let best = candidates[start]!;
      let bestLoad = best.load(nowMs);
      for (let k = 1; k < n; k++) {
        const node = candidates[(start + k) % n]!;
        const load = node.load(nowMs);
        if (load < bestLoad) {
          best = node;
          bestLoad = load;
        }
      }
      return best;
    }
    // Power of two choices, drawn without replacement.
    const random = this.options.random;
    const i = Math.floor(random() * n);
    let j = Math.floor(random() * (n - 1));
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return b.load(nowMs) < a.load(nowMs) ? b : a;
  }

  /** The all-out policy: the node out of rotation the longest, one probe call at a time. */
  private pickOut(out: N[]): N | PickMiss {
    let best: N | undefined;
    let anyOut = false;
    for (const node of out) {
      if (node.removed) continue;
      anyOut = true;
      if (node.inFlight > 0) continue;
      if (best === undefined || node.outSinceMs < best.outSinceMs) best = node;
    }
    if (best) return best;
    return anyOut ? 'busy' : 'no-node';
  }
}

/** The retry budget: retries in flight may reach `budget` × calls in flight, and at least 3. */
export function retryAllowed(retriesInFlight: number, callsInFlight: number, budget: number): boolean {
  return retriesInFlight < Math.max(3, Math.floor(budget * callsInFlight));
}
