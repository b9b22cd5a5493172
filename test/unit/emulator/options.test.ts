import { describe, expect, it } from 'vitest';
import { emulatorOptionsFromFlags } from '../../../src/cli/emulator-command.js';
import {
  DEFAULT_MODELS,
  EmulatorOptionsError,
  resolveEmulatorOptions,
  startEmulator,
  type EmulatorOptions,
} from '../../../src/emulator/index.js';
import { CacheMinimums } from '../../../src/emulator/cache-minimums.js';

function optionError(fn: () => unknown): EmulatorOptionsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof EmulatorOptionsError) return err;
    throw err;
  }
  throw new Error('expected an EmulatorOptionsError');
}

describe('emulator options', () => {
  it('fills in the documented defaults', () => {
    const o = resolveEmulatorOptions();
    expect(o).toMatchObject({
      host: '127.0.0.1',
      port: 0,
      apiKeys: [],
      anthropicVersionRequired: true,
      billingErrorStatus: 400,
      models: DEFAULT_MODELS,
      maxBodyBytes: 32 * 1024 * 1024,
      maxOutputTokens: 64_000,
      credits: null,
      spendCapReached: false,
      maxConcurrent: null,
      seed: 0,
      requestLogSize: 10_000,
      latency: { fixedMs: 0, jitterMs: 0, perOutputTokenMs: 0 },
    });
    expect(DEFAULT_MODELS).toEqual(
      expect.arrayContaining(['claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-opus-4-1']),
    );
  });

  it.each<[EmulatorOptions | Record<string, unknown>, string, string]>([
    [{ port: 'abc' }, 'port', '"abc"'],
    [{ port: 70_000 }, 'port', '70000'],
    [{ host: '' }, 'host', '""'],
    [{ apiKeys: 'k' }, 'apiKeys', '"k"'],
    [{ billingErrorStatus: 401 }, 'billingErrorStatus', '401'],
    [{ models: [] }, 'models', '[]'],
    [{ models: ['ok', 3] }, 'models.1', '3'],
    [{ limits: { rpm: -5 } }, 'limits.rpm', '-5'],
    [{ limits: { rpm: 1.5 } }, 'limits.rpm', '1.5'],
    [{ limits: { otpmMode: 'eventually' } }, 'limits.otpmMode', '"eventually"'],
    [{ limits: { rmp: 5 } }, 'limits.rmp', '5'],
    [{ limits: { byModel: { m: { itpm: 0 } } } }, 'limits.byModel.m.itpm', '0'],
    [{ maxBodyBytes: 0 }, 'maxBodyBytes', '0'],
    [{ latency: { fixedMs: -1 } }, 'latency.fixedMs', '-1'],
    [{ credits: { perRequest: 1 } }, 'credits.balance', 'undefined'],
    [{ credits: { balance: 5, perRequest: 'free' } }, 'credits.perRequest', '"free"'],
    [{ faults: { probabilities: { api_error: 2 } } }, 'faults.probabilities.api_error', '2'],
    [{ seed: 0.5 }, 'seed', '0.5'],
    [{ requestLogSize: -1 }, 'requestLogSize', '-1'],
    [{ clock: 5 }, 'clock', '5'],
    [{ spendCapReached: 'yes' }, 'spendCapReached', '"yes"'],
    [{ prot: 8080 }, 'prot', '8080'],
    [{ maxConcurrent: 0 }, 'maxConcurrent', '0'],
    [{ minCacheableTokens: -1 }, 'minCacheableTokens', '-1'],
    [{ minCacheableTokens: { 'claude-*': 1.5 } }, 'minCacheableTokens.claude-*', '1.5'],
    [
      { faults: { script: [{ type: 'api_error', errorCode: 'ramp_limit_exceeded' }] } },
      'faults.script.0.type',
      '"api_error"',
    ],
    [{ forbiddenModels: { '*': ['a', ''] } }, 'forbiddenModels.*.1', '""'],
  ])('%j → error naming %s and its value', (options, option, value) => {
    const err = optionError(() => resolveEmulatorOptions(options));
    expect(err.option).toBe(option);
    expect(err.message).toContain(option);
    expect(err.message).toContain(value);
    expect(err.message).toMatch(/expected /);
  });

  it('minimum cacheable lengths: the table by default, a number for every model, or globs ahead of the table', () => {
    const minimums = (minCacheableTokens?: EmulatorOptions['minCacheableTokens']) => {
      const m = new CacheMinimums(resolveEmulatorOptions({ minCacheableTokens }).minCacheableTokens);
      return [
        'claude-haiku-4-5',
        'claude-opus-4-6',
        'claude-sonnet-4-6',
        'claude-3-5-haiku-20241022',
        'claude-opus-4-1',
      ].map((model) => m.minTokens(model));
    };
    expect(minimums()).toEqual([4_096, 4_096, 2_048, 2_048, 1_024]);
    expect(minimums(0)).toEqual([0, 0, 0, 0, 0]);
    expect(minimums({ 'claude-haiku-*': 10, 'claude-*-4-6': 20 })).toEqual([10, 20, 20, 2_048, 1_024]);
    const m = new CacheMinimums([['*', 100]]);
    const bps = [{ tokens: 50 }, { tokens: 100 }, { tokens: 150 }];
    expect(m.cacheable('m', bps)).toEqual([{ tokens: 100 }, { tokens: 150 }]);
    expect(m.cacheable('m', [{ tokens: 99 }])).toBeNull();
    expect(m.cacheable('m', null)).toBeNull();
  });

  it('startEmulator rejects bad options before listening', async () => {
    await expect(startEmulator({ limits: { rpm: 0 } })).rejects.toThrow(
      /limits\.rpm: got 0 \(number\), expected an integer >= 1/,
    );
  });

  it('per-key forbidden models never put the key in an error', () => {
    const err = optionError(() =>
      resolveEmulatorOptions({ forbiddenModels: { 'sk-secret-key': 'claude-x' as never } }),
    );
    expect(err.message).not.toContain('sk-secret-key');
  });
});

