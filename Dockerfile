# The service image the chart runs: Node.js 20, git, and the TypeScript sources run by tsx (no build step:
# what is tested is what runs). Non-root (65532), works with a read-only root filesystem: it writes only
# to DATA_DIR and /tmp, both volumes in the chart.
FROM node:20-bookworm-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json tsconfig.json main.ts service.ts ./
COPY cli ./cli
COPY config ./config
COPY core ./core
COPY dashboard ./dashboard
COPY flows ./flows
COPY git ./git
COPY kube ./kube
COPY observability ./observability
COPY queues ./queues
COPY rbac ./rbac
COPY workers ./workers
COPY samples ./samples
COPY service ./service
ENV NODE_ENV=production \
    DATA_DIR=/var/lib/gitops-reverser \
    HOME=/tmp
USER 65532:65532
EXPOSE 8080
# tini forwards SIGTERM so the service drains its writers and releases its leases before the pod goes.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--import", "tsx", "main.ts"]
