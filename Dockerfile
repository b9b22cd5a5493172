# claude-batch: one image for the worker and the dashboard (docker-compose.yml runs both).
# TypeScript runs through tsx, a runtime dependency: no build step (--ignore-scripts skips the
# `prepare` build, which needs the dev dependencies), so bin/claude-batch.js runs src/ directly.
# No secret is baked in: ANTHROPIC_API_KEY and the dashboard credentials come from the environment
# at run time.
FROM node:20-slim

ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY workers ./workers
COPY scripts ./scripts

# The image's unprivileged user (uid 1000); the app files stay owned by root, read-only to it.
USER node

# The worker stops on SIGTERM: it finishes in-flight requests for CLAUDE_BATCH_GRACE_PERIOD_MS,
# hands the rest back to the queue, and exits 0.
STOPSIGNAL SIGTERM
CMD ["node", "bin/claude-batch.js", "worker"]
