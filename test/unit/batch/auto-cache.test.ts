import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AutoCachePlanner,
  MAJORITY_SHARE,
  applyAutoCache,
  cachedPrefixTokens,
  describeAutoCache,
  type AutoCacheDecision,
  type AutoCacheOutcome,
  type CacheTtl,
  type DecideOptions,
  type ModelCachePlan,
} from '../../../src/batch/auto-cache.js';
import { DEFAULT_MIN_CACHEABLE_TOKENS, minCacheableTokens } from '../../../src/batch/min-cacheable-tokens.js';
import { hasCacheControl, prefixBlocks } from '../../../src/batch/prefix-blocks.js';
import type { MessageParams } from '../../../src/batch/types.js';

const MODEL = 'claude-haiku-4-5';

function plan(requests: readonly MessageParams[], options: DecideOptions = {}): AutoCacheDecision {
  const planner = new AutoCachePlanner();
  for (const r of requests) planner.observe(r);
  return planner.decide(options);
}

/** Every `cache_control` in a value, as [path, value]. */
function cacheControls(value: unknown, path = ''): Array<[string, unknown]> {
  if (Array.isArray(value)) return value.flatMap((v, i) => cacheControls(v, `${path}[${i}]`));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) =>
    k === 'cache_control' ? [[`${path}.${k}`, v] as [string, unknown]] : cacheControls(v, `${path}.${k}`),
  );
}

/** The rewritten request with its breakpoint taken out again (a marked string system stays a block). */
function withoutCacheControl(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutCacheControl);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => k !== 'cache_control')
      .map(([k, v]) => [k, withoutCacheControl(v)]),
  );
}

/** The original with a string system written as the one text block it stands for. */
function systemAsBlock(params: MessageParams): MessageParams {
  return typeof params.system === 'string'
    ? { ...params, system: [{ type: 'text', text: params.system }] }
    : params;
}

const long = (seed: string, chars: number) =>
  `${seed} `.repeat(Math.ceil(chars / (seed.length + 1))).slice(0, chars);

/**
 * Requests drawn from small pools of tools, systems and leading blocks, so prefixes collide often and
 * shares vary; a varying tail; and some with a cache_control of their own somewhere.
 */
const textBlock = (text: string) => ({ type: 'text', text });
const TOOLS = [
  undefined,
  [{ name: 'lookup', description: long('find a record', 400), input_schema: { type: 'object' } }],
];
const SYSTEMS = [
  undefined,
  long('You are a careful assistant.', 1_500),
  [textBlock(long('Rules of the house.', 900)), textBlock(long('Examples follow.', 700))],
  [{ type: 'text', text: '' }],
];
const LEADS: unknown[][] = [
  [],
  [textBlock(long('The shared document.', 2_000))],
  [
    textBlock(long('The shared document.', 2_000)),
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
  ],
  [{ type: 'thinking', thinking: 'hmm', signature: 'sig' }],
];

const shapeArb = fc.record({
  tools: fc.nat(TOOLS.length - 1),
  system: fc.nat(SYSTEMS.length - 1),
  lead: fc.nat(LEADS.length - 1),
  tail: fc.string({ minLength: 1, maxLength: 30 }),
  tailAsString: fc.boolean(),
  history: fc.boolean(),
  own: fc.option(fc.constantFrom('system', 'message', 'tool', 'top'), { freq: 5 }),
  model: fc.constantFrom(MODEL, MODEL, 'claude-sonnet-4-6'),
});
type Shape = typeof shapeArb extends fc.Arbitrary<infer T> ? T : never;

function build(r: Shape): MessageParams {
  const lead = LEADS[r.lead] ?? [];
  const tail = r.tailAsString ? r.tail : [textBlock(r.tail)];
  const messages: unknown[] = r.history
    ? [
        { role: 'user', content: long('Earlier question.', 300) },
        { role: 'assistant', content: 'ok' },
      ]
    : [];
  messages.push(
    lead.length === 0
      ? { role: 'user', content: tail }
      : { role: 'user', content: [...lead, ...(typeof tail === 'string' ? [textBlock(tail)] : tail)] },
  );
  const params: MessageParams = { model: r.model, max_tokens: 100, messages };
  const tools = TOOLS[r.tools];
  if (tools !== undefined) params['tools'] = structuredClone(tools);
  const system = SYSTEMS[r.system];
  if (system !== undefined) params.system = structuredClone(system);
  const cc = { type: 'ephemeral' };
  if (r.own === 'top') params['cache_control'] = cc;
  else if (r.own === 'system') params.system = [{ type: 'text', text: 'own', cache_control: cc }];
  else if (r.own === 'tool')
    params['tools'] = [{ name: 'own', input_schema: { type: 'object' }, cache_control: cc }];
  else if (r.own === 'message')
    messages.push({ role: 'assistant', content: [{ type: 'text', text: 'x', cache_control: cc }] });
  return params;
}

