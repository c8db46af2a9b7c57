// The one place uWebSockets.js is loaded. The package silently swaps in a slow `ws`-based shim when
// its native binary fails to load (or UWS_USE_FALLBACK is set); `uwsNative` tells the two apart.
import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';

const require = createRequire(import.meta.url);

/** The uWebSockets.js module (native binding, or the package's fallback shim). */
export const uws = require('uWebSockets.js') as typeof UWS;

function loadedNative(): boolean {
  // The package's entry requires either ../binaries/uws_<platform>_<arch>_<abi>.node or ../dist/index;
  // the CommonJS cache records which one it took.
  const entry = require.resolve('uWebSockets.js');
  const cached = require.cache[entry];
  const children = cached?.children.map((m) => m.filename) ?? Object.keys(require.cache);
  const native = children.some((f) => /[\\/]binaries[\\/]uws_[^\\/]+\.node$/.test(f));
  const fallback = children.some((f) => /[\\/]dist[\\/]index\.js$/.test(f));
  return native && !fallback;
}

/** True when the native uWebSockets.js binary is in use; false when the package's `ws` fallback is active. */
export const uwsNative: boolean = loadedNative();

/** The uWebSockets.js typings, for modules of transport/ only. */
export type { UWS };
