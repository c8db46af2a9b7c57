// `relaygate gateway`: one gateway process, drained on SIGTERM.
import type { LoadedSettings } from '../config.js';
import { startGateway } from '../gateway.js';
import { createLogger } from '../log.js';
import { uwsNative } from '../transport/uws.js';
import { drainOnSignals, logUnexpectedErrors } from './lifecycle.js';

/** Why the fallback is unwanted, printed whether the process refuses it or runs on it. */
const uwsFallbackReason = 'uWebSockets.js native binary did not load, so its slow ws fallback is active';
const uwsFallbackHint = 'Check that this Node.js version and platform have a binary in the package.';

/**
 * Refuses the ws fallback unless explicitly allowed; returns false when the process must not start.
 * `production`: gateway refuses, dev only warns.
 */
export function checkUwsNative(allowFallback: boolean, production: boolean): boolean {
  if (uwsNative) return true;
  if (allowFallback || !production) {
    process.stderr.write(`relaygate: warning: ${uwsFallbackReason}; running on it anyway. ${uwsFallbackHint}\n`);
    return true;
  }
  process.stderr.write(`relaygate gateway: ${uwsFallbackReason}; refusing to run a gateway on it (set RELAYGATE_ALLOW_UWS_FALLBACK=1 to run anyway). ${uwsFallbackHint}\n`);
  return false;
}

export async function runGatewayCommand({ values }: LoadedSettings): Promise<number | undefined> {
  if (!checkUwsNative(values.allowUwsFallback, true)) return 1;
  const log = createLogger({ level: values.logLevel, name: 'gateway' });
  logUnexpectedErrors(log);
  const gateway = await startGateway(values, log);
  drainOnSignals(log, [gateway]);
  log.info({ port: gateway.port }, 'listening');
  return undefined;
}
