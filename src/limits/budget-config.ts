import { readFile } from 'node:fs/promises';
import { globToRegExp } from '../model-glob.js';

/** One set of per-minute limits. 0 or absent: that dimension is not limited. */
export interface BudgetLimits {
  /** Requests per minute. */
  rpm?: number;
  /** Input tokens per minute (input_tokens + cache_creation_input_tokens). */
  itpm?: number;
  /** Output tokens per minute. */
  otpm?: number;
}

/** A model class: the models whose id matches `match` share one budget. */
export interface BudgetClass extends BudgetLimits {
  /** Glob on the model id: `*` any run of characters, `?` one character; the whole id must match. */
  match: string;
  /** The class's name in keys, logs and `status`. Default: `match`. */
  name?: string;
}

/** A class resolved for use: every limit a number (0 = none). */
export interface ResolvedClass {
  name: string;
  /** The glob, or null for the default class. */
  match: string | null;
  rpm: number;
  itpm: number;
  otpm: number;
}

const DEFAULT_CLASS_NAME = 'default';

const LIMIT_FIELDS = ['rpm', 'itpm', 'otpm'] as const;
const KNOWN_FIELDS = new Set<string>(['match', 'name', ...LIMIT_FIELDS]);
const MAX_NAME_LENGTH = 100;

/** A budgets file (or inline list) that cannot be used; the message names the file, entry, field and value. */
export class BudgetsFileError extends Error {
  override name = 'BudgetsFileError';
}

/** Reads and validates a budgets file: a JSON array of {@link BudgetClass}. */
export async function loadBudgetsFile(path: string): Promise<BudgetClass[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new BudgetsFileError(`${path}: cannot read the budgets file (${code})`);
  }
  return parseBudgets(text, path);
}

/** Parses and validates budgets JSON text; `source` names it in error messages. */
export function parseBudgets(text: string, source: string): BudgetClass[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BudgetsFileError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  return validateBudgetClasses(value, source);
}

/**
 * Checks a list of classes: each an object with a non-empty `match` glob, an optional `name`, and
 * `rpm`/`itpm`/`otpm` non-negative integers. Unknown fields are refused (a typo like `tpm` would
 * otherwise silently mean "no limit"), and so are two classes with one name.
 */
function validateBudgetClasses(value: unknown, source: string): BudgetClass[] {
  if (!Array.isArray(value)) {
    throw new BudgetsFileError(
      `${source}: expected a JSON array of classes like [{"match": "claude-haiku-*", "rpm": 4000}], got ${describe(value)}`,
    );
  }
  const out: BudgetClass[] = [];
  const names = new Map<string, number>();
  value.forEach((entry: unknown, index) => {
    const where = `${source}: entry ${index}`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw new BudgetsFileError(`${where}: expected an object, got ${describe(entry)}`);
    }
    const record = entry as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!KNOWN_FIELDS.has(key)) {
        throw new BudgetsFileError(
          `${where}, field "${key}": unknown field (value ${describe(record[key])}); expected match, name, rpm, itpm, otpm`,
        );
      }
    }
    const match = record['match'];
    if (
      typeof match !== 'string' ||
      match.length === 0 ||
      match.length > MAX_NAME_LENGTH ||
      hasControl(match)
    ) {
      throw new BudgetsFileError(
        `${where}, field "match": expected a non-empty glob on the model id (e.g. "claude-haiku-*"), got ${describe(match)}`,
      );
    }
    const cls: BudgetClass = { match };
    const name = record['name'];
    if (name !== undefined) {
      if (
        typeof name !== 'string' ||
        name.length === 0 ||
        name.length > MAX_NAME_LENGTH ||
        hasControl(name)
      ) {
        throw new BudgetsFileError(
          `${where}, field "name": expected a non-empty string of at most ${MAX_NAME_LENGTH} characters, got ${describe(name)}`,
        );
      }
      cls.name = name;
    }
    for (const field of LIMIT_FIELDS) {
      const limit = record[field];
      if (limit === undefined) continue;
      if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
        throw new BudgetsFileError(
          `${where}, field "${field}": expected a non-negative integer (0 = no limit), got ${describe(limit)}`,
        );
      }
      cls[field] = limit;
    }
    const className = cls.name ?? cls.match;
    if (className === DEFAULT_CLASS_NAME) {
      throw new BudgetsFileError(
        `${where}, field "${cls.name !== undefined ? 'name' : 'match'}": "${DEFAULT_CLASS_NAME}" is the name of the class set by --rpm/--itpm/--otpm; choose another`,
      );
    }
    const earlier = names.get(className);
    if (earlier !== undefined) {
      throw new BudgetsFileError(
        `${where}, field "${cls.name !== undefined ? 'name' : 'match'}": class name ${JSON.stringify(className)} is already used by entry ${earlier}`,
      );
    }
    names.set(className, index);
    out.push(cls);
  });
  return out;
}

export { globToRegExp };

/**
 * Resolves model ids to classes: the first class (in list order) whose glob matches the whole id,
 * else the default class. Results are cached per model id.
 */
export class ModelClassResolver {
  readonly classes: readonly ResolvedClass[];
  readonly defaultClass: ResolvedClass;
  readonly #patterns: ReadonlyArray<{ re: RegExp; cls: ResolvedClass }>;
  readonly #cache = new Map<string, ResolvedClass>();

  constructor(classes: readonly BudgetClass[], defaults: BudgetLimits = {}) {
    validateBudgetClasses(classes, 'budget classes');
    this.classes = classes.map((c) => ({
      name: c.name ?? c.match,
      match: c.match,
      rpm: c.rpm ?? 0,
      itpm: c.itpm ?? 0,
      otpm: c.otpm ?? 0,
    }));
    this.defaultClass = {
      name: DEFAULT_CLASS_NAME,
      match: null,
      rpm: checkDefault('rpm', defaults.rpm),
      itpm: checkDefault('itpm', defaults.itpm),
      otpm: checkDefault('otpm', defaults.otpm),
    };
    this.#patterns = this.classes.map((cls) => ({ re: globToRegExp(cls.match ?? ''), cls }));
  }

  resolve(model: string): ResolvedClass {
    let cls = this.#cache.get(model);
    if (cls === undefined) {
      cls = this.#patterns.find((p) => p.re.test(model))?.cls ?? this.defaultClass;
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(model, cls);
    }
    return cls;
  }

  /** Every class, the default last. */
  all(): ResolvedClass[] {
    return [...this.classes, this.defaultClass];
  }
}

/** The class a model id belongs to, by the same rule the budget uses. */
export function resolveModelClass(
  model: string,
  classes: readonly BudgetClass[],
  defaults: BudgetLimits = {},
): ResolvedClass {
  return new ModelClassResolver(classes, defaults).resolve(model);
}

/** Whether a class limits anything (else it never touches Redis). */
export function isLimited(cls: BudgetLimits): boolean {
  return (cls.rpm ?? 0) > 0 || (cls.itpm ?? 0) > 0 || (cls.otpm ?? 0) > 0;
}

function checkDefault(field: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new BudgetsFileError(
      `default budget, field "${field}": expected a non-negative integer, got ${describe(value)}`,
    );
  }
  return value;
}

function hasControl(text: string): boolean {
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  // String() only where JSON has no text (a symbol, a function); objects returned above.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
