# pgguard's container image. `make image` builds it as IMAGE:VERSION
# (IMAGE defaults to ghcr.io/pgguard/pgguard; VERSION is git describe's);
# by hand, pass the same build arguments:
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg COMMIT="$(git rev-parse HEAD)" -t ghcr.io/pgguard/pgguard:dev .
#
# The binary is built by `make build`, as on a developer's machine, so the
# image carries the same flags and stamps (cmd/pgguard/dockerfile_test.go
# checks this file). pg_query is C code (cgo): the build stage has gcc, and
# the runtime stage the glibc of the same Debian release (12, bookworm),
# which is all the binary links against. The default rules are embedded.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=1 make build BIN=/out/pgguard VERSION="$VERSION" COMMIT="$COMMIT"

FROM gcr.io/distroless/base-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title=pgguard \
      org.opencontainers.image.source=https://github.com/pgguard/pgguard \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.revision=$COMMIT
COPY --from=build /out/pgguard /pgguard
USER nonroot:nonroot
# In a container, 127.0.0.1 is reachable only from the container (or pod)
# itself: listen on every interface by default. Flags override these; a
# sidecar passes --listen 127.0.0.1:6432 so only its pod reaches it.
ENV PGGUARD_LISTEN=0.0.0.0:6432 PGGUARD_ADMIN=0.0.0.0:9187
# 6432: PostgreSQL clients; 9187: admin (/startup, /liveness, /readiness, /metrics).
EXPOSE 6432 9187
ENTRYPOINT ["/pgguard"]
