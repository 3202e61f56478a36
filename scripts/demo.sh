#!/usr/bin/env bash
# demo.sh shows binarc's main job on a fresh machine, with nothing but the
# embedded defaults:
#   1. start a throwaway MariaDB primary (temporary datadir, 127.0.0.1 only,
#      1 MiB binlog files so that rotations show),
#   2. create a replication user with a random password,
#   3. run `binarc stream` into a local-directory store, ./demo-data/archive,
#   4. write data for about 10 s (tables, transactions, FLUSH BINARY LOGS),
#   5. wait until `binarc ls` says the archive is up to date,
#   6. `binarc binlog fetch` the files back and cmp them with the primary's,
#   7. stop binarc (SIGTERM) and the primary.
# It removes the previous ./demo-data first and leaves no process running.
#
# Usage: scripts/demo.sh        (or: make demo, which builds bin/binarc first)
#
# Environment:
#   BINARC_DEMO_SECONDS  how long to write data (default 10)
set -euo pipefail

cd "$(dirname "$0")/.."
readonly root="$PWD"
readonly binarc="$root/bin/binarc"
readonly demo_rel="demo-data"
readonly demo="$root/$demo_rel"
readonly store="./$demo_rel/archive"
readonly fetched="./$demo_rel/fetched"
readonly cluster=demo
readonly write_seconds="${BINARC_DEMO_SECONDS:-10}"

say() { printf '\n==> %s\n' "$*"; }
die() {
	echo "demo.sh: $*" >&2
	exit 1
}

# find_bin NAME prints the path of NAME on $PATH or in /usr/sbin, /usr/bin
# (mariadbd lives in /usr/sbin, often not on a user's $PATH).
find_bin() {
	local p dir
	if p="$(command -v "$1" 2>/dev/null)"; then
		echo "$p"
		return 0
	fi
	for dir in /usr/sbin /usr/bin; do
		if [[ -x "$dir/$1" ]]; then
			echo "$dir/$1"
			return 0
		fi
	done
	return 1
}

[[ -x "$binarc" ]] || die "$binarc not found: run make build (or make demo)"
for b in mariadbd mariadb-install-db mariadb mariadb-binlog zstd; do
	find_bin "$b" >/dev/null || die "$b not found: run scripts/deps.sh (make deps)"
done
mariadbd="$(find_bin mariadbd)"
install_db="$(find_bin mariadb-install-db)"
mariadb_client="$(find_bin mariadb)"
mariadb_binlog="$(find_bin mariadb-binlog)"

# --- cleanup -----------------------------------------------------------------

tmp=""
server_pid=""
binarc_pid=""

