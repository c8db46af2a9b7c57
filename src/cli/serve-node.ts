// `relaygate node`: one reference compute node process, drained on SIGTERM.
import type { LoadedSettings } from '../config.js';
import { createLogger } from '../log.js';
import { drainOnSignals, logUnexpectedErrors } from './lifecycle.js';
import { runNode } from './node.js';

export async function runNodeCommand({ values }: LoadedSettings): Promise<number | undefined> {
  const log = createLogger({ level: values.logLevel, name: 'node' });
  logUnexpectedErrors(log);
  const node = await runNode(values, log);
  drainOnSignals(log, [node]);
  log.info({ port: node.port, linkPort: node.linkPort, url: node.url }, 'listening');
  return undefined;
}
