# Builds the mockmdm binary (pure Go: the SQLite driver needs no cgo) and
# runs it with its data directory in /data.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mockmdm ./cmd/mockmdm \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mockmdm /mockmdm
# The nonroot user (65532) must own /data so a fresh volume is writable.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME ["/data"]
EXPOSE 8443
ENTRYPOINT ["/mockmdm"]
# Flags the image always uses; set the rest with MOCKMDM_* variables.
CMD ["serve", "-data", "/data", "-listen", ":8443"]