# stop_pid PID NAME SECONDS sends SIGTERM, waits, then SIGKILLs.
stop_pid() {
	local pid="$1" name="$2" seconds="$3" i
	[[ -n "$pid" ]] || return 0
	kill -0 "$pid" 2>/dev/null || {
		wait "$pid" 2>/dev/null || true
		return 0
	}
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < seconds * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "demo.sh: $name (pid $pid) did not stop in ${seconds}s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$binarc_pid" "binarc stream" 15
	stop_pid "$server_pid" mariadbd 60
	[[ -z "$tmp" ]] || rm -rf "$tmp"
	if ((rc != 0)); then
		echo "demo.sh: FAILED (exit status $rc); logs are in $demo_rel/" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- fresh demo directory ----------------------------------------------------

if [[ -e "$demo" ]]; then
	say "removing the previous demo's $demo_rel/"
	rm -rf "$demo"
fi
mkdir -p "$demo"
# A short path: the unix socket must fit in 108 bytes.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/binarc-demo.XXXXXX")"
datadir="$tmp/data"

# --- the primary ---------------------------------------------------------------

say "initialising a throwaway MariaDB datadir in $datadir"
# The InnoDB sizes match the server's, so its first start does not resize
# the redo log. --cross-bootstrap skips root@<hostname> (and the hostname
# lookup it needs), which a --skip-name-resolve server warns about.
innodb_args=(--innodb-buffer-pool-size=64M --innodb-log-file-size=48M --innodb-doublewrite=0)
if ! "$install_db" --no-defaults --datadir="$datadir" \
	--auth-root-authentication-method=normal --skip-test-db --cross-bootstrap \
	"${innodb_args[@]}" >"$demo/install-db.log" 2>&1; then
	cat "$demo/install-db.log" >&2
	die "mariadb-install-db failed"
fi

port=""
# port_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# mysql_root runs the mariadb client as root over TCP; SQL comes on stdin or
# as arguments.
mysql_root() {
	"$mariadb_client" --no-defaults --protocol=TCP -h 127.0.0.1 -P "$port" -u root \
		--connect-timeout=5 "$@"
}

# start_server starts mariadbd on $port and waits until it accepts root
# logins; it returns 1 if the port was taken and 2 on any other failure.
start_server() {
	local args=(
		--no-defaults # must come first
		--datadir="$datadir"
		--socket="$tmp/mariadbd.sock"
		--port="$port"
		--bind-address=127.0.0.1
		--server-id=1
		--log-bin="$datadir/mysql-bin"
		--binlog-format=ROW
		# Small files, so that ten seconds of writes show rotations.
		--max-binlog-size=1M
		--pid-file="$tmp/mariadbd.pid"
		--log-error="$demo/mariadbd.err"
		--skip-name-resolve
		--innodb-buffer-pool-dump-at-shutdown=0
		--innodb-buffer-pool-load-at-startup=0
		"${innodb_args[@]}"
	)
	# mariadbd refuses to run as root unless told to.
	[[ "$(id -u)" != 0 ]] || args+=(--user=root)
	: >"$demo/mariadbd.err"
	"$mariadbd" "${args[@]}" </dev/null >/dev/null 2>&1 &
	server_pid=$!
	local i
	for ((i = 0; i < 600; i++)); do
		if mysql_root -e 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$server_pid" 2>/dev/null; then
			wait "$server_pid" 2>/dev/null || true
			server_pid=""
			grep -q "Address already in use" "$demo/mariadbd.err" && return 1
			return 2
		fi
		sleep 0.1
	done
	return 2
}

# Another process may grab the port between the check and the bind: retry.
for attempt in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 40000))
	port_free "$port" || continue
	say "starting mariadbd on 127.0.0.1:$port (log: $demo_rel/mariadbd.err)"
	rc=0
	start_server || rc=$?
	case "$rc" in
	0) break ;;
	1) echo "port $port is taken; trying another" ;;
	*)
		tail -n 30 "$demo/mariadbd.err" >&2
		die "mariadbd did not start"
		;;
	esac
	[[ "$attempt" != 5 ]] || die "found no free port for mariadbd"
done
mysql_root -N -e 'SELECT CONCAT("    ", VERSION())'

# --- the replication user --------------------------------------------------------

