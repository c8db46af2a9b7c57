// The reference compute node as a process: its functions over HTTP, registered in Redis when configured.
import { readFileSync } from 'node:fs';
import type { SettingValues } from '../config.js';
import type { Logger } from '../log.js';
import { referenceFunctions } from '../node/functions.js';
import { listenNodeLink } from '../node/link-server.js';
import { createNode, type RelaygateNode } from '../node/sdk.js';

/** A running node: drain() leaves gracefully (deregister, finish in-flight, close); close() stops at once. */
export interface RunningNode {
  readonly port: number;
  readonly linkPort?: number;
  readonly url: string;
  readonly node: RelaygateNode;
  drain(): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_NODE_PORT = 9001;

/** Starts `relaygate node` with `values`; resolves once it listens (and is registered, with Redis). */
export async function runNode(values: SettingValues, log: Logger): Promise<RunningNode> {
  const tls = values.tlsCert && values.tlsKey
    ? { cert: readFileSync(values.tlsCert), key: readFileSync(values.tlsKey), ...(values.tlsPassphrase ? { passphrase: values.tlsPassphrase } : {}) }
    : undefined;
  const node = createNode({
    functions: referenceFunctions,
    ...(values.nodeId ? { id: values.nodeId } : {}),
    maxConcurrency: values.nodeMaxConcurrency,
    ...(tls ? { tls } : {}),
    log,
  });
  const { port, url: listenUrl } = await node.listen({ port: values.port ?? DEFAULT_NODE_PORT, host: values.host });
  const url = values.nodeUrl ?? listenUrl;
  // The binary link beside HTTP; advertised on the same host as the HTTP URL so gateways prefer it.
  const link = values.nodeLinkPort === undefined
    ? undefined
    : await listenNodeLink(node, { port: values.nodeLinkPort, host: values.host, weight: values.nodeWeight, ...(tls ? { tls } : {}), log });
  const linkUrl = link ? `relaygate+${tls ? 'tls' : 'tcp'}://${new URL(url).hostname}:${link.port}` : undefined;
  if (values.redisUrl) {
    await node.register({
      url,
      ...(linkUrl ? { linkUrl } : {}),
      weight: values.nodeWeight,
      redisUrl: values.redisUrl,
      redisCluster: values.redisCluster,
      redisPrefix: values.redisPrefix,
      heartbeatMs: values.registryHeartbeat,
    });
    log.info({ node: node.id, url }, 'registered');
  }
  return {
    port,
    ...(link ? { linkPort: link.port } : {}),
    url,
    node,
    drain: () => node.drain(values.drainGrace),
    close: () => node.close(),
  };
}
