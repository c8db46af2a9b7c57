// Signal handling shared by the long-running commands: SIGTERM/SIGINT drain, a second one stops at once.
import type { Logger } from '../log.js';

export interface Drainable {
  drain(): Promise<void>;
}

/**
 * Drains `servers` (in order) on the first SIGTERM or SIGINT and exits 0; a second signal exits 1
 * at once. A drain that throws exits 1 after logging.
 */
export function drainOnSignals(log: Logger, servers: readonly Drainable[]): void {
  let draining = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (draining) {
      log.warn({ signal }, 'second signal: stopping now');
      log.flush();
      process.exit(1);
    }
    draining = true;
    log.info({ signal }, 'draining');
    (async () => {
      for (const server of servers) await server.drain();
    })().then(
      () => {
        log.info('drained; exiting');
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'drain failed');
        log.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Logs what the process cannot otherwise report, instead of dying silently mid-request. */
export function logUnexpectedErrors(log: Logger): void {
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));
}
