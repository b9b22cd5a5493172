import { rm } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { cliEnv } from '../../helpers/cli.js';
import { deletePrefix, uniquePrefix } from '../../helpers/runtime.js';

const prefix = uniquePrefix('demo');
let resultsFile: string | undefined;

afterAll(async () => {
  await deletePrefix(prefix);
  if (resultsFile) await rm(resultsFile, { force: true });
});

describe('npm run demo', () => {
  it('with no API key: runs the sample batch on the emulator and prints the status table and the results file', async () => {
    const env = cliEnv({ CLAUDE_BATCH_PREFIX: prefix });
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toMatch(/using the bundled emulator/);
    expect(code).toBe(0);
    expect(stdout).toMatch(/batch demo-\d+ {2}ended/);
    expect(stdout).toMatch(/240 total: \d+ succeeded, \d+ errored, 0 canceled, 0 processing \(100% done\)/);
    resultsFile = /Results: (\S+) \(240 lines, one per custom_id\)/.exec(stdout)?.[1];
    expect(resultsFile).toBeDefined();
    // The mild fault plan has no key- or model-wide errors: nothing was paused.
    expect(stdout).not.toMatch(/PAUSED/);
  });
});
