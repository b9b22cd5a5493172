/**
 * Prints the README's configuration table from the settings table, so the two cannot drift:
 * `npx tsx scripts/print-config-table.ts`.
 */
import { DEFAULT_CONFIG } from '../src/config/load-config.js';
import { SETTINGS, type SettingSpec } from '../src/config/settings.js';

const rows = (Object.entries(SETTINGS) as [keyof typeof SETTINGS, SettingSpec][]).map(([name, spec]) => {
  const value = (DEFAULT_CONFIG as Record<string, string | number | boolean | string[] | undefined>)[name];
  const shown =
    value === undefined ? '—' : Array.isArray(value) ? (value.length ? value.join(',') : '—') : String(value);
  return `| ${spec.env ? `\`${spec.env}\`` : '—'} | ${spec.flag ? `\`${spec.flag}\`` : '—'} | \`${shown}\`${spec.unit ? ` ${spec.unit}` : ''} | ${spec.doc} |`;
});
const fixed = [
  '| `ANTHROPIC_API_KEY` | — (never a flag) | — | The API key. Read from the environment only; never stored, logged or shown. |',
  '| `ALERT_WEBHOOK_URL` | — | — | Webhook for key-wide breaker alerts (JSON POST, retried). Treated as a secret. |',
];
process.stdout.write(
  ['| env | flag | default | meaning |', '|---|---|---|---|', ...fixed, ...rows].join('\n') + '\n',
);
