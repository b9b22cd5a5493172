/**
 * What the model check remembers about the system, and nothing more: per batch id, its
 * incarnations (one per submit after a delete), each with its requests, whether and when it was
 * canceled or deleted (when the command started and returned). The runner's own logic is never
 * re-implemented here: the checks read the real Redis and the emulator's request log.
 */
import type { MessageParams } from './system.js';

export interface ModelRequest {
  custom_id: string;
  params: MessageParams;
}

/** When a command started and returned (ms, this process's clock, which is also the emulator's). */
export interface Span {
  start: number;
  end: number;
  /** custom_ids whose jobs were active (in flight) around the command: they may still be sent. */
  inFlight?: Set<string>;
}

export interface Incarnation {
  /** Content version of the batch id: a resubmit of the same file keeps it. */
  variant: number;
  requests: ModelRequest[];
  canary: boolean;
  /** The path it was submitted for (issue 14). */
  via: 'live' | 'batches';
  submitted: Span;
  /** The first cancel that found this incarnation live. */
  canceled: Span | null;
  deleted: Span | null;
}

export interface BatchModel {
  id: string;
  incarnations: Incarnation[];
  /** Content versions used so far under this id. */
  variants: number;
}

export const VALID_MODELS = ['claude-haiku-4-5', 'claude-sonnet-4-6', 'claude-opus-4-6'] as const;
/** A mistyped model id (the emulator answers 404 not_found_error). */
export const BOGUS_MODEL = 'claude-haiku-4-9';
/** The model `dlq retry --model` re-points to. */
export const FIX_MODEL = VALID_MODELS[0];
export const BATCH_IDS = ['mb0', 'mb1', 'mb2'] as const;

export class ModelState {
  readonly batches = new Map<string, BatchModel>();

  constructor(
    /** Makes prompts unique to one run. */
    readonly tag: string,
  ) {}

  batch(id: string): BatchModel {
    let b = this.batches.get(id);
    if (!b) {
      b = { id, incarnations: [], variants: 0 };
      this.batches.set(id, b);
    }
    return b;
  }

  /** The incarnation submitted and not deleted, if any. */
  live(id: string): Incarnation | null {
    const last = this.batches.get(id)?.incarnations.at(-1);
    return last && !last.deleted ? last : null;
  }

  /** The last incarnation (live or deleted), whose file a resubmit sends again. */
  last(id: string): Incarnation | null {
    return this.batches.get(id)?.incarnations.at(-1) ?? null;
  }

  liveIds(): string[] {
    return [...this.batches.keys()].filter((id) => this.live(id) !== null);
  }

  /** The requests of a new content version of `id`. */
  newContent(
    id: string,
    models: readonly string[],
    size: number,
  ): { variant: number; requests: ModelRequest[] } {
    const b = this.batch(id);
    b.variants += 1;
    const variant = b.variants;
    const requests = Array.from({ length: size }, (_, i) => ({
      custom_id: `r${i}`,
      params: {
        model: models[i % models.length]!,
        max_tokens: 16,
        messages: [{ role: 'user' as const, content: `model check ${this.tag} ${id} v${variant} r${i}` }],
      },
    }));
    return { variant, requests };
  }
}