/**
 * A batch: a template most requests follow (its tools, system, leading blocks, history and model,
 * with a tail of their own) in a share drawn per batch, the rest drawn freely.
 */
const batchArb = fc
  .record({
    template: shapeArb,
    follow: fc.integer({ min: 0, max: 10 }),
    minTokens: fc.integer({ min: 0, max: 2_000 }),
    ttl: fc.constantFrom<CacheTtl>('5m', '1h'),
  })
  .chain(({ template, follow, minTokens, ttl }) => {
    const follower = shapeArb.map((r) => ({ ...r, ...pick(template) }));
    const arbs = [
      ...(follow > 0 ? [{ arbitrary: follower, weight: follow }] : []),
      ...(follow < 10 ? [{ arbitrary: shapeArb, weight: 10 - follow }] : []),
    ];
    return fc
      .array(fc.oneof(...arbs), { minLength: 1, maxLength: 40, size: 'medium' })
      .map((shapes) => ({ requests: shapes.map(build), minTokens, ttl }));
  });

function pick(t: Shape) {
  return { tools: t.tools, system: t.system, lead: t.lead, history: t.history, model: t.model };
}

const shuffledArb = batchArb.chain((b) =>
  fc
    .shuffledSubarray(b.requests, { minLength: b.requests.length, maxLength: b.requests.length })
    .map((shuffled) => ({ ...b, shuffled })),
);

describe('applyAutoCache (property-based)', () => {
  it('leaves a request as written, or adds one cache_control and nothing else but a string system as a block', () => {
    fc.assert(
      fc.property(batchArb, ({ requests, minTokens, ttl }) => {
        const originals = structuredClone(requests);
        const decision = plan(requests, { ttl, minTokens: [{ match: '*', minTokens }] });
        const counted = new Map<string, number>();
        requests.forEach((params, i) => {
          const out = applyAutoCache(decision, params);
          const model = decision.models[params.model];
          expect(params).toEqual(originals[i]); // never mutated
          if (out === params) return;
          // Rewritten: only when the model has a breakpoint and the request had no cache_control at all.
          expect(model?.outcome).toBe('breakpoint');
          expect(hasCacheControl(params)).toBe(false);
          const marks = cacheControls(out);
          expect(marks).toHaveLength(1);
          expect(marks[0]?.[1]).toEqual(
            ttl === '1h' ? { type: 'ephemeral', ttl: '1h' } : { type: 'ephemeral' },
          );
          // A string system becomes a block only when the breakpoint goes on it.
          const stringSystemMarked = typeof params.system === 'string' && typeof out.system !== 'string';
          expect(stringSystemMarked).toBe(
            typeof params.system === 'string' && marks[0]?.[0] === '.system[0].cache_control',
          );
          expect(withoutCacheControl(out)).toEqual(stringSystemMarked ? systemAsBlock(params) : params);
          // The marked block ends the planned prefix, and that prefix is over the minimum.
          const blocks = prefixBlocks(params, model?.prefixBlocks ?? 0);
          expect(blocks?.at(-1)?.key).toBe(model?.prefixKey);
          expect(model?.prefixTokens).toBeGreaterThanOrEqual(minTokens);
          counted.set(params.model, (counted.get(params.model) ?? 0) + 1);
        });
        for (const model of Object.values(decision.models)) {
          // Pools keep distinct prefixes under the tracked 64, so counts are exact.
          expect(counted.get(model.model) ?? 0).toBe(model.outcome === 'breakpoint' ? model.sharing : 0);
          if (model.outcome === 'breakpoint') {
            expect(model.sharing).toBeGreaterThanOrEqual(
              Math.max(2, Math.ceil((model.requests - model.ineligible) * MAJORITY_SHARE)),
            );
          }
        }
      }),
      { seed: 1501, numRuns: 400 },
    );
  });

  it('requests with their own cache_control, other prefixes, or prefixes under the minimum are returned as they are', () => {
    fc.assert(
      fc.property(batchArb, ({ requests, minTokens }) => {
        const decision = plan(requests, { minTokens: [{ match: '*', minTokens }] });
        for (const params of requests) {
          const model = decision.models[params.model];
          const blocks = prefixBlocks(params, model?.prefixBlocks ?? 0);
          const shares = model?.prefixKey != null && blocks?.at(-1)?.key === model.prefixKey;
          const untouched =
            hasCacheControl(params) ||
            !shares ||
            model?.outcome !== 'breakpoint' ||
            (model?.prefixTokens ?? 0) < minTokens;
          expect(applyAutoCache(decision, params) === params).toBe(untouched);
        }
      }),
      { seed: 1502, numRuns: 400 },
    );
  });

  it('is idempotent and never exceeds 4 breakpoints', () => {
    fc.assert(
      fc.property(batchArb, ({ requests, minTokens, ttl }) => {
        const decision = plan(requests, { ttl, minTokens: [{ match: '*', minTokens }] });
        for (const params of requests) {
          const once = applyAutoCache(decision, params);
          expect(applyAutoCache(decision, once)).toBe(once);
          expect(cacheControls(once).length).toBeLessThanOrEqual(Math.max(4, cacheControls(params).length));
        }
        // A request rewritten once is left as written by any later plan, too.
        const rewritten = requests.map((p) => applyAutoCache(decision, p));
        const again = plan(rewritten, { ttl, minTokens: [{ match: '*', minTokens }] });
        rewritten.forEach((params, i) => {
          if (params !== requests[i]) expect(applyAutoCache(again, params)).toBe(params);
        });
      }),
      { seed: 1503, numRuns: 300 },
    );
  });

  it('finds the same prefix whatever the order of the requests (a strict majority is unique)', () => {
    fc.assert(
      fc.property(shuffledArb, ({ requests, shuffled, minTokens }) => {
        const options = { minTokens: [{ match: '*', minTokens }] };
        const one = plan(requests, options);
        const two = plan(shuffled, options);
        for (const [model, p] of Object.entries(one.models)) {
          const q = two.models[model];
          const strict = (x: ModelCachePlan) => x.sharing * 2 > x.requests - x.ineligible;
          if (strict(p) && q !== undefined && strict(q)) expect(q).toEqual(p);
        }
      }),
      { seed: 1504, numRuns: 200 },
    );
  });
});

