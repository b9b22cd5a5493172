import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { addSentence, label, nonNegativeInteger, parseFile, strictRecord } from '../config/file-schema.js';
import { globToRegExp } from '../model-glob.js';

const LIMIT = 'a non-negative integer (0 = no limit)';
const MAX_NAME_LENGTH = 100;
export const DEFAULT_CLASS_NAME = 'default';

const budgetLimitsShape = {
  /** Requests per minute. */
  rpm: nonNegativeInteger(LIMIT).optional(),
  /** Input tokens per minute (input_tokens + cache_creation_input_tokens). */
  itpm: nonNegativeInteger(LIMIT).optional(),
  /** Output tokens per minute. */
  otpm: nonNegativeInteger(LIMIT).optional(),
};

/**
 * One set of per-minute limits. 0 or absent: that dimension is not limited. Not strict: the default
 * class's limits come from the config, not from a file.
 */
const budgetLimitsSchema = z.object(budgetLimitsShape);
export type BudgetLimits = z.output<typeof budgetLimitsSchema>;

/** A model class: the models whose id matches `match` share one budget. */
const budgetClassSchema = strictRecord({
  /** Glob on the model id: `*` any run of characters, `?` one character; the whole id must match. */
  match: label('a non-empty glob on the model id (e.g. "claude-haiku-*")', MAX_NAME_LENGTH),
  /** The class's name in keys, logs and `status`. Default: `match`. */
  name: label(`a non-empty string of at most ${MAX_NAME_LENGTH} characters`, MAX_NAME_LENGTH).optional(),
  ...budgetLimitsShape,
});
export type BudgetClass = z.output<typeof budgetClassSchema>;

/**
 * A budgets file: a JSON array of classes. Unknown fields are refused (a typo like `tpm` would
 * otherwise silently mean "no limit"), and so are two classes with one name or one named `default`.
 */
const budgetClassesSchema = z
  .array(budgetClassSchema, {
    error: 'a JSON array of classes like [{"match": "claude-haiku-*", "rpm": 4000}]',
  })
  .superRefine((classes, ctx) => {
    const names = new Map<string, number>();
    classes.forEach((cls, index) => {
      const className = cls.name ?? cls.match;
      const field = cls.name !== undefined ? 'name' : 'match';
      if (className === DEFAULT_CLASS_NAME) {
        addSentence(
          ctx,
          [index, field],
          `"${DEFAULT_CLASS_NAME}" is the name of the class set by --rpm/--itpm/--otpm; choose another`,
        );
        return;
      }
      const earlier = names.get(className);
      if (earlier !== undefined) {
        addSentence(
          ctx,
          [index, field],
          `class name ${JSON.stringify(className)} is already used by entry ${earlier}`,
        );
        return;
      }
      names.set(className, index);
    });
  });

/** A class resolved for use: every limit a number (0 = none). */
export interface ResolvedClass {
  name: string;
  /** The glob, or null for the default class. */
  match: string | null;
  rpm: number;
  itpm: number;
  otpm: number;
}

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

/** Checks a list of classes (see budgetClassesSchema); `source` names it in error messages. */
function validateBudgetClasses(value: unknown, source: string): BudgetClass[] {
  return parseFile(budgetClassesSchema, value, source, (message) => new BudgetsFileError(message));
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
    const limits = parseFile(
      budgetLimitsSchema,
      defaults,
      'default budget',
      (message) => new BudgetsFileError(message),
    );
    this.defaultClass = {
      name: DEFAULT_CLASS_NAME,
      match: null,
      rpm: limits.rpm ?? 0,
      itpm: limits.itpm ?? 0,
      otpm: limits.otpm ?? 0,
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
