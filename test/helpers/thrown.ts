// What a call threw, asserted to be of the expected class, for tests that then inspect it.
import { expect } from 'vitest';

/** Runs `fn`, expects it to throw an instance of `type`, and returns what it threw. */
export function thrownBy<T extends Error>(type: abstract new (...args: never[]) => T, fn: () => unknown): T {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(type);
  return caught as T;
}
