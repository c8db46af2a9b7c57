// Seedable random source for the balancer, so that every choice it makes can be replayed in tests.

/** A source of uniform numbers in [0, 1). */
export type RandomSource = () => number;

/** mulberry32: a tiny, fast 32-bit PRNG; the same seed gives the same sequence. */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
