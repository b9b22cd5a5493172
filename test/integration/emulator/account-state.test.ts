import {
  AuthenticationError,
  BadRequestError,
  PermissionDeniedError,
  RateLimitError,
} from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { EmulatorOptionsError } from '../../../src/emulator/index.js';
import { KEY, emulator, failure, params, sdk } from './helpers.js';

function errorType(err: unknown): string | undefined {
  return (err as { error?: { error?: { type?: string } } }).error?.error?.type;
}

describe('credits, spend cap and key revocation', () => {
  it('refused as billing_error (403) once the balance runs out; a top-up restores service', async () => {
    const emu = await emulator({ credits: { balance: 3 }, billingErrorStatus: 403 });
    const client = sdk(emu);
    for (let i = 0; i < 3; i++) await client.messages.create(params(`paid ${i}`));
    expect(emu.control.stats().creditBalance).toBe(0);

    const err = await failure(client.messages.create(params('broke')));
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect(errorType(err)).toBe('billing_error');
    // Every request fails the same way until a top-up.
    expect(errorType(await failure(client.messages.create(params('still broke'))))).toBe('billing_error');

    expect(emu.control.topUp(2)).toBe(2);
    await client.messages.create(params('topped up 1'));
    await client.messages.create(params('topped up 2'));
    expect(errorType(await failure(client.messages.create(params('broke again'))))).toBe('billing_error');
    expect(emu.control.stats().byErrorType.billing_error).toBe(3);
  });

  it('by default an empty balance is refused as the live API does: 400 invalid_request_error, credit message', async () => {
    const emu = await emulator({ credits: { balance: 1 } });
    const client = sdk(emu);
    await client.messages.create(params('paid'));
    const err = await failure(client.messages.create(params('broke')));
    expect(err).toBeInstanceOf(BadRequestError);
    const body = (err as { error?: { type?: string; error?: { type?: string; message?: string } } }).error;
    expect(body?.type).toBe('error');
    expect(body?.error?.type).toBe('invalid_request_error');
    expect(body?.error?.message).toBe(
      'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.',
    );
    expect((err as { headers?: Headers }).headers?.get('retry-after') ?? null).toBeNull();
    const [entry] = emu.control.log().filter((e) => e.status === 400);
    expect(entry).toMatchObject({ errorType: 'invalid_request_error', billing: true });
  });

  it('per-token prices draw the balance down by usage', async () => {
    const emu = await emulator({
      credits: { balance: 100, perRequest: 0, perInputToken: 1, perOutputToken: 0 },
    });
    const client = sdk(emu);
    const r = await client.messages.create(params('x'.repeat(80))); // 20 + 3 input tokens
    expect(r.usage.input_tokens).toBe(23);
    expect(emu.control.stats().creditBalance).toBe(77);
  });

  it('topUp without credits configured is an error, setCredits turns them on', async () => {
    const emu = await emulator();
    expect(() => emu.control.topUp(5)).toThrow(EmulatorOptionsError);
    emu.control.setCredits({ balance: 1 });
    const client = sdk(emu);
    await client.messages.create(params('one'));
    expect(errorType(await failure(client.messages.create(params('two'))))).toBe('invalid_request_error');
    emu.control.setCredits(null);
    await client.messages.create(params('three'));
  });

  it('spend cap: every request gets 429 enforced_spend_limit_reached without retry-after, until lifted', async () => {
    const emu = await emulator();
    const client = sdk(emu);
    emu.control.setSpendCap(true);
    for (let i = 0; i < 2; i++) {
      const err = (await failure(client.messages.create(params(`capped ${i}`)))) as RateLimitError;
      expect(err).toBeInstanceOf(RateLimitError);
      expect(err.headers.get('retry-after')).toBeNull();
      expect(err.errorCode).toBe('enforced_spend_limit_reached');
    }
    emu.control.setSpendCap(false);
    await client.messages.create(params('lifted'));
    expect(emu.control.stats().rateLimited.spend_cap).toBe(2);
  });

  it('a revoked key gets 401 from then on; other keys keep working', async () => {
    const other = 'sk-second-key-abcdef';
    const emu = await emulator({ apiKeys: [KEY, other] });
    await sdk(emu).messages.create(params('before'));
    emu.control.revokeKey(KEY);
    for (let i = 0; i < 2; i++) {
      const err = await failure(sdk(emu).messages.create(params(`after ${i}`)));
      expect(err).toBeInstanceOf(AuthenticationError);
      expect(errorType(err)).toBe('authentication_error');
    }
    await sdk(emu, other).messages.create(params('other key'));
    emu.control.restoreKey(KEY);
    await sdk(emu).messages.create(params('restored'));
  });

  it('with no apiKeys configured any non-empty key passes', async () => {
    const emu = await emulator();
    await sdk(emu, 'whatever').messages.create(params('hi'));
    emu.control.revokeKey('whatever');
    await expect(sdk(emu, 'whatever').messages.create(params('hi'))).rejects.toBeInstanceOf(
      AuthenticationError,
    );
  });

  it('per-key forbidden models', async () => {
    const emu = await emulator({ forbiddenModels: { [KEY]: ['claude-opus-4-6'] } });
    const err = await failure(sdk(emu).messages.create(params('hi', { model: 'claude-opus-4-6' })));
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect(errorType(err)).toBe('permission_error');
    await sdk(emu, 'another-key').messages.create(params('hi', { model: 'claude-opus-4-6' }));
  });
});
