#!/usr/bin/env node
// Installed from npm (or a tarball), the package has no src/: the compiled CLI in dist/ runs, with
// no loader and nothing from the dev dependencies.
// In a clone of the repository it runs dist/ (from `npm run build`, which `npm ci` runs as
// `prepare`) when that is at least as new as every file under src/, and otherwise the TypeScript
// itself through tsx's loader (a dev dependency), so an edited tree is never run stale and a tree
// without a build still works.
// Compiled, a command starts ~0.3 s sooner and peaks ~30 MB lower: no loader, no transform cache.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

const root = dirname(import.meta.dirname);

/** Newest modification time of any file under `dir`, in ms (0 when it is empty or missing). */
function newestMtime(dir) {
  let newest = 0;
  let names;
  try {
    names = readdirSync(dir, { recursive: true });
  } catch {
    return 0;
  }
  for (const name of names) newest = Math.max(newest, statSync(`${dir}/${name}`).mtimeMs);
  return newest;
}

const built = statSync(`${root}/dist/.built`, { throwIfNoEntry: false });
if (!existsSync(`${root}/src/cli/main.ts`)) {
  await import('../dist/cli/main.js');
} else if (built !== undefined && newestMtime(`${root}/src`) <= built.mtimeMs) {
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
