# relaygate gateway (and reference node) image. Debian bookworm: glibc 2.36, which the bundled
# uWebSockets.js binaries for Node 20 support.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY proto ./proto
COPY tsconfig.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
# 8443 with TLS (RELAYGATE_TLS_CERT/KEY), 8080 without.
EXPOSE 8443 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["gateway"]
