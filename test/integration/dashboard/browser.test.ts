import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resumeQueue } from '../../../src/breakers/breakers.js';
import { startDashboard, type RunningDashboard } from '../../../src/dashboard/index.js';
import { RULES_BY_TYPE } from '../../../src/errors/error-table.js';
import type { Runtime } from '../../../src/runtime.js';
import { Secret } from '../../../src/secret.js';
import { CHROMIUM_ARGS, testChromium } from '../../helpers/chromium.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';
import { EXPECTED, seedBatch, tripBillingBreaker, tripModelBreaker } from './fixtures.js';

const OUTPUT = fileURLToPath(new URL('../../../test-output/', import.meta.url));
const USER = 'ops';
const PASSWORD = 'browser-pass-4c2e';

let runtime: Runtime;
let dashboard: RunningDashboard;
let context: BrowserContext | undefined;
let profile: string;
let batchId: string;

beforeAll(async () => {
  // The npm-shipped Chromium (or CHROMIUM_PATH); a missing browser fails this suite, never skips it.
  const browser = await testChromium();
  runtime = await testRuntime('dash-browser');
  batchId = await seedBatch(runtime);
  await tripModelBreaker(runtime, 'claude-opus-4-1');
  // Basic auth, as a browser behind credentials would use it (Bull Board's own API calls included).
  dashboard = await startDashboard(runtime, {
    port: 0,
    auth: { basic: { user: USER, password: new Secret(PASSWORD) } },
  });
  await mkdir(OUTPUT, { recursive: true });
  profile = await mkdtemp(join(tmpdir(), 'cb-dashboard-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: browser.executablePath,
    env: { ...process.env, ...browser.env },
    headless: true,
    args: [...CHROMIUM_ARGS],
    httpCredentials: { username: USER, password: PASSWORD },
    viewport: { width: 1280, height: 1000 },
  });
});

afterAll(async () => {
  await context?.close();
  await dashboard?.close();
  if (runtime) await disposeRuntime(runtime);
  if (profile) await rm(profile, { recursive: true, force: true });
});

/** A fix as the page shows it: its `backticked` commands rendered as code, so no backticks. */
const shown = (fix: string): string => fix.replace(/`/g, '');

describe('dashboard in a real browser', () => {
  it('shows the batch with its counts, an error type with its fix, and the model breaker', async () => {
    const page = await context!.newPage();
    const response = await page.goto(dashboard.url);
    expect(response?.status()).toBe(200);
    const card = page.locator(`section[data-batch="${batchId}"]`);
    await card.waitFor();
    const count = async (name: string) =>
      (await card.locator(`[data-count="${name}"] b`).first().textContent())?.trim();
    expect(await count('succeeded')).toBe(String(EXPECTED.succeeded));
    expect(await count('errored')).toBe(String(EXPECTED.errored));
    expect(await count('canceled')).toBe(String(EXPECTED.canceled));
    expect(await count('processing')).toBe(String(EXPECTED.processing));
    expect((await card.locator('[data-count="truncated"]').textContent())?.trim()).toBe('1');
    expect((await card.locator('[data-count="refused"]').textContent())?.trim()).toBe('1');

    const invalid = card.locator('tr[data-error-type="invalid_request_error"]');
    await expect
      .poll(() => invalid.textContent())
      .toContain(shown(RULES_BY_TYPE['invalid_request_error']!.fix));
    expect(await card.locator('tr[data-error-type="overloaded_error"]').textContent()).toContain(
      shown(RULES_BY_TYPE['overloaded_error']!.fix),
    );
    expect(await card.locator('[data-cost]').textContent()).toBe('$0.0151');
    expect(await page.locator('#model-breakers').textContent()).toContain('claude-opus-4-1');
    expect(await page.locator('#model-breakers').textContent()).toContain(
      shown(RULES_BY_TYPE['not_found_error']!.fix),
    );

    const file = join(OUTPUT, 'dashboard-batches.png');
    await page.screenshot({ path: file, fullPage: true });
    expect((await stat(file)).size).toBeGreaterThan(1000);
    await page.close();
  });

  it('shows a paused queue prominently, with the key breaker and its fix', async () => {
    await tripBillingBreaker(runtime);
    try {
      const page = await context!.newPage();
      await page.goto(dashboard.url);
      const alert = page.locator('#key-breaker');
      await alert.waitFor();
      const text = await alert.textContent();
      expect(text).toContain('PAUSED');
      expect(text).toContain('billing_error');
      expect(text).toContain('Your credit balance is too low');
      expect(text).toContain(shown(RULES_BY_TYPE['billing_error']!.fix));
      // The fix's command is code, not backticks.
      expect(
        await alert.locator('code', { hasText: 'claude-batch dlq retry --type billing_error' }).count(),
      ).toBe(1);
      expect(text).toContain('credits exhausted');
      expect(await page.locator(`section[data-batch="${batchId}"] .badge`).first().textContent()).toBe(
        'paused',
      );
      expect(await page.title()).toMatch(/^PAUSED/);
      const file = join(OUTPUT, 'dashboard-paused.png');
      await page.screenshot({ path: file, fullPage: true });
      expect((await stat(file)).size).toBeGreaterThan(1000);
      await page.close();
    } finally {
      await resumeQueue(runtime);
    }
  });

  it('pauses and resumes the queue from the page (a same-origin form post)', async () => {
    const page = await context!.newPage();
    await page.goto(dashboard.url);
    await page.getByRole('button', { name: 'Pause queue' }).click();
    await page.locator('#key-breaker').waitFor({ timeout: 10_000 });
    expect(page.url()).toBe(dashboard.url);
    expect(await page.locator('#key-breaker').textContent()).toContain('PAUSED by hand');
    expect(await runtime.requests.isPaused()).toBe(true);
    await page.getByRole('button', { name: 'Resume queue' }).click();
    await page.getByRole('button', { name: 'Pause queue' }).waitFor({ timeout: 10_000 });
    expect(await runtime.requests.isPaused()).toBe(false);
    await page.close();
  });

  it('serves Bull Board with both queues', async () => {
    const page = await context!.newPage();
    await page.goto(`${dashboard.url}queues`);
    // Bull Board is a React app: wait for it to render the queue names it fetched.
    await page.getByText('dead-letter', { exact: true }).first().waitFor({ timeout: 15_000 });
    await page.getByText('requests', { exact: true }).first().waitFor({ timeout: 15_000 });
    await page.getByText('Loading...').waitFor({ state: 'hidden', timeout: 15_000 });
    const file = join(OUTPUT, 'dashboard-bull-board.png');
    await page.screenshot({ path: file, fullPage: true });
    expect((await stat(file)).size).toBeGreaterThan(1000);

    await page.goto(`${dashboard.url}queues/queue/dead-letter?status=waiting`);
    await page.getByText('req-4').first().waitFor({ timeout: 15_000 });
    const dlq = join(OUTPUT, 'dashboard-dead-letter.png');
    await page.screenshot({ path: dlq, fullPage: true });
    expect((await stat(dlq)).size).toBeGreaterThan(1000);
    await page.close();
  });
});
