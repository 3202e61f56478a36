#!/usr/bin/env bash
# deps.sh makes a Debian machine ready for binarc's tests and demo:
#   - MariaDB server, client tools, mariabackup and zstd (apt, needs root),
#   - versitygw, the S3 server the integration tests start (built with go),
#   - staticcheck, pinned.
# It is idempotent: when everything is present it only checks and prints
# where the binaries are.
#
# Usage: scripts/deps.sh [--with-compose | --demo-only]
#   --with-compose  also install docker-compose (for `docker-compose config`
#                   checks of the demo; no Docker daemon is needed).
#   --demo-only     only what `make demo` runs: the apt packages above and a
#                   check for go; no versitygw, staticcheck or docker-compose.
#
# Environment:
#   BINARC_CACHE  where built binaries go (default $HOME/.cache/binarc);
#                 internal/testenv (the tests and the bench) looks in the
#                 same place.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
readonly VERSITYGW_VERSION=v1.8.0
# staticcheck 2026.2.2 is release v0.8.2 of the module honnef.co/go/tools.
readonly STATICCHECK_VERSION=v0.8.2
readonly MARIADB_PACKAGES=(mariadb-server mariadb-client mariadb-backup zstd)

with_compose=false
demo_only=false
for arg in "$@"; do
	case "$arg" in
	--with-compose) with_compose=true ;;
	--demo-only) demo_only=true ;;
	-h | --help)
		sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "deps.sh: unknown argument: $arg (try --help)" >&2
		exit 2
		;;
	esac
done
if $with_compose && $demo_only; then
	echo "deps.sh: --with-compose and --demo-only exclude each other (the demo needs no docker-compose)" >&2
	exit 2
fi

cache="${BINARC_CACHE:-$HOME/.cache/binarc}"
bindir="$cache/bin"


# apt_install WHY PACKAGE... installs the packages when root; otherwise it
# prints the command to run as root and exits 1.
apt_install() {
	local why="$1"
	shift
	if [[ "$(id -u)" != 0 ]]; then
		echo "deps.sh: $why; as root, run:" >&2
		echo "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $*"
		exit 1
	fi
	echo "deps.sh: $why: installing $*"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# --- MariaDB (apt) ---------------------------------------------------------

missing=()
for b in mariadbd mariadb-install-db mariadb mariadb-binlog mariabackup zstd; do
	find_bin "$b" >/dev/null || missing+=("$b")
done
if ((${#missing[@]} > 0)); then
	# The package scripts may start the system mariadb service; the tests
	# never use it (they start their own servers on private datadirs).
	apt_install "missing ${missing[*]}" "${MARIADB_PACKAGES[@]}"
fi

# deploy/'s test checks the systemd units with systemd-analyze verify.
if ! find_bin systemd-analyze >/dev/null; then
	apt_install "missing systemd-analyze" systemd
fi

# The status page's test renders it in headless Chromium (Debian's).
if ! $demo_only && ! find_bin chromium >/dev/null; then
	apt_install "missing chromium" chromium fonts-dejavu-core
fi

if $with_compose && ! find_bin docker-compose >/dev/null; then
	apt_install "missing docker-compose" docker-compose
fi

# --- Go tools ----------------------------------------------------------------

gobin=""
if ! gobin="$(find_bin go)"; then
	if [[ -x /usr/local/go/bin/go ]]; then
		gobin=/usr/local/go/bin/go
	else
		echo "deps.sh: go not found on \$PATH or at /usr/local/go/bin/go: install Go (see go.mod for the version)" >&2
		exit 1
	fi
fi

# report_mariadb prints where the apt-installed binaries are.
report_mariadb() {
	for b in mariadbd mariadb-install-db mariadb mariadb-binlog mariabackup zstd; do
		printf '  %-19s %s\n' "$b" "$(find_bin "$b")"
	done
}

if $demo_only; then
	echo "deps.sh: ready for the demo"
	report_mariadb
	printf '  %-19s %s\n' go "$gobin"
	exit 0
fi

mkdir -p "$bindir"
tmp=""
trap '[[ -z "$tmp" ]] || rm -rf "$tmp"' EXIT

# go_install PKG@VERSION BINARY DEST builds PKG into a temporary directory next
# to DEST and renames it into place, so an interrupted build never leaves a
# half-written DEST that the next run would trust.
go_install() {
	local pkg="$1" binary="$2" dest="$3"
	tmp="$(mktemp -d "$bindir/.build.XXXXXX")"
	GOBIN="$tmp" "$gobin" install "$pkg"
	mv -f "$tmp/$binary" "$dest"
	rm -rf "$tmp"
	tmp=""
}

versitygw="$bindir/versitygw-$VERSITYGW_VERSION"
if [[ ! -x "$versitygw" ]]; then
	echo "deps.sh: building versitygw $VERSITYGW_VERSION into $bindir (takes ~6 minutes)"
	go_install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" versitygw "$versitygw"
fi

staticcheck="$bindir/staticcheck"
if [[ ! -x "$staticcheck" ]] ||
	! "$gobin" version -m "$staticcheck" 2>/dev/null | grep -q "honnef.co/go/tools[[:space:]]*$STATICCHECK_VERSION[[:space:]]"; then
	echo "deps.sh: installing staticcheck ($STATICCHECK_VERSION) into $bindir"
	go_install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" staticcheck "$staticcheck"
fi

# --- Report ------------------------------------------------------------------

echo "deps.sh: ready"
report_mariadb
if $with_compose; then
	printf '  %-19s %s\n' docker-compose "$(find_bin docker-compose)"
fi
printf '  %-19s %s\n' go "$gobin"
printf '  %-19s %s\n' versitygw "$versitygw"
printf '  %-19s %s\n' staticcheck "$staticcheck"
