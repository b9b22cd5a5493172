/**
 * The model catalogue behind `GET /v1/models` and model checks. Bodies are serialised once at start,
 * since the list never changes while the emulator runs.
 */

export interface ModelInfo {
  type: 'model';
  id: string;
  display_name: string;
  created_at: string;
}

/** `claude-sonnet-4-5` → `Claude Sonnet 4.5`; ids that do not fit the pattern are shown as they are. */
function displayName(id: string): string {
  const m = /^claude-([a-z]+)-(\d+)(?:-(\d{1,2}))?(?:-\d{8})?$/.exec(id);
  if (m === null) return id;
  const family = `${m[1]?.charAt(0).toUpperCase() ?? ''}${m[1]?.slice(1) ?? ''}`;
  return `Claude ${family} ${m[2] ?? ''}${m[3] === undefined ? '' : `.${m[3]}`}`;
}

export class ModelCatalog {
  readonly #ids: ReadonlySet<string>;
  readonly #models: readonly ModelInfo[];
  readonly #bodies = new Map<string, string>();
  readonly #fullList: string;

  constructor(ids: readonly string[]) {
    this.#ids = new Set(ids);
    // Newest first, as the API lists them; creation dates are made up but stable.
    const base = Date.UTC(2025, 10, 1);
    this.#models = ids.map((id, i) => ({
      type: 'model',
      id,
      display_name: displayName(id),
      created_at: new Date(base - i * 86_400_000).toISOString().slice(0, 19) + 'Z',
    }));
    for (const model of this.#models) this.#bodies.set(model.id, JSON.stringify(model));
    this.#fullList = this.#page(this.#models, false);
  }

  has(id: string): boolean {
    return this.#ids.has(id);
  }

  /** The JSON of one model, or undefined. */
  body(id: string): string | undefined {
    return this.#bodies.get(id);
  }

  /** The JSON of a list page; `limit` defaults to 20 (max 1000) as in the API. */
  list(query: URLSearchParams | null): string {
    if (query === null) return this.#models.length <= 20 ? this.#fullList : this.#slice(0, 20);
    const limitText = query.get('limit');
    const parsed = limitText === null ? 20 : Number(limitText);
    const limit = Number.isInteger(parsed) ? Math.min(1000, Math.max(1, parsed)) : 20;
    const after = query.get('after_id');
    const before = query.get('before_id');
    if (after !== null) {
      const i = this.#models.findIndex((m) => m.id === after);
      return this.#slice(i + 1, i + 1 + limit);
    }
    if (before !== null) {
      const i = this.#models.findIndex((m) => m.id === before);
      const end = i < 0 ? 0 : i;
      return this.#slice(Math.max(0, end - limit), end);
    }
    return this.#slice(0, limit);
  }

  #slice(from: number, to: number): string {
    return this.#page(this.#models.slice(from, to), to < this.#models.length);
  }

  #page(data: readonly ModelInfo[], hasMore: boolean): string {
    return JSON.stringify({
      data,
      has_more: hasMore,
      first_id: data[0]?.id ?? null,
      last_id: data[data.length - 1]?.id ?? null,
    });
  }
}
