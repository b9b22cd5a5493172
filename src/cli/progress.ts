import type { BatchStatus } from '../operations/batch-status.js';

export interface ProgressReporter {
  update(status: BatchStatus): void;
  done(): void;
}

/**
 * A live progress line with rate, ETA and errors by type on a terminal; a plain line every
 * `plainEveryMs` otherwise (logs, CI), so a long run leaves a readable trail.
 */
export function createProgressReporter(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  plainEveryMs = 10_000,
): ProgressReporter {
  const started = Date.now();
  let firstDone: number | null = null;
  let lastPlain = 0;
  let drawn = false;
  const render = (s: BatchStatus): string => {
    const c = s.request_counts;
    const done = c.succeeded + c.errored + c.canceled + c.expired;
    firstDone ??= done;
    const elapsed = (Date.now() - started) / 1000;
    const rate = elapsed > 0 ? (done - firstDone) / elapsed : 0;
    const eta = rate > 0 ? Math.ceil((s.total - done) / rate) : null;
    const width = 24;
    const filled = s.total > 0 ? Math.round((done / s.total) * width) : width;
    const errors = Object.entries(s.errored_by_type)
      .map(([type, n]) => `${type}=${n}`)
      .join(' ');
    return (
      `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${s.total} ` +
      `${rate.toFixed(1)}/s ETA ${eta === null ? '?' : `${eta}s`} ` +
      `ok=${c.succeeded} err=${c.errored}${errors ? ` (${errors})` : ''}` +
      (s.cost
        ? ` $${s.cost.spent_usd.toFixed(2)}${s.cost.ceiling_usd === null ? '' : `/$${s.cost.ceiling_usd}`}`
        : '') +
      hostedPart(s) +
      ` ${s.processing_status}` +
      (s.paused.length > 0 ? ` (${s.paused.map((p) => p.reason).join(', ')}: ${s.paused[0]?.fix ?? ''})` : '')
    );
  };
  return {
    update(status) {
      if (stream.isTTY) {
        stream.write(`\r\x1b[2K${render(status)}`);
        drawn = true;
      } else if (Date.now() - lastPlain >= plainEveryMs || status.processing_status === 'ended') {
        lastPlain = Date.now();
        stream.write(`${render(status)}\n`);
      }
    },
    done() {
      if (drawn) stream.write('\n');
    },
  };
}

/**
 * The hosted side of a batch (issue 14), which reports nothing until each hosted batch ends: how
 * many are still open at the API, and the path of an `auto` batch. Empty for a live batch.
 */
function hostedPart(s: BatchStatus): string {
  if (s.hosted === null) return '';
  const open = s.hosted.batches.filter((b) => b.state !== 'done').length;
  const path = s.via === 'auto' ? ` auto→${s.route}` : '';
  return `${path} hosted ${open}/${s.hosted.batches.length} open`;
}
