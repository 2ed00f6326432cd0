# chatbot: a static binary in a distroless, non-root image. The store lives on a
# volume at /data; mount your config at /config.yaml and pass secrets as env vars.
#
#   docker build -t chatbot .
#   docker run -d --name chatbot -v chatbot-data:/data \
#     -v "$PWD/config.yaml:/config.yaml:ro" -e TELEGRAM_BOT_TOKEN -e OPENAI_API_KEY ... chatbot

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/chatbot ./cmd/chatbot

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chatbot /chatbot
# The config's store.path must point into the volume, e.g. /data/chatbot.db.
VOLUME ["/data"]
USER nonroot:nonroot
# The health check needs http.listen set in the config (e.g. 0.0.0.0:9090).
HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 \
  CMD ["/chatbot", "health", "-config", "/config.yaml"]
ENTRYPOINT ["/chatbot"]
CMD ["serve", "-config", "/config.yaml"]
