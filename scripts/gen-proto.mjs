// Generates static protobuf code from proto/ into src/gen (build output, never edited by hand).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cliDir = dirname(require.resolve('protobufjs-cli/package.json'));
const protoDir = join(root, 'proto', 'relaygate', 'v1');
const protos = readdirSync(protoDir).filter((f) => f.endsWith('.proto')).sort().map((f) => join(protoDir, f));
const outDir = join(root, 'src', 'gen');
const outJs = join(outDir, 'relaygate.js');
mkdirSync(outDir, { recursive: true });

execFileSync(process.execPath, [
  join(cliDir, 'bin', 'pbjs'),
  '-t', 'static-module', '-w', 'esm', '--force-number', '--no-beautify', '--no-verify', '--no-typeurl',
  '-p', join(root, 'proto'), '-o', outJs, ...protos,
], { stdio: 'inherit' });
execFileSync(process.execPath, [join(cliDir, 'bin', 'pbts'), '-o', join(outDir, 'relaygate.d.ts'), outJs], { stdio: 'inherit' });
