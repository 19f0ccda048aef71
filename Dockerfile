# syntax=docker/dockerfile:1
# Build: compile TypeScript and keep production dependencies only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY apps ./apps
COPY libs ./libs
COPY bench ./bench
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

# Run: one image for every role; the command picks the roles (default: all in one process).
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
RUN mkdir -p /app/data && chown node:node /app/data
USER node
# 2575: MLLP feed "default"; 3000: HTTP API, health and metrics.
EXPOSE 2575 3000
CMD ["node", "dist/apps/engine/src/main.js"]