describe('CLI flags → options', () => {
  it('maps flags and takes keys from CLAUDE_EMULATOR_KEYS only', () => {
    const options = emulatorOptionsFromFlags(
      {
        port: 8080,
        rpm: 50,
        otpm: 8000,
        otpmMode: 'reserve',
        latencyMs: 10,
        credits: 5,
        creditPerRequest: 2,
        fault: [['overloaded_error', 0.1]],
        faultScript: ['api_error', 'ok'],
        billingStatus: 402,
        versionCheck: false,
        maxConcurrent: 4,
        minCacheTokens: 100,
      },
      { CLAUDE_EMULATOR_KEYS: ' a , b,,' },
      () => JSON.stringify({ probabilities: { api_error: 0.2 } }),
    );
    expect(options).toEqual({
      port: 8080,
      apiKeys: ['a', 'b'],
      anthropicVersionRequired: false,
      billingErrorStatus: 402,
      limits: { rpm: 50, otpm: 8000, otpmMode: 'reserve' },
      latency: { fixedMs: 10, jitterMs: 0, perOutputTokenMs: 0 },
      faults: { probabilities: { overloaded_error: 0.1 }, script: ['api_error', 'ok'] },
      credits: { balance: 5, perRequest: 2 },
      maxConcurrent: 4,
      minCacheableTokens: 100,
    });
    expect(() => resolveEmulatorOptions(options)).not.toThrow();
  });

  it('merges a faults file with --fault flags', () => {
    const options = emulatorOptionsFromFlags({ faults: 'plan.json', fault: [['api_error', 0.05]] }, {}, () =>
      JSON.stringify({ probabilities: { api_error: 0.2, overloaded_error: 0.1 }, retryAfterSeconds: 2 }),
    );
    expect(options.faults).toEqual({
      probabilities: { api_error: 0.05, overloaded_error: 0.1 },
      retryAfterSeconds: 2,
    });
  });
});
