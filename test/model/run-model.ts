/**
 * One model-check run, and the property over many: a fresh World, the random command sequence,
 * quiesce, checks; any violation fails the run with the op log, so fast-check shrinks it.
 */
import fc from 'fast-check';
import { commandsArbitrary, type ExtraCommands } from './commands.js';
import type { ModelState } from './model-state.js';
import { checkInvariants, quiesce } from './quiesce-and-check.js';
import { World, type WorldOptions } from './world.js';

export class Counterexample extends Error {}

export interface RunOptions extends WorldOptions {
  /** Called once the world exists (the soak adds its Redis controller here). */
  onWorld?: (world: World) => void;
  /** Print each run's operations (MODEL_CHECK_VERBOSE=1). */
  verbose?: boolean;
  /** Only violations matching this count (MODEL_CHECK_ONLY): to shrink towards one finding. */
  only?: RegExp;
}

/** Runs one command sequence on a fresh world; throws a Counterexample listing what went wrong. */
export async function runOnce(
  commands: Iterable<fc.AsyncCommand<ModelState, World>>,
  options: RunOptions,
): Promise<World> {
  const world = await World.start(options);
  options.onWorld?.(world);
  try {
    await fc.asyncModelRun(() => ({ model: world.model, real: world }), commands);
    await quiesce(world, options.quiesceMs ?? 20_000);
    await checkInvariants(world);
    const violations = world.violations.filter((v) => !options.only || options.only.test(v));
    if (violations.length > 0) {
      throw new Counterexample(
        `${violations.length} violation(s):\n  - ${violations.join('\n  - ')}\n` +
          `operations:\n    ${world.ops.join('\n    ')}`,
      );
    }
    return world;
  } finally {
    if (options.verbose) console.log(`[model-check] run:\n    ${world.ops.join('\n    ')}`);
    await world.dispose();
  }
}

export function modelProperty(
  options: RunOptions,
  maxCommands: number,
  extra: ExtraCommands = [],
  exclude: readonly string[] = [],
  replayPath?: string,
) {
  return fc.asyncProperty(commandsArbitrary(maxCommands, extra, exclude, replayPath), async (commands) => {
    await runOnce(commands, options);
  });
}
