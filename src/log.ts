// Structured logging (pino). Log fields, never tokens, query strings or payloads.
import { pino, type Logger } from 'pino';

export type { Logger };

/** A logger writing JSON lines to stdout (or stderr for CLI tools that print results on stdout). */
export function createLogger(options: { level?: string; name?: string; destination?: 1 | 2 } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.RELAYGATE_LOG_LEVEL ?? 'info',
      ...(options.name ? { name: options.name } : {}),
      base: { pid: process.pid },
      redact: { paths: ['token', 'authorization', 'headers.authorization', 'query', 'payload'], remove: true },
    },
    pino.destination({ fd: options.destination ?? 1, sync: false }),
  );
}

/** A logger that drops everything; for library use and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
