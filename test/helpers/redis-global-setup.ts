/**
 * vitest globalSetup (both configs): the tests need a Redis at REDIS_URL (default
 * redis://127.0.0.1:6379). When nothing answers there, a private `redis-server` is started on a
 * free port, as the demo does, so that `npm test` needs only the binary installed. Its URL reaches
 * the test workers through `provide` (read by redis-env-setup.ts before any test file imports) and
 * through this process's environment (inherited by workers spawned afterwards). Stopped by pid at
 * teardown.
 */
import type { TestProject } from 'vitest/node';
import { redisAnswers, startPrivateRedis } from '../../src/devtools/private-redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Redis every test uses: REDIS_URL when it answered, else the private server's. */
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  if (await redisAnswers(configured)) {
    project.provide('redisUrl', configured);
    return async () => {};
  }
  let server;
  try {
    server = await startPrivateRedis();
  } catch (err) {
    throw new Error(
      `No Redis answers at ${configured}, and a private redis-server could not be started: ${(err as Error).message}. ` +
        'Install redis-server (e.g. `apt-get install redis-server`) or set REDIS_URL to a Redis you have.',
      { cause: err },
    );
  }
  process.stderr.write(
    `No Redis answered at ${configured}: the tests use a private redis-server on port ${server.port} (pid ${server.pid}).\n`,
  );
  process.env['REDIS_URL'] = server.url;
  project.provide('redisUrl', server.url);
  return async () => {
    await server.stop({ removeDir: true });
  };
}
