# syntax=docker/dockerfile:1
# One image for every SecureChat process. By default it runs the embedded server (`npm start`);
# docker-compose.yml runs auth, relay, the gateways and the migration from the same image by
# overriding the command. The sources are compiled to JavaScript (`npm run build`, swc) in a
# build stage: no TypeScript compiler is loaded at run time.

ARG NODE_IMAGE=node:20-bookworm-slim

# Production dependencies exactly as the lockfile pins them. bookworm (glibc) rather than alpine:
# the native packages (@node-rs/argon2, @swc/core) ship prebuilt binaries for both, but glibc is
# the one every test runs on. Install scripts are skipped: those binaries come as optional
# dependencies, and the only other script is a telemetry ping.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json .swcrc tsconfig.json ./
COPY scripts ./scripts
COPY db ./db
COPY libs ./libs
COPY apps ./apps
RUN node scripts/build.mjs

# The web client (apps/web → dist/web): bundled with esbuild, a development dependency, so in a
# stage of its own with the full lockfile install; only its static files reach the image.
FROM ${NODE_IMAGE} AS web
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY libs ./libs
COPY apps ./apps
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts ./scripts
RUN node scripts/build-web.mjs --app dist/web

FROM ${NODE_IMAGE} AS runtime
# Containers listen on every interface of their own network namespace: only what docker
# publishes is reachable from outside. The admin API keeps its loopback default here and is
# opened deliberately (docker-compose.yml opens it on the auth service, published to the host's
# loopback only).
ENV NODE_ENV=production \
    SECURECHAT_HOST=0.0.0.0 \
    SECURECHAT_OPS_HOST=0.0.0.0 \
    SECURECHAT_DATA_DIR=/var/lib/securechat
WORKDIR /app
# The data directory (embedded database, identity key) belongs to the unprivileged user; the
# code stays owned by root, so a compromised process cannot rewrite it. The key directories are
# docker-compose.yml's volume mount points: a new named volume takes this ownership from them.
RUN mkdir -p /var/lib/securechat/identity /var/lib/securechat/identity-public \
        /var/lib/securechat/login-seal /var/lib/securechat/login-seal-public \
    && chown -R node:node /var/lib/securechat \
    && chmod -R 0700 /var/lib/securechat
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
# The migrations are read at run time (db:migrate, and every service's start).
COPY db/migrations ./db/migrations
COPY --from=build /app/dist ./dist
COPY --from=web /app/dist/web ./dist/web
USER node
EXPOSE 7777 7780 8080 9090
# Liveness from the ops endpoint; slim images have no curl, so node asks.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["node", "-e", "const r=require('node:http').get({host:'127.0.0.1',port:process.env.SECURECHAT_OPS_PORT||9090,path:'/healthz',timeout:4000},(s)=>process.exit(s.statusCode===200?0:1));r.on('error',()=>process.exit(1));r.on('timeout',()=>process.exit(1))"]
# node itself is PID 1 (not npm), so SIGTERM reaches the graceful shutdown directly.
CMD ["node", "dist/apps/embedded/src/main.js"]
