// tsc does not emit plain .js inputs; the generated protobuf module is copied beside the compiled code.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'dist', 'gen'), { recursive: true });
for (const file of ['relaygate.js', 'relaygate.d.ts']) {
  copyFileSync(join(root, 'src', 'gen', file), join(root, 'dist', 'gen', file));
}
