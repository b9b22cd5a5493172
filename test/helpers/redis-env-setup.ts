/**
 * vitest setupFiles (both configs): runs in each test worker before the test file is imported, so
 * every `process.env['REDIS_URL']` read at import (test/helpers/runtime.ts, CLI children's env)
 * sees the Redis that redis-global-setup.ts chose.
 */
import { inject } from 'vitest';

process.env['REDIS_URL'] = inject('redisUrl');
