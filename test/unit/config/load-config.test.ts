import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../../../src/config/load-config.js';

describe('loadConfig', () => {
  it('starts from the documented defaults', () => {
    const config = loadConfig({ env: {} });
    expect(config).toMatchObject({ ...DEFAULT_CONFIG, apiKey: undefined });
  });

  it('env overrides defaults and flags override env', () => {
    const config = loadConfig({
      env: { CLAUDE_BATCH_CONCURRENCY: '4', CLAUDE_BATCH_RPM: '50' },
      overrides: { concurrency: '32' },
    });
    expect(config.concurrency).toBe(32);
    expect(config.rpm).toBe(50);
  });

  it('names the setting, the source and the value of a bad setting', () => {
    expect(() => loadConfig({ env: { CLAUDE_BATCH_CONCURRENCY: 'lots' } })).toThrow(
      /^CLAUDE_BATCH_CONCURRENCY: expected a whole number \(requests\), got "lots"$/,
    );
    expect(() => loadConfig({ env: { CLAUDE_BATCH_CONCURRENCY: 'lots' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: {}, overrides: { rpm: '-5' } })).toThrow(
      /--rpm: must be at least 0 requests\/min, got -5/,
    );
    expect(() => loadConfig({ env: {}, overrides: { concurrency: '2.5' } })).toThrow(
      /--concurrency: expected a whole number \(requests\), got "2.5"/,
    );
    expect(() => loadConfig({ env: { CLAUDE_BATCH_LOG_LEVEL: 'loud' } })).toThrow(/logLevel/);
  });

  it('wraps the prefix in a hash tag and refuses a colon', () => {
    expect(loadConfig({ env: { CLAUDE_BATCH_PREFIX: 'team-a' } }).prefix).toBe('{team-a}');
    expect(loadConfig({ env: { CLAUDE_BATCH_PREFIX: '{x}y' } }).prefix).toBe('{x}y');
    expect(() => loadConfig({ env: { CLAUDE_BATCH_PREFIX: 'a:b' } })).toThrow(/CLAUDE_BATCH_PREFIX/);
  });

  it('never echoes a Redis URL that may hold a password', () => {
    try {
      loadConfig({ env: { REDIS_URL: 'not a url with secretpw' } });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain('secretpw');
      expect((err as Error).message).toContain('REDIS_URL');
    }
  });

  it('takes the API key from the environment only and never prints it', () => {
    const config = loadConfig({ env: { ANTHROPIC_API_KEY: 'sk-ant-secret-value-123' } });
    expect(config.apiKey?.reveal()).toBe('sk-ant-secret-value-123');
    const rendered = [
      JSON.stringify(config),
      inspect(config),
      String(config.apiKey),
      `${config.apiKey?.toString()}`,
    ].join(' ');
    expect(rendered).not.toContain('sk-ant-secret-value-123');
    expect(rendered).toContain('[redacted]');
  });
});
