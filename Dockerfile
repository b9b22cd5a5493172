# claude-batch: one image for the worker and the dashboard (docker-compose.yml runs both).
# The TypeScript is compiled in a build stage (tsc and tsx are dev dependencies); the image itself
# holds the production dependencies, bin/ and dist/ only, and bin/claude-batch.js runs dist/ (there
# is no src/ in the image), as in an installed package.
# No secret is baked in: ANTHROPIC_API_KEY and the dashboard credentials come from the environment
# at run time.
FROM node:20-slim AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY bin ./bin
COPY --from=build /build/dist ./dist

# The image's unprivileged user (uid 1000); the app files stay owned by root, read-only to it.
USER node

# The worker stops on SIGTERM: it finishes in-flight requests for CLAUDE_BATCH_GRACE_PERIOD_MS,
# hands the rest back to the queue, and exits 0.
STOPSIGNAL SIGTERM
CMD ["node", "bin/claude-batch.js", "worker"]