describe('the plan', () => {
  const system = long('You label support tickets by urgency.', 6_000); // ~2,000 estimated tokens
  const ask = (question: string, extra: Partial<MessageParams> = {}): MessageParams => ({
    model: 'claude-sonnet-4-5',
    max_tokens: 50,
    system,
    messages: [{ role: 'user', content: question }],
    ...extra,
  });

  it('marks the prefix most requests share, even when the first request is an outlier', () => {
    const outlier = ask('first', { system: 'Something else entirely.' });
    const requests = [outlier, ask('a'), ask('b'), ask('c')];
    const decision = plan(requests);
    expect(decision.models['claude-sonnet-4-5']).toMatchObject({
      requests: 4,
      sharing: 3,
      prefixBlocks: 1,
      minTokens: 1_024,
      outcome: 'breakpoint',
    });
    expect(applyAutoCache(decision, outlier)).toBe(outlier);
    expect(applyAutoCache(decision, requests[1] as MessageParams)).toEqual({
      ...requests[1],
      system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral' } }],
    });
  });

  it('puts the breakpoint on the last shared block: a tool, a system block or a message block', () => {
    const doc = { type: 'text', text: long('Shared contract text.', 5_000) };
    const tools = [
      { name: 'a', input_schema: { type: 'object' } },
      { name: 'b', description: long('b does things', 4_000), input_schema: { type: 'object' } },
    ];
    const withDoc = (q: string): MessageParams => ({
      model: 'claude-sonnet-4-5',
      max_tokens: 50,
      tools,
      messages: [{ role: 'user', content: [doc, { type: 'text', text: q }] }],
    });
    const decision = plan([withDoc('one'), withDoc('two')]);
    const out = applyAutoCache(decision, withDoc('one'));
    expect(cacheControls(out).map(([path]) => path)).toEqual(['.messages[0].content[0].cache_control']);

    const toolsOnly = (q: string): MessageParams => ({
      ...withDoc(q),
      messages: [{ role: 'user', content: q }],
    });
    const second = plan([toolsOnly('one'), toolsOnly('two'), toolsOnly('three')]);
    expect(cacheControls(applyAutoCache(second, toolsOnly('two'))).map(([p]) => p)).toEqual([
      '.tools[1].cache_control',
    ]);
  });

  it('steps back over blocks that cannot carry a breakpoint', () => {
    // The shared string message cannot take one without rewriting the message: the system block takes it.
    const history = (q: string): MessageParams =>
      ask(q, {
        messages: [
          { role: 'user', content: long('A long shared question.', 3_000) },
          { role: 'assistant', content: [{ type: 'thinking', thinking: 't', signature: 's' }] },
          { role: 'user', content: q },
        ],
      });
    const decision = plan([history('x'), history('y')]);
    expect(decision.models['claude-sonnet-4-5']).toMatchObject({ prefixBlocks: 1, outcome: 'breakpoint' });
    // With no system, nothing shared can carry one (blocks after the last markable one are not
    // even compared: prefix-blocks.ts).
    const bare = (q: string): MessageParams => {
      const { system: _, ...rest } = history(q);
      return rest;
    };
    const none = plan([bare('x'), bare('y')]);
    expect(none.models['claude-sonnet-4-5']?.outcome).toBe('no_shared_prefix');
    expect(applyAutoCache(none, bare('x'))).toEqual(bare('x'));
  });

  it('leaves a prefix under the model minimum as written, per the default table', () => {
    const haiku = (q: string): MessageParams => ({ ...ask(q), model: 'claude-haiku-4-5' });
    const decision = plan([haiku('a'), haiku('b'), ask('a'), ask('b')]);
    // ~2,000 tokens: over Sonnet 4.5's 1,024, under Haiku 4.5's 4,096.
    expect(decision.models['claude-haiku-4-5']).toMatchObject({ outcome: 'under_minimum', minTokens: 4_096 });
    expect(decision.models['claude-sonnet-4-5']).toMatchObject({ outcome: 'breakpoint' });
    const a = haiku('a');
    expect(applyAutoCache(decision, a)).toBe(a);
    expect(cachedPrefixTokens(decision)).toEqual({
      'claude-sonnet-4-5': decision.models['claude-sonnet-4-5']?.prefixTokens,
    });
    const lines = describeAutoCache({ ...decision, ttl: '1h' });
    expect(lines).toEqual([
      expect.stringMatching(
        /^claude-haiku-4-5: 2 of 2 requests share a prefix of 1 block, ~\d+ tokens \(minimum 4096\): prefix under the minimum/,
      ),
      expect.stringMatching(
        /^claude-sonnet-4-5: 2 of 2 requests share a prefix of 1 block, ~\d+ tokens \(minimum 1024\): breakpoint added, ttl 1h$/,
      ),
    ]);
  });

  it('needs half the eligible requests and at least two', () => {
    const other = (i: number) => ask('q', { system: `different system ${i}` });
    const outcome = (requests: MessageParams[]): AutoCacheOutcome | undefined =>
      plan(requests).models['claude-sonnet-4-5']?.outcome;
    expect(outcome([ask('a')])).toBe('no_shared_prefix');
    expect(outcome([ask('a'), ask('b'), other(1), other(2), other(3)])).toBe('no_shared_prefix');
    expect(outcome([ask('a'), ask('b'), other(1), other(2)])).toBe('breakpoint');
    // Requests with their own cache_control are not counted either way.
    const own = ask('q', { cache_control: { type: 'ephemeral' } });
    expect(plan([ask('a'), ask('b'), other(1), own, own]).models['claude-sonnet-4-5']).toMatchObject({
      ineligible: 2,
      outcome: 'breakpoint',
    });
  });

  it('counts in bounded memory: 20,000 requests with distinct tails and a quarter of outliers', () => {
    const planner = new AutoCachePlanner();
    const requests = (i: number) =>
      i % 4 === 3 ? ask(`q${i}`, { system: `outlier ${i}` }) : ask(`question ${i}`);
    for (let i = 0; i < 20_000; i++) planner.observe(requests(i));
    const decision = planner.decide();
    const p = decision.models['claude-sonnet-4-5'];
    expect(p?.outcome).toBe('breakpoint');
    // The shared system is counted exactly; 5,000 outliers never push it out.
    expect(p?.sharing).toBe(15_000);
    expect(applyAutoCache(decision, requests(5))).not.toBe(requests(5));
    const outlier = requests(7);
    expect(applyAutoCache(decision, outlier)).toBe(outlier);
  });
});

describe('minimum cacheable lengths', () => {
  it('follows the table, with overrides first', () => {
    expect(minCacheableTokens('claude-haiku-4-5')).toBe(4_096);
    expect(minCacheableTokens('claude-haiku-4-5-20251001')).toBe(4_096);
    expect(minCacheableTokens('claude-opus-4-6')).toBe(4_096);
    expect(minCacheableTokens('claude-opus-4-5')).toBe(4_096);
    expect(minCacheableTokens('claude-sonnet-4-6')).toBe(2_048);
    expect(minCacheableTokens('claude-3-haiku-20240307')).toBe(2_048);
    expect(minCacheableTokens('claude-3-5-haiku-20241022')).toBe(2_048);
    expect(minCacheableTokens('claude-sonnet-4-5')).toBe(1_024);
    expect(minCacheableTokens('claude-opus-4-1')).toBe(1_024);
    expect(minCacheableTokens('claude-haiku-4-5', [{ match: 'claude-haiku-*', minTokens: 10 }])).toBe(10);
    expect(DEFAULT_MIN_CACHEABLE_TOKENS.at(-1)).toEqual({ match: '*', minTokens: 1_024 });
  });
});
