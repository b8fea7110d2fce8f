# syntax=docker/dockerfile:1
# The dfclient image: `dfclient daemon` by default; `dfclient install|doctor|get` on the PATH.
# Build from the repository root:  docker build -f deploy/docker/dfclient.Dockerfile -t damselfly/dfclient:0.1.0 .
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Manifests first: the dependency layer is rebuilt only when they change.
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages/proto/package.json packages/proto/
COPY packages/supernode/package.json packages/supernode/
COPY packages/dfclient/package.json packages/dfclient/
COPY deploy/package.json deploy/
COPY test/package.json test/
RUN npm ci --no-audit --no-fund
COPY packages/proto packages/proto
COPY packages/dfclient packages/dfclient
RUN npx tsc -b packages/dfclient \
 && rm -rf node_modules \
 && npm ci --omit=dev --workspace @damselfly/dfclient --no-audit --no-fund

FROM ${NODE_IMAGE}
WORKDIR /opt/damselfly
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages/proto/package.json packages/proto/
COPY --from=build /src/packages/proto/dist packages/proto/dist
COPY --from=build /src/packages/dfclient/package.json packages/dfclient/
COPY --from=build /src/packages/dfclient/dist packages/dfclient/dist
RUN chmod +x packages/dfclient/dist/main.js \
 && ln -s /opt/damselfly/packages/dfclient/dist/main.js /usr/local/bin/dfclient
ENV NODE_ENV=production
# Root: the DaemonSet writes the host's /etc/containerd/certs.d (init) and a hostPath cache; the
# container drops every capability (deploy/kubernetes/base/dfclient.yaml).
EXPOSE 65001 65002
ENTRYPOINT ["dfclient"]
CMD ["daemon"]
