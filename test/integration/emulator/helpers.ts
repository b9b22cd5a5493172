import Anthropic from '@anthropic-ai/sdk';
import { onTestFinished } from 'vitest';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../../../src/emulator/index.js';

export const MODEL = 'claude-haiku-4-5';
export const KEY = 'sk-emulator-test-key-0123456789';

/** Starts an emulator on a free port that closes when the current test ends. */
export async function emulator(options: EmulatorOptions = {}): Promise<EmulatorHandle> {
  const handle = await startEmulator(options);
  onTestFinished(() => handle.close());
  return handle;
}

export function sdk(handle: EmulatorHandle, apiKey = KEY, timeout = 10_000): Anthropic {
  return new Anthropic({ apiKey, baseURL: handle.url, maxRetries: 0, timeout });
}

export function params(content: string, extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}) {
  return {
    model: MODEL,
    max_tokens: 256,
    messages: [{ role: 'user' as const, content }],
    ...extra,
  } satisfies Anthropic.MessageCreateParamsNonStreaming;
}

/** The rejection of a promise that must reject. */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the request to fail, but it succeeded');
}

/** A controllable clock for bucket and cache tests. */
export function manualClock(start = Date.UTC(2026, 0, 1)) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}
