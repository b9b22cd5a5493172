/**
 * Summarises a V8 CPU profile (node --cpu-prof): where the samples went, by package or source file
 * and by function (self time), and the inclusive time of the functions matching --focus.
 *
 *   npx tsx scripts/bench/profile-summary.ts FILE.cpuprofile [--top 30] [--focus REGEX]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** `node_modules/<pkg>`, `src/<dir>`, `node:<module>`, or the url as is. */
function area(url: string): string {
  if (url === '') return '(native / V8)';
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (mod) return mod[1] ?? url;
  const src = /\/(src\/[^/]+|scripts\/[^/]+|workers)\//.exec(url);
  if (src) return src[1] ?? url;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

function short(url: string): string {
  return url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '').replace(/^.*\/(src|scripts)\//, '$1/');
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' }, focus: { type: 'string' } },
});
const file = positionals[0];
if (!file) {
  console.error('usage: profile-summary.ts FILE.cpuprofile [--top N] [--focus REGEX]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const totalUs = profile.endTime - profile.startTime;
const idleUs = [...selfUs.entries()]
  .filter(([id]) => ['(idle)', '(program)'].includes(byId.get(id)?.callFrame.functionName ?? ''))
  .reduce((s, [, us]) => s + us, 0);
const busyUs = totalUs - idleUs;

const pct = (us: number) => `${((us / busyUs) * 100).toFixed(1)} %`;
const ms = (us: number) => `${(us / 1000).toFixed(0)} ms`;

const areas = new Map<string, number>();
const functions = new Map<string, number>();
for (const [id, us] of selfUs) {
  const node = byId.get(id);
  if (!node) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName === '(idle)' || functionName === '(program)') continue;
  const a = functionName === '(garbage collector)' ? '(garbage collector)' : area(url);
  areas.set(a, (areas.get(a) ?? 0) + us);
  const key = `${functionName || '(anonymous)'} ${short(url)}:${lineNumber + 1}`;
  functions.set(key, (functions.get(key) ?? 0) + us);
}
const top = Number(values.top);
console.log(`${file}: ${ms(totalUs)} profiled, ${ms(busyUs)} busy (idle and (program) left out)\n`);
console.log('Self time by package / source folder:');
for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, top)) {
  console.log(`  ${pct(us).padStart(7)}  ${ms(us).padStart(9)}  ${a}`);
}
console.log('\nSelf time by function:');
for (const [f, us] of [...functions].sort((x, y) => y[1] - x[1]).slice(0, top)) {
  console.log(`  ${pct(us).padStart(7)}  ${ms(us).padStart(9)}  ${f}`);
}

if (values.focus) {
  // Inclusive time: a sample counts once for each distinct matching frame on its stack.
  const focus = new RegExp(values.focus);
  const inclusive = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame;
      if (!frame) break;
      const key = `${frame.functionName || '(anonymous)'} ${short(frame.url)}:${frame.lineNumber + 1}`;
      if (focus.test(key)) seen.add(key);
    }
    for (const key of seen) inclusive.set(key, (inclusive.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  console.log(`\nInclusive time of frames matching /${values.focus}/:`);
  for (const [f, us] of [...inclusive].sort((x, y) => y[1] - x[1]).slice(0, top)) {
    console.log(`  ${pct(us).padStart(7)}  ${ms(us).padStart(9)}  ${f}`);
  }
}
