// createNode: serve your own functions to relaygate gateways in a few lines.
//   const node = createNode({ functions: { add: async (req) => { const { a, b } = req.json(); return { sum: a + b }; } } });
//   await node.listen({ port: 9001 });
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from '../log.js';
import { FunctionHost, type NodeFunction } from './function-host.js';
import { createNodeHttpServer } from './http-server.js';
import { NodeRegistrar, type RegistrarOptions } from './registrar.js';

export interface NodeOptions {
  readonly functions: Readonly<Record<string, NodeFunction>>;
  /** Sent as x-relaygate-node-id; default `<hostname>-<port>`. */
  readonly id?: string;
  /** Calls run at once; beyond it the node answers 429. Default 1024. */
  readonly maxConcurrency?: number;
  /** Largest request payload; default 64 MiB. */
  readonly maxBodyBytes?: number;
  readonly tls?: { readonly cert: Buffer | string; readonly key: Buffer | string; readonly passphrase?: string };
  readonly log?: Logger;
}

export interface ListenOptions {
  readonly port?: number;
  readonly host?: string;
}

export interface RegisterOptions extends RegistrarOptions {
  /** The URL gateways use to reach this node; default the address it listens on. */
  readonly url?: string;
  readonly weight?: number;
  /** The node's binary link URL (relaygate+tcp://host:port), when it serves one. */
  readonly linkUrl?: string;
}

/** A compute node. Transports (HTTP here, others beside it) share `host`, the function table. */
export interface RelaygateNode {
  readonly host: FunctionHost;
  /** The node id (known once listening when not given). */
  readonly id: string;
  /** Starts the HTTP server; resolves with the port and the URL it is reachable at. */
  listen(options?: ListenOptions): Promise<{ port: number; url: string }>;
  /** Registers in the Redis registry and heartbeats until drain/close. */
  register(options: RegisterOptions): Promise<void>;
  /**
   * Leaves gracefully: withdraws the registration, marks every reply and health check with the drain
   * signal, lets running calls finish (up to `graceMs`), then closes.
   */
  drain(graceMs?: number): Promise<void>;
  /** Stops at once; running calls are cut off. */
  close(): Promise<void>;
  /** Runs `fn` when the node closes (other transports hook their shutdown here). */
  onClose(fn: () => Promise<void> | void): void;
}

/** After drain, how long replies still being written get before connections are cut. */
const SERVER_CLOSE_GRACE_MS = 2_000;

/** Creates a node serving `options.functions`. */
export function createNode(options: NodeOptions): RelaygateNode {
  const host = new FunctionHost(options.functions, { maxConcurrency: options.maxConcurrency ?? 1024, ...(options.log ? { log: options.log } : {}) });
  let id = options.id ?? '';
  let server: Server | undefined;
  let registrar: NodeRegistrar | undefined;
  let listenUrl = '';
  const closers: (() => Promise<void> | void)[] = [];
  let closed = false;

  /** Stops the server. Graceful: replies being written finish and idle connections close; force after a while. */
  const closeServer = async (graceful: boolean): Promise<void> => {
    if (!server) return;
    const s = server;
    server = undefined;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    if (graceful) {
      const until = Date.now() + SERVER_CLOSE_GRACE_MS;
      let done = false;
      void closed.then(() => { done = true; });
      while (!done && Date.now() < until) {
        s.closeIdleConnections();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    s.closeAllConnections();
    await closed;
  };

  const shutDown = async (graceful: boolean): Promise<void> => {
    if (closed) return;
    closed = true;
    await registrar?.stop();
    for (const fn of closers) await fn();
    await closeServer(graceful);
  };

  const node: RelaygateNode = {
    host,
    get id() {
      return id;
    },
    async listen(listen = {}) {
      if (server) throw new Error('node already listening');
      server = createNodeHttpServer(host, {
        nodeId: () => id,
        maxBodyBytes: options.maxBodyBytes ?? 64 * 1024 * 1024,
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.log ? { log: options.log } : {}),
      });
      const s = server;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(listen.port ?? 0, listen.host ?? '0.0.0.0', () => {
          s.off('error', reject);
          resolve();
        });
      });
      const port = (s.address() as AddressInfo).port;
      if (!id) id = `${hostname()}-${port}`;
      const bound = listen.host ?? '0.0.0.0';
      const advertised = bound === '0.0.0.0' || bound === '::' ? hostname() : bound;
      listenUrl = `${options.tls ? 'https' : 'http'}://${advertised.includes(':') ? `[${advertised}]` : advertised}:${port}`;
      return { port, url: listenUrl };
    },
    async register(register) {
      const url = register.url ?? listenUrl;
      if (!url) throw new Error('register needs a URL: listen first or pass `url`');
      registrar = new NodeRegistrar(
        { id, url, weight: register.weight ?? 1, functions: host.functions, ...(register.linkUrl ? { linkUrl: register.linkUrl } : {}) },
        register,
        options.log,
      );
      await registrar.start();
    },
    async drain(graceMs = 10_000) {
      if (closed) return;
      host.startDraining();
      await registrar?.stop();
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); });
      await Promise.race([host.idle(), grace]);
      clearTimeout(timer);
      await shutDown(true);
    },
    close: () => shutDown(false),
    onClose(fn) {
      closers.push(fn);
    },
  };
  return node;
}
