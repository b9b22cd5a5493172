import { Readable } from 'node:stream';
import { inputSource, type InputSource } from '../../src/batch/input-source.js';
import type { MessageParams } from '../../src/batch/types.js';

export const MODEL = 'claude-haiku-4-5';

export interface TestRequest {
  custom_id: string;
  params: MessageParams;
}

export function request(customId: string, text: string, extra: Partial<MessageParams> = {}): TestRequest {
  return {
    custom_id: customId,
    params: { model: MODEL, max_tokens: 32, messages: [{ role: 'user', content: text }], ...extra },
  };
}

/** An in-memory JSONL input, re-readable like a file. */
export function jsonlSource(requests: readonly TestRequest[], name = 'test.jsonl'): InputSource {
  const text = requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
  return inputSource(name, () => Readable.from([Buffer.from(text)]), { size: Buffer.byteLength(text) });
}

/** Parses results lines into a map by custom_id, failing on a duplicate. */
export function resultsById(lines: readonly string[]): Map<string, { type: string; [k: string]: unknown }> {
  const byId = new Map<string, { type: string; [k: string]: unknown }>();
  for (const line of lines) {
    const parsed = JSON.parse(line) as { custom_id: string; result: { type: string } };
    if (byId.has(parsed.custom_id)) throw new Error(`duplicate results line for ${parsed.custom_id}`);
    byId.set(parsed.custom_id, parsed.result);
  }
  return byId;
}
