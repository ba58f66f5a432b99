# syntax=docker/dockerfile:1
# The agentrun-operator image: `docker build -t agentrun-operator:dev .`
#
# Two stages: the build stage compiles src/ with the dev dependencies and bundles the operator into
# one tree-shaken file, dist/main.js (scripts/build.ts); the runtime stage has Node and that bundle
# only (no node_modules: nothing else to patch or scan), and runs as a non-root user.
# test/unit/dockerfile.test.ts performs these same steps without a Docker engine.
ARG NODE_IMAGE=node:24-alpine

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: no install script runs at build time (none of our dependencies needs one;
# the `node` dev dependency's script would only download a second Node).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.ts ./scripts/build.ts
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# package.json says "type": "module" (the bundle is ESM); the bundle holds every dependency.
COPY package.json ./
COPY --from=build /src/dist/main.js /src/dist/main.js.map ./dist/
# The UID the Helm chart runs the pod as (runAsNonRoot needs a numeric user to verify).
USER 65532:65532
EXPOSE 8080
CMD ["node", "dist/main.js"]
