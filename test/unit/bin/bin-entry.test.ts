import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);

/**
 * A tree shaped like the package, with the real bin script and node_modules (for tsx), whose two
 * entry points say which one ran.
 */
function makeTree(): string {
  const root = mkdtempSync(join(tmpdir(), 'claude-batch-bin-'));
  mkdirSync(join(root, 'bin'));
  mkdirSync(join(root, 'src/cli'), { recursive: true });
  mkdirSync(join(root, 'dist/cli'), { recursive: true });
  copyFileSync(join(REPO, 'bin/claude-batch.js'), join(root, 'bin/claude-batch.js'));
  writeFileSync(join(root, 'package.json'), '{"type":"module"}');
  symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
  writeFileSync(join(root, 'src/cli/main.ts'), "const from: string = 'src';\nconsole.log(from);\n");
  writeFileSync(join(root, 'dist/cli/main.js'), "console.log('dist');\n");
  return root;
}

function setMtime(path: string, seconds: number): void {
  utimesSync(path, seconds, seconds);
}

describe('bin/claude-batch.js', () => {
  let root: string;
  beforeEach(() => {
    root = makeTree();
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const which = async (): Promise<string> =>
    (await run(process.execPath, [join(root, 'bin/claude-batch.js')])).stdout.trim();

  it('runs the compiled CLI when the build is newer than every source file', async () => {
    writeFileSync(join(root, 'dist/.built'), '');
    for (const path of ['src/cli/main.ts', 'src/cli', 'src']) setMtime(join(root, path), 1_000_000);
    setMtime(join(root, 'dist/.built'), 2_000_000);
    expect(await which()).toBe('dist');
  });

  it('runs the TypeScript through tsx when any source file is newer than the build', async () => {
    writeFileSync(join(root, 'dist/.built'), '');
    for (const path of ['src/cli', 'src']) setMtime(join(root, path), 1_000_000);
    setMtime(join(root, 'dist/.built'), 2_000_000);
    setMtime(join(root, 'src/cli/main.ts'), 3_000_000);
    expect(await which()).toBe('src');
  });

  it('runs the TypeScript when there is no finished build', async () => {
    // dist/ exists but the stamp, written last by `npm run build`, does not: a build cut short.
    expect(await which()).toBe('src');
  });

  it('runs the compiled CLI in an installed package: no src/, no stamp, no tsx', async () => {
    // What `npm pack` ships: bin/ and dist/ only, and node_modules without our dev dependencies.
    rmSync(join(root, 'src'), { recursive: true });
    rmSync(join(root, 'node_modules'));
    expect(await which()).toBe('dist');
  });
});
