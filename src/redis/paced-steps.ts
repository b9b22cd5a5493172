/**
 * How much of Redis's time a long, paged operation (cancel, delete, the sweep of dead jobs) may
 * take: after each step it pauses for the step's round trip times this ratio. At 1.5 a million-
 * request cancel owns Redis at most 40 % of the time, so the batches still running on it keep
 * most of their speed (issue 13: within 20 % of their throughput alone; at 1 a delete left them
 * 79 %), for about 2.5 times the wall time of an unpaced run (`bench/RESULTS.md`, section 7). The
 * round trip bounds the script's own time from above, so the share is at most 1 / (1 + ratio).
 */
const PACE_RATIO = 1.5;

/** Pauses shorter than this are skipped: a timer costs more than it gives back. */
const MIN_PAUSE_MS = 0.2;

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `step` until it returns false, pausing after each step (except the last) for its round
 * trip times `ratio`. Each step is one Lua script that holds Redis for a few milliseconds; the
 * pauses let every other client's commands in between.
 */
export async function runPaced(step: () => Promise<boolean>, ratio = PACE_RATIO): Promise<void> {
  for (;;) {
    const t0 = performance.now();
    if (!(await step())) return;
    const wait = (performance.now() - t0) * ratio;
    if (wait >= MIN_PAUSE_MS) await pause(wait);
  }
}