# 24 random alphanumerics, generated here and never shown or put on a
# command line: SQL goes through stdin and binarc reads it from its
# environment.
password="$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 || true)"
[[ ${#password} == 24 ]] || die "could not generate a password"
say "creating replication user binarc (random password, kept in this script's memory)"
# REPLICATION SLAVE for the binlog dump; BINLOG MONITOR (MariaDB >= 10.5.2)
# for SHOW BINARY LOGS and SHOW MASTER STATUS. MariaDB writes CREATE USER to
# the binlog with the password in clear text, and the binlog is what binarc
# archives: so these statements stay out of it (sql_log_bin=0).
mysql_root <<SQL
SET SESSION sql_log_bin = 0;
CREATE USER 'binarc'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER 'binarc'@'localhost' IDENTIFIED BY '$password';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'binarc'@'127.0.0.1';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'binarc'@'localhost';
SQL

source_url="mysql://binarc@127.0.0.1:$port"

# --- binarc stream -------------------------------------------------------------

say "starting: bin/binarc stream --source $source_url --store $store --cluster $cluster --flush-interval 1s"
echo "    (password in BINARC_SOURCE_PASSWORD; log: $demo_rel/binarc-stream.log)"
BINARC_SOURCE_PASSWORD="$password" "$binarc" stream \
	--source "$source_url" --store "$store" --cluster "$cluster" --flush-interval 1s \
	</dev/null >"$demo/binarc-stream.log" 2>&1 &
binarc_pid=$!
sleep 1
if ! kill -0 "$binarc_pid" 2>/dev/null; then
	cat "$demo/binarc-stream.log" >&2
	die "binarc stream exited at start-up"
fi

# --- write some data ---------------------------------------------------------------

say "writing data for ${write_seconds}s: tables, transactions, an ALTER, FLUSH BINARY LOGS"
mysql_root <<'SQL'
CREATE DATABASE shop;
CREATE TABLE shop.customers (
  id INT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(64) NOT NULL,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB;
CREATE TABLE shop.orders (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  customer_id INT NOT NULL,
  amount DECIMAL(10,2) NOT NULL,
  note VARCHAR(255),
  KEY (customer_id)
) ENGINE=InnoDB;
CREATE TABLE shop.audit (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  payload TEXT NOT NULL
) ENGINE=InnoDB;
SQL

start=$SECONDS
round=0
while ((SECONDS - start < write_seconds)); do
	round=$((round + 1))
	extra=""
	if ((round == 3)); then
		extra="ALTER TABLE shop.orders ADD COLUMN status ENUM('new','paid','shipped') NOT NULL DEFAULT 'new';"
	elif ((round == 5)); then
		# Rotates the binlog by hand, besides the size-driven rotations.
		extra="FLUSH BINARY LOGS;"
	fi
	# seq_1_to_N is MariaDB's Sequence engine: a table of 1..N.
	mysql_root shop <<SQL
START TRANSACTION;
INSERT INTO customers (name) SELECT CONCAT('customer-', $round, '-', seq) FROM seq_1_to_200;
INSERT INTO orders (customer_id, amount, note)
  SELECT 1 + FLOOR(RAND() * LAST_INSERT_ID()), ROUND(RAND() * 500, 2), REPEAT(CHAR(65 + $round % 26), 100)
  FROM seq_1_to_1000;
COMMIT;
START TRANSACTION;
UPDATE orders SET amount = amount * 1.1 WHERE id % 7 = $round % 7;
DELETE FROM orders WHERE id % 97 = $round % 97;
INSERT INTO audit (payload) VALUES (CONCAT('round ', $round, ' done'));
COMMIT;
INSERT INTO audit (payload) SELECT REPEAT(MD5(seq + $round), 8) FROM seq_1_to_500;
$extra
SQL
	sleep 1
done
echo "    $round rounds written"
mysql_root -t -e 'SHOW BINARY LOGS'

# --- wait for the archive ----------------------------------------------------------

# binarc_ro runs a read-only binarc command with the password in its
# environment (ls --source reads it from there, too).
binarc_ro() { BINARC_SOURCE_PASSWORD="$password" "$binarc" "$@" </dev/null; }

say "waiting until the archive has caught up: bin/binarc ls --store $store --cluster $cluster --source $source_url"
ls_out=""
deadline=$((SECONDS + 60))
until ls_out="$(binarc_ro ls --store "$store" --cluster "$cluster" --source "$source_url" 2>&1)" &&
	grep -q "up to date" <<<"$ls_out"; do
	if ((SECONDS >= deadline)); then
		echo "$ls_out" >&2
		tail -n 20 "$demo/binarc-stream.log" >&2
		die "the archive did not catch up within 60s"
	fi
	kill -0 "$binarc_pid" 2>/dev/null || {
		tail -n 20 "$demo/binarc-stream.log" >&2
		die "binarc stream exited"
	}
	sleep 0.5
done
echo "$ls_out"

# --- fetch and compare -----------------------------------------------------------------

say "fetching the archived files: bin/binarc binlog fetch --store $store --cluster $cluster --dir $fetched"
binarc_ro binlog fetch --store "$store" --cluster "$cluster" --dir "$fetched" 2>&1
mapfile -t files < <(cd "$fetched" && ls | sort)
((${#files[@]} > 0)) || die "binarc binlog fetch wrote no files"
for f in "${files[@]}"; do
	if ! "$mariadb_binlog" --no-defaults "$fetched/$f" >/dev/null 2>"$tmp/binlog.err"; then
		cat "$tmp/binlog.err" >&2
		die "mariadb-binlog cannot read $fetched/$f"
	fi
done

say "mariadb-binlog --no-defaults $fetched/${files[0]} | head -40"
# head closes the pipe early; mariadb-binlog's SIGPIPE is expected.
{ "$mariadb_binlog" --no-defaults "$fetched/${files[0]}" || true; } | head -40

# in_use_flag FILE prints byte 21 of FILE: the flags of its format
# description event (after the 4-byte magic and 17 header bytes), whose bit
# 0x1 is LOG_EVENT_BINLOG_IN_USE_F.
in_use_flag() { od -An -tu1 -j21 -N1 "$1" | tr -d ' '; }

say "comparing each fetched file with the primary's copy"
last_index=$((${#files[@]} - 1))
mismatches=0
for i in "${!files[@]}"; do
	f="${files[$i]}"
	primary_file="$datadir/$f"
	[[ -f "$primary_file" ]] || die "the primary has no $f"
	state="open (in use)"
	if ((i < last_index)); then
		state="closed"
		# MariaDB clears a closed file's in-use flag lazily, after the binlog
		# checkpoint that follows the rotation; binarc's copy of a closed file
		# already has it cleared.
		for ((t = 0; t < 100; t++)); do
			[[ "$(in_use_flag "$primary_file")" == 0 ]] && break
			sleep 0.1
		done
	fi
	# The open file has the flag set on the primary, and binarc sets it in
	# its copy, too.
	if cmp "$fetched/$f" "$primary_file"; then
		printf '    %-18s %9d bytes  identical  (%s, in-use flag %s)\n' "$f" "$(stat -c %s "$primary_file")" "$state" "$(in_use_flag "$fetched/$f")"
	else
		mismatches=$((mismatches + 1))
	fi
done
((mismatches == 0)) || die "$mismatches fetched file(s) differ from the primary's"

# --- stop -------------------------------------------------------------------------------

say "stopping binarc stream (SIGTERM)"
kill -TERM "$binarc_pid"
rc=0
for ((t = 0; t < 300; t++)); do
	kill -0 "$binarc_pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$binarc_pid" 2>/dev/null; then
	die "binarc stream did not stop within 30s of SIGTERM"
fi
wait "$binarc_pid" || rc=$?
binarc_pid=""
echo "    binarc stream exited with status $rc; its last log lines:"
tail -n 3 "$demo/binarc-stream.log" | sed 's/^/    /'
((rc == 0)) || die "binarc stream exited with status $rc after SIGTERM"

say "stopping mariadbd"
stop_pid "$server_pid" mariadbd 60
server_pid=""

# --- how to look around ----------------------------------------------------------------

first_segment="$(find "$store" -name '*.zst' | sort | head -1)"
cat <<EOF

==> demo finished: the archive is in $demo_rel/archive, the fetched files in $demo_rel/fetched
    (the primary's temporary datadir is gone; run make demo again for a fresh one)

    Browse it by hand:
      find $store | sort      # layout.json, lease.json, binlog/<timeline>/<file>/<start>-<end>.zst
      bin/binarc ls --store $store --cluster $cluster
      bin/binarc ls --store $store --cluster $cluster --json
      cat $store/$cluster/binlog/*/${files[0]}.index.json

    A segment is plain zstd of bytes [start, end) of one binlog file; the
    segments of a file, in name order, concatenate to the file:
      zstd -dc $first_segment | mariadb-binlog --no-defaults - | head
      zstd -dc $store/$cluster/binlog/*/${files[0]}/*.zst | cmp - $fetched/${files[0]}
      mariadb-binlog --no-defaults --base64-output=decode-rows -v $fetched/${files[-1]} | less
EOF
