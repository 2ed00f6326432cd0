# chatbot: a static binary in a distroless, non-root image. The store lives on a
# volume at /data; mount your config at /config.yaml and pass secrets as env vars.
#
#   docker build -t chatbot .
#   docker run -d --name chatbot -v chatbot-data:/data \
#     -v "$PWD/config.yaml:/config.yaml:ro" -e HTTP_LISTEN=0.0.0.0:9090 \
#     -e OPENAI_BASE_URL -e OPENAI_API_KEY -e TELEGRAM_BOT_TOKEN -e TELEGRAM_ALLOWED_USER_IDS chatbot

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/chatbot ./cmd/chatbot
# The store's folder, to be owned by the image's user (distroless's nonroot,
# uid 65532): a new named volume mounted on it starts with its owner and mode.
RUN mkdir -p /out/rootfs/data && chmod 0700 /out/rootfs/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chatbot /chatbot
COPY --from=build --chown=65532:65532 /out/rootfs/ /
# The example config.yaml reads store.path from STORE_PATH; a config that keeps
# the default, data/chatbot.db, resolves it from WORKDIR. Both land on the volume.
ENV STORE_PATH=/data/chatbot.db
WORKDIR /
VOLUME ["/data"]
USER 65532:65532
# The health check needs http.listen set in the config (the example config.yaml
# reads it from HTTP_LISTEN, e.g. 0.0.0.0:9090).
HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 \
  CMD ["/chatbot", "health", "-config", "/config.yaml"]
ENTRYPOINT ["/chatbot"]
CMD ["serve", "-config", "/config.yaml"]
