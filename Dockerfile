# syntax=docker/dockerfile:1
# binarc in a small Debian image with the MariaDB client tools binarc
# drives (mariadb, mariadb-binlog, mariadb-backup) and zstd.
#
#   docker build -t binarc --build-arg VERSION="$(git describe --always --dirty)" .
#   docker run --rm binarc version

# The Go version follows go.mod's go line (1.26.x).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# .git is not in the build context (.dockerignore), so the version comes
# from the build argument rather than git describe.
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
	-o /out/binarc ./cmd/binarc

# bookworm ships MariaDB 10.11: mariadb-backup must match the server it
# copies, so pick the base image to match the servers binarc snapshots.
FROM debian:bookworm-slim
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		ca-certificates mariadb-backup mariadb-client zstd \
	&& rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 binarc \
	&& useradd --system --uid 10001 --gid binarc --home-dir /var/lib/binarc --create-home \
		--shell /usr/sbin/nologin binarc
COPY --from=build /out/binarc /usr/local/bin/binarc
# Numeric, so that runAsNonRoot-style checks can verify it without /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/binarc
ENTRYPOINT ["/usr/local/bin/binarc"]
CMD ["--help"]
