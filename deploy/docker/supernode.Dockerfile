# syntax=docker/dockerfile:1
# The supernode image. Build from the repository root:
#   docker build -f deploy/docker/supernode.Dockerfile -t damselfly/supernode:0.1.0 .
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages/proto/package.json packages/proto/
COPY packages/supernode/package.json packages/supernode/
COPY packages/dfclient/package.json packages/dfclient/
COPY deploy/package.json deploy/
COPY test/package.json test/
RUN npm ci --no-audit --no-fund
COPY packages/proto packages/proto
COPY packages/supernode packages/supernode
RUN npx tsc -b packages/supernode \
 && rm -rf node_modules \
 && npm ci --omit=dev --workspace @damselfly/supernode --no-audit --no-fund

FROM ${NODE_IMAGE}
WORKDIR /opt/damselfly
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages/proto/package.json packages/proto/
COPY --from=build /src/packages/proto/dist packages/proto/dist
COPY --from=build /src/packages/supernode/package.json packages/supernode/
COPY --from=build /src/packages/supernode/dist packages/supernode/dist
# The dashboard's page (HTML, JS, CSS) is served as is, not compiled: dist/ resolves it here.
COPY --from=build /src/packages/supernode/src/dashboard/static packages/supernode/src/dashboard/static
RUN chmod +x packages/supernode/dist/main.js \
 && ln -s /opt/damselfly/packages/supernode/dist/main.js /usr/local/bin/supernode \
 && mkdir -p /var/lib/damselfly/supernode && chown node:node /var/lib/damselfly/supernode
ENV NODE_ENV=production
# The node image's unprivileged user (uid 1000), as the StatefulSet's securityContext expects.
USER node
EXPOSE 8002 8003
ENTRYPOINT ["supernode"]
