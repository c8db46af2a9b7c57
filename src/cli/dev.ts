// `relaygate dev`: the embedded default. A gateway on localhost with a self-signed certificate,
// two local reference nodes, the in-process bus, and a printed dev token.
import { randomBytes, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generate } from 'selfsigned';
import { signToken } from '../auth/token.js';
import type { LoadedSettings, SettingValues } from '../config.js';
import { startGateway } from '../gateway.js';
import { createLogger } from '../log.js';
import { checkUwsNative } from './gateway.js';
import { drainOnSignals, logUnexpectedErrors } from './lifecycle.js';
import { runNode } from './node.js';

const devScope = 'invoke:* subscribe:** publish:**';
const devTokenTtlMs = 24 * 3_600_000;

/** A certificate is reused until a day before it expires. */
function certificateUsable(certPath: string, keyPath: string): boolean {
  if (!existsSync(certPath) || !existsSync(keyPath)) return false;
  try {
    const cert = new X509Certificate(readFileSync(certPath));
    return Date.parse(cert.validTo) - Date.now() > 86_400_000;
  } catch {
    return false;
  }
}

/** Self-signed certificate for localhost, 127.0.0.1 and ::1, kept in the state folder. */
export async function ensureDevCertificate(stateDir: string): Promise<{ cert: string; key: string }> {
  const cert = join(stateDir, 'tls-cert.pem');
  const key = join(stateDir, 'tls-key.pem');
  if (!certificateUsable(cert, key)) {
    const notAfterDate = new Date(Date.now() + 365 * 86_400_000);
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notAfterDate,
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
      ],
    });
    writeFileSync(key, pems.private, { mode: 0o600 });
    writeFileSync(cert, pems.cert);
  }
  return { cert, key };
}

/** A random HS256 secret generated on first run and kept (mode 0600) so dev tokens survive restarts. */
export function ensureDevSecret(stateDir: string): string {
  const path = join(stateDir, 'dev-secret');
  if (existsSync(path)) {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret.length >= 32) return secret;
  }
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return secret;
}

export async function runDevCommand({ values }: LoadedSettings): Promise<number | undefined> {
  if (!checkUwsNative(values.allowUwsFallback, false)) return 1;
  const log = createLogger({ level: values.logLevel, name: 'dev' });
  logUnexpectedErrors(log);
  const stateDir = resolve(values.stateDir);
  mkdirSync(stateDir, { recursive: true });

  const tls = values.tlsCert && values.tlsKey ? { cert: values.tlsCert, key: values.tlsKey } : await ensureDevCertificate(stateDir);
  const usesOwnKey = Boolean(values.jwtPublicKey || values.jwksUrl);
  const secret = values.jwtSecret ?? (usesOwnKey ? undefined : ensureDevSecret(stateDir));

  const nodes = [];
  if (!values.nodes) {
    for (const index of [1, 2]) {
      const nodeValues: SettingValues = { ...values, host: '127.0.0.1', port: 0, tlsCert: undefined, tlsKey: undefined, nodeId: `dev-node-${index}`, nodeUrl: undefined, redisUrl: undefined, nodeLinkPort: 0 };
      nodes.push(await runNode(nodeValues, log.child({ node: `dev-node-${index}` })));
    }
  }
  const gatewayValues: SettingValues = {
    ...values,
    tlsCert: tls.cert,
    tlsKey: tls.key,
    jwtSecret: secret,
    port: values.port ?? 8443,
    // The reference nodes speak the binary link beside HTTP; the gateway takes the faster one.
    nodes: values.nodes ?? nodes.map((n) => (n.linkPort === undefined ? n.url : `relaygate+tcp://127.0.0.1:${n.linkPort}`)),
  };
  const gateway = await startGateway(gatewayValues, log.child({ role: 'gateway' }));
  drainOnSignals(log, [gateway, ...nodes]);
  log.info({ port: gateway.port }, 'listening');

  const host = values.host === '0.0.0.0' ? '127.0.0.1' : values.host;
  const url = `wss://${host.includes(':') ? `[${host}]` : host}:${gateway.port}/v1/ws`;
  const lines = [``, `relaygate dev is running`, `  gateway   ${url}  (self-signed certificate in ${tls.cert})`];
  for (const node of nodes) lines.push(`  node      ${node.url}${node.linkPort === undefined ? '' : ` and relaygate+tcp://127.0.0.1:${node.linkPort}`}`);
  if (secret) {
    const token = await signToken({ secret, sub: 'dev', scope: devScope, ttlMs: devTokenTtlMs, tenantClaim: values.tenantClaim, audience: values.jwtAudience, issuer: values.jwtIssuer });
    lines.push(
      `  token: ${token}`,
      `  (sub "dev", scope "${devScope}", valid 24h; more with: RELAYGATE_JWT_SECRET=$(cat ${join(stateDir, 'dev-secret')}) npx relaygate token --sub you --scope "invoke:*")`,
      ``,
      `Try it:`,
      `  npx relaygate call sha256 --data hello --insecure --url ${url} --token ${token}`,
      `  npx wscat --no-check -s relaygate.v1.json -c "${url}?access_token=${token}"   then send {"id":1,"ping":{}}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);
  return undefined;
}
