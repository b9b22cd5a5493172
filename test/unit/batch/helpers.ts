import { inputSource, type InputSource } from '../../../src/batch/input-source.js';

/** Bytes of a JSONL text, or raw bytes as given. */
export function bytesOf(content: string | Uint8Array | readonly (string | Uint8Array)[]): Buffer {
  if (typeof content === 'string') return Buffer.from(content, 'utf8');
  if (content instanceof Uint8Array) return Buffer.from(content);
  return Buffer.concat(content.map((part) => bytesOf(part)));
}

/** Yields `data` in chunks of `chunkSize` bytes, so line breaks fall across chunk boundaries. */
export async function* chunked(data: Uint8Array, chunkSize: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += chunkSize) {
    yield Buffer.from(data.subarray(at, at + chunkSize));
  }
}

/** An in-memory, re-readable input. */
export function memoryInput(
  content: string | Uint8Array | readonly (string | Uint8Array)[],
  options: { name?: string; chunkSize?: number } = {},
): InputSource {
  const data = bytesOf(content);
  return inputSource(options.name ?? 'prompts.jsonl', () => chunked(data, options.chunkSize ?? 7), {
    size: data.length,
  });
}

/** A full-format request line. */
export function fullLine(customId: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    custom_id: customId,
    params: {
      model: 'claude-test',
      max_tokens: 16,
      messages: [{ role: 'user', content: `hello from ${customId}` }],
      ...extra,
    },
  });
}

/** A shorthand line. */
export function promptLine(customId: string, prompt = `hello from ${customId}`): string {
  return JSON.stringify({ custom_id: customId, prompt });
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}
