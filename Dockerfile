# realtime-message server image (SPEC §10 "Containers"). Not built by CI (no
# container daemon there): deploy/compose/*.yml use it, and
# packages/server/test/deploy-files.test.ts checks that they run the same
# command and settings as the tests. See docs/deploy.md.
#
#   docker build -t realtime-message .
#   docker run -p 3000:3000 realtime-message                         # memory engine, one process
#   docker run -p 3000:3000 -e REDIS_URL=redis://redis:6379 realtime-message

# 1. Build: every workspace's dependencies, then the server, the SDK bundle and the demo.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/server/package.json packages/server/
COPY packages/sdk/package.json packages/sdk/
COPY packages/testing/package.json packages/testing/
COPY apps/demo/package.json apps/demo/
RUN npm ci --no-audit --no-fund
COPY packages/protocol packages/protocol
COPY packages/server packages/server
COPY packages/sdk packages/sdk
COPY apps/demo apps/demo
RUN npm run build:app

# 2. Production dependencies of the server workspace only (no TypeScript, Vitest, Vite...).
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/server/package.json packages/server/
COPY packages/sdk/package.json packages/sdk/
COPY packages/testing/package.json packages/testing/
COPY apps/demo/package.json apps/demo/
RUN npm ci --omit=dev --no-audit --no-fund --workspace=realtime-message && npm cache clean --force

# 3. Runtime: built output, production dependencies, a non-root user.
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/package.json ./
COPY --from=deps /app/node_modules node_modules
COPY packages/protocol/package.json packages/protocol/
COPY packages/server/package.json packages/server/
COPY --from=build /app/packages/protocol/dist packages/protocol/dist
COPY --from=build /app/packages/server/dist packages/server/dist
# The demo served at / (set DEMO_DIR=off to serve none).
COPY --from=build /app/apps/demo/dist apps/demo/dist
# The image's `node` user (uid 1000); nothing here needs to be writable.
USER node
EXPOSE 3000
# Liveness only (/ready also checks Redis/NATS: a balancer's business, not a reason to restart).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself, so `docker stop` drains
# the node (DRAIN_READY_DELAY_MS, then clients move to other nodes). Give the
# container a stop timeout above DRAIN_READY_DELAY_MS + SHUTDOWN_TIMEOUT_MS.
STOPSIGNAL SIGTERM
CMD ["node", "packages/server/dist/app/cli.js"]
