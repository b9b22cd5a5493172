/**
 * The worker process entry point (`npm run worker`, the Docker image's worker service): the same
 * as `claude-batch worker`, with its flags.
 */
process.argv.splice(2, 0, 'worker');
await import('../src/cli/main.js');
