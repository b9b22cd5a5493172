/**
 * Tables for the terminal and for bench/RESULTS.md. Each section's block sits between markers, so
 * running one section (`npm run bench -- submit`) replaces that block and keeps the others.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { load1 } from './harness.js';

export interface Table {
  header: string[];
  rows: string[][];
}

export interface SectionResult {
  /** Stable key: the section's name on the command line. */
  key: string;
  title: string;
  /** What was measured and how, in a sentence or two. */
  intro: string;
  tables: Table[];
  /** Goals and whether they were met, findings, caveats. */
  notes: string[];
  /** Raw output kept verbatim (e.g. another script's table). */
  verbatim?: string;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memory: string;
  node: string;
  redis: string;
  redisNote: string;
}

export function machineInfo(redisVersion: string, redisNote: string): MachineInfo {
  const cpuList = cpus();
  return {
    cpu: cpuList[0]?.model ?? 'unknown',
    cores: cpuList.length,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    redis: redisVersion,
    redisNote,
  };
}

export function renderTable(table: Table): string {
  const widths = table.header.map((h, i) => Math.max(h.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [
    line(table.header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...table.rows.map((r) => line(r)),
  ].join('\n');
}

export function renderSection(result: SectionResult, mode: string, startedAt: Date, seconds: number): string {
  const parts = [
    `## ${result.title}`,
    '',
    `_${mode} run, ${startedAt.toISOString()}, ${seconds.toFixed(0)} s; load (1 min) at the end ${load1()}._`,
    '',
    result.intro,
    '',
  ];
  for (const table of result.tables) parts.push(renderTable(table), '');
  if (result.verbatim) parts.push('```', result.verbatim.trimEnd(), '```', '');
  for (const note of result.notes) parts.push(`- ${note}`);
  return `${parts.join('\n').trimEnd()}\n`;
}

function renderMachine(machine: MachineInfo, command: string): string {
  return [
    '# claude-batch benchmarks',
    '',
    `Written by \`${command}\` (scripts/bench/index.ts). Timing claims live here, not in tests.`,
    'Every figure carries the 1-minute load average at the time it was taken: this 2-core machine is',
    'shared with other benchmarks and tests, so compare ratios measured side by side in the same run.',
    '',
    '| machine | |',
    '|---|---|',
    `| CPU | ${machine.cpu} |`,
    `| cores | ${machine.cores} |`,
    `| memory | ${machine.memory} |`,
    `| node | ${machine.node} |`,
    `| redis | ${machine.redis} (${machine.redisNote}) |`,
    '',
  ].join('\n');
}

const begin = (key: string) => `<!-- section:${key} -->`;
const end = (key: string) => `<!-- /section:${key} -->`;

/** Writes the file: the machine header, then every section, replacing the ones that ran now. */
export async function writeResults(
  file: string,
  machine: MachineInfo,
  command: string,
  order: readonly string[],
  rendered: ReadonlyMap<string, string>,
): Promise<void> {
  const kept = new Map<string, string>();
  if (existsSync(file)) {
    const old = await readFile(file, 'utf8');
    for (const key of order) {
      const from = old.indexOf(begin(key));
      const to = old.indexOf(end(key));
      if (from >= 0 && to > from) kept.set(key, old.slice(from + begin(key).length, to).trim());
    }
  }
  const blocks: string[] = [renderMachine(machine, command)];
  for (const key of order) {
    const body = rendered.get(key) ?? kept.get(key);
    if (body === undefined) continue;
    blocks.push(`${begin(key)}\n${body.trim()}\n${end(key)}\n`);
  }
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, blocks.join('\n'));
}
