import { describe, expect, it } from 'vitest';
import { EmulatorOptionsError } from '../../../src/emulator/option-error.js';
import { FaultInjector, uniformFromKey, validateFaultPlan } from '../../../src/emulator/fault-plan.js';

describe('FaultInjector', () => {
  it('draws from (seed, prompt, attempt) only, not from call order', () => {
    const plan = { probabilities: { api_error: 0.3, overloaded_error: 0.3 } };
    const a = new FaultInjector(plan, 1);
    const b = new FaultInjector(plan, 1);
    const keys = Array.from({ length: 200 }, (_, i) => [`p${i % 50}`, 1 + Math.floor(i / 50)] as const);
    const forward = keys.map(([p, n]) => a.decide(p, n)?.type ?? 'ok');
    const backward = [...keys].reverse().map(([p, n]) => b.decide(p, n)?.type ?? 'ok');
    expect(backward.reverse()).toEqual(forward);
    const counts = forward.reduce<Record<string, number>>(
      (acc, t) => ({ ...acc, [t]: (acc[t] ?? 0) + 1 }),
      {},
    );
    expect(counts.api_error).toBeGreaterThan(30);
    expect(counts.overloaded_error).toBeGreaterThan(30);
    expect(counts.ok).toBeGreaterThan(50);
  });

  it('plays a script in order before probabilities, and restarts it when set again', () => {
    const injector = new FaultInjector(
      { script: ['hang', 'ok', { type: 'rate_limit_error', retryAfterSeconds: 5 }] },
      0,
    );
    expect(injector.decide('p', 1)).toEqual({
      type: 'hang',
      retryAfterSeconds: 1,
      afterDeltas: null,
      source: 'script',
    });
    expect(injector.decide('p', 2)).toBeNull();
    expect(injector.decide('p', 3)).toEqual({
      type: 'rate_limit_error',
      retryAfterSeconds: 5,
      afterDeltas: null,
      source: 'script',
    });
    expect(injector.decide('p', 4)).toBeNull();
    injector.setPlan({ script: ['api_error'], retryAfterSeconds: 3 });
    expect(injector.decide('p', 5)?.type).toBe('api_error');
  });

  it('uniformFromKey is in [0, 1) and stable', () => {
    expect(uniformFromKey('a')).toBe(uniformFromKey('a'));
    for (let i = 0; i < 100; i++) {
      const u = uniformFromKey(String(i));
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
    }
  });
});

describe('validateFaultPlan', () => {
  it.each([
    [{ probabilities: { api_error: 1.2 } }, 'faults.probabilities.api_error'],
    [{ probabilities: { gremlins: 0.1 } }, 'faults.probabilities.gremlins'],
    [{ probabilities: { api_error: 0.6, overloaded_error: 0.6 } }, 'faults.probabilities'],
    [{ script: 'api_error' }, 'faults.script'],
    [{ script: ['ok', 'nope'] }, 'faults.script.1'],
    [{ script: [{ type: 'api_error', retryAfterSeconds: 0 }] }, 'faults.script.0.retryAfterSeconds'],
    [{ retryAfterSeconds: 1.5 }, 'faults.retryAfterSeconds'],
    [{ probabilty: {} }, 'faults.probabilty'],
    [{ script: [{ type: 'api_error', errorCode: 'ramp_limit_exceeded' }] }, 'faults.script.0.type'],
    [{ script: [{ type: 'rate_limit_error', errorCode: 'nope' }] }, 'faults.script.0.errorCode'],
    [{ script: [{ type: 'hang', afterDeltas: 2 }] }, 'faults.script.0.afterDeltas'],
    [{ script: [{ type: 'api_error', afterDeltas: -1 }] }, 'faults.script.0.afterDeltas'],
  ])('rejects %j naming %s', (plan, option) => {
    let error: unknown;
    try {
      validateFaultPlan(plan);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(EmulatorOptionsError);
    expect((error as EmulatorOptionsError).option).toBe(option);
    expect((error as EmulatorOptionsError).message).toContain(option);
  });
});
