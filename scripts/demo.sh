#!/usr/bin/env bash
# demo.sh tells binarc's story in about a minute, on throwaway servers:
#   1. a MariaDB primary and a GTID replica; `binarc stream` archives the
#      primary into a local-directory store, ./demo-data/archive,
#   2. `binarc snapshot` of the replica (its SQL thread stopped, its IO
#      thread running, sampled while the backup runs),
#   3. a few seconds of writes across several tables, a binlog rotation,
#   4. a bad DROP TABLE, then more writes,
#   5. `binarc binlog events --grep 'drop table'` finds it,
#   6. `binarc restore --to latest --skip-gtid <its GTID>` into a new
#      datadir; a server started on it must have every table's CHECKSUM
#      equal to the primary's (the dropped table's as it was just before
#      the DROP): the demo prints "identical: ..." or exits non-zero,
#   7. `binarc ls` and `binarc verify` on the archive.
# Each step prints the command a user would type and its (trimmed) output.
# The servers live in a temporary directory; everything is stopped at the
# end, whatever happens. The archive and the logs stay in ./demo-data.
#
# Usage: scripts/demo.sh        (or: make demo, which builds bin/binarc first)
#
# Environment:
#   BINARC_DEMO_DIR      where the archive and logs go (default ./demo-data;
#                        emptied first)
#   BINARC_DEMO_SECONDS  how long step 3 writes (default 4)
#   BINARC_BIN           the binarc binary (default bin/binarc)
#   BINARC_DEMO_FAULT    for integration/demo_test.go only: keep-drop restores
#                        without --skip-gtid, so the comparison must fail
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$(dirname "$0")/.."
readonly binarc="${BINARC_BIN:-$PWD/bin/binarc}"
demo_dir="${BINARC_DEMO_DIR:-$PWD/demo-data}"
# binarc reads its flags from BINARC_* variables too: a BINARC_TARGET or
# BINARC_SOURCE_PASSWORD_FILE of the user's must not change the demo.
for v in $(compgen -e); do
	case "$v" in
	BINARC_DEMO_* | BINARC_BIN | BINARC_CACHE) ;;
	BINARC_*) unset "$v" ;;
	esac
done
if [[ -d "$demo_dir" && ! -e "$demo_dir/.binarc-demo" && -n "$(ls -A "$demo_dir")" ]]; then
	echo "demo.sh: $demo_dir is not empty and not a previous demo's directory: choose another BINARC_DEMO_DIR" >&2
	exit 1
fi
mkdir -p "$demo_dir"
demo_dir="$(cd "$demo_dir" && pwd)"
# Commands run from the demo directory's parent, so they read as a user
# would type them: --store ./demo-data/archive.
cd "$(dirname "$demo_dir")"
readonly rel="./$(basename "$demo_dir")"
readonly demo="$demo_dir"
readonly store="$rel/archive"
readonly cluster=demo
readonly write_seconds="${BINARC_DEMO_SECONDS:-4}"
readonly started=$SECONDS

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
	printf '\ndemo.sh: FAILED: %s\n' "$*" >&2
	exit 1
}


[[ -x "$binarc" ]] || die "$binarc not found: run make build (or make demo)"
for b in mariadbd mariadb-install-db mariadb mariabackup mbstream zstd; do
	find_bin "$b" >/dev/null || die "$b not found: run scripts/deps.sh --demo-only (make demo does)"
done
mariadbd="$(find_bin mariadbd)"
install_db="$(find_bin mariadb-install-db)"
mariadb_client="$(find_bin mariadb)"

# --- cleanup: everything this script started stops, whatever happens --------

tmp=""
declare -A pids=() # name -> pid of each background process

# stop_pid NAME SECONDS: SIGTERM, wait, then SIGKILL.
stop_pid() {
	local name="$1" seconds="$2" pid="${pids[$1]:-}" i
	[[ -n "$pid" ]] || return 0
	unset "pids[$name]"
	if kill -TERM "$pid" 2>/dev/null; then
		for ((i = 0; i < seconds * 10; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "demo.sh: $name (pid $pid) did not stop in ${seconds}s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? name
	trap - EXIT INT TERM
	[[ -z "$tmp" ]] || touch "$tmp/stop"
	for name in sampler writer stream; do stop_pid "$name" 15; done
	for name in "${!pids[@]}"; do stop_pid "$name" 60; done
	[[ -z "$tmp" ]] || rm -rf "$tmp"
	if ((rc != 0)); then
		echo "demo.sh: FAILED (exit status $rc); logs are in $demo" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "${demo:?}"/*
touch "$demo/.binarc-demo"
# A short path: unix sockets must fit in 108 bytes.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/binarc-demo.XXXXXX")"
# binarc restore runs its temporary server as the unprivileged mysql user,
# which must be able to reach the restored directory inside this one.
chmod 755 "$tmp"
mkdir "$tmp/tmp"

# --- output helpers ------------------------------------------------------------

# show FILE [MAX]: FILE indented, trimmed for reading: a run of more than 5
# per-file rows (binlog ranges, ls rows) keeps its first 2 and last; log
# fields every line repeats and progress lines go; past MAX lines, the head
# and the last 3 lines; long lines are cut.
show() {
	local f="$1" max="${2:-14}"
	awk '
		function flush() {
			if (n > 5) { print run[1]; print run[2]; print "  … (" n - 3 " more)"; print run[n] }
			else for (i = 1; i <= n; i++) print run[i]
			n = 0
		}
		/replay progress/ { next }
		{ gsub(/ cluster=demo/, "") }
		/^ +mysql-bin\.[0-9]+ / { run[++n] = $0; next }
		{ flush(); print }
		END { flush() }' "$f" >"$tmp/show.txt"
	local n
	n=$(wc -l <"$tmp/show.txt")
	{
		if ((n <= max)); then
			cat "$tmp/show.txt"
		else
			head -n $((max - 4)) "$tmp/show.txt"
			echo "… ($((n - max + 1)) more lines)"
			tail -n 3 "$tmp/show.txt"
		fi
	} | awk '{ if (length($0) > 150) $0 = substr($0, 1, 149) "…"; print "    " $0 }'
}

# quoted ARGS...: the arguments as a shell would need them typed.
quoted() {
	local a out=""
	for a in "$@"; do
		[[ "$a" =~ ^[A-Za-z0-9_./:@=,+-]+$ ]] || a="'$a'"
		out+=" $a"
	done
	echo "${out# }"
}

# binarc_run NAME MAX ARGS...: prints the command, runs binarc with console
# logs into $demo/NAME.log, shows MAX lines of it; exits on failure.
binarc_run() {
	local name="$1" max="$2" rc=0
	shift 2
	printf '$ binarc %s\n' "$(quoted "$@")"
	BINARC_LOG_FORMAT=console "$binarc" "$@" </dev/null >"$demo/$name.log" 2>&1 || rc=$?
	show "$demo/$name.log" "$max"
	((rc == 0)) || die "binarc $1 exited with status $rc (whole output: $demo/$name.log)"
}

# --- servers ------------------------------------------------------------------

# sql NAME ARGS...: the mariadb client as root on server NAME's socket.
sql() {
	local name="$1"
	shift
	"$mariadb_client" --no-defaults -S "$tmp/$name.sock" -u root --connect-timeout=5 "$@"
}

# The InnoDB sizes match the server's, so its first start does not resize
# the redo log. A private --tmpdir keeps the servers' temporary tables out
# of the shared /tmp (install-db once failed there: "Error on delete of
# '/tmp/#sql-temptable-….MAI'").
common_args=(--innodb-buffer-pool-size=64M --innodb-log-file-size=48M --innodb-doublewrite=0 --tmpdir="$tmp/tmp")
declare -A ports=()

# start_server NAME DATADIR ARGS...: starts mariadbd (on a free loopback
# port unless ARGS has --skip-networking) and waits for root logins.
start_server() {
	local name="$1" datadir="$2" attempt i port=""
	shift 2
	for attempt in 1 2 3 4 5; do
		local args=(--no-defaults --datadir="$datadir" --socket="$tmp/$name.sock"
			--pid-file="$tmp/$name.pid" --log-error="$demo/$name.err" --skip-name-resolve
			--innodb-buffer-pool-dump-at-shutdown=0 --innodb-buffer-pool-load-at-startup=0
			"${common_args[@]}")
		if [[ " $* " != *" --skip-networking "* ]]; then
			port=$((20000 + RANDOM % 40000))
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue # taken
			args+=(--port="$port" --bind-address=127.0.0.1)
		fi
		# mariadbd refuses to run as root unless told to.
		[[ "$(id -u)" != 0 ]] || args+=(--user=root)
		: >"$demo/$name.err"
		"$mariadbd" "${args[@]}" "$@" </dev/null >/dev/null 2>&1 &
		pids[$name]=$!
		for ((i = 0; i < 600; i++)); do
			if sql "$name" -e 'SELECT 1' >/dev/null 2>&1; then
				ports[$name]="$port"
				return 0
			fi
			kill -0 "${pids[$name]}" 2>/dev/null || break
			sleep 0.1
		done
		stop_pid "$name" 30
		grep -q "Address already in use" "$demo/$name.err" || break
	done
	tail -n 30 "$demo/$name.err" >&2
	die "mariadbd ($name) did not start; its log: $demo/$name.err"
}

# password: 24 random alphanumerics, never shown or put on a command line
# (SQL goes through stdin, binarc reads BINARC_SOURCE_PASSWORD).
password() {
	local p
	p="$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 || true)"
	[[ ${#p} == 24 ]] || die "could not generate a password"
	echo "$p"
}

# --- 1. primary, replica, stream -----------------------------------------------

step "1. a MariaDB primary, a replica (GTID replication), and binarc stream archiving the primary"
# --cross-bootstrap skips root@<hostname> (and the hostname lookup it
# needs), which a --skip-name-resolve server warns about.
if ! "$install_db" --no-defaults --datadir="$tmp/template" --auth-root-authentication-method=normal \
	--skip-test-db --cross-bootstrap "${common_args[@]}" >"$demo/install-db.log" 2>&1; then
	cat "$demo/install-db.log" >&2
	die "mariadb-install-db failed"
fi
cp -a "$tmp/template" "$tmp/primary"
mv "$tmp/template" "$tmp/replica"
start_server primary "$tmp/primary" --server-id=1 --log-bin=mysql-bin --binlog-format=ROW --max-binlog-size=1M
start_server replica "$tmp/replica" --server-id=2 --log-bin=mysql-bin --binlog-format=ROW \
	--log-slave-updates=ON --relay-log=relay-bin --skip-slave-start --read-only=ON
note "primary  127.0.0.1:${ports[primary]}  $(sql primary -N -e 'SELECT VERSION()')  (server_id 1, ROW binlog, 1 MiB files)"

stream_pw="$(password)"
repl_pw="$(password)"
snap_pw="$(password)"
# The accounts stay out of the binlog (sql_log_bin=0): MariaDB logs CREATE
# USER with its password in clear text, and the binlog is what is archived.
sql primary <<SQL
SET SESSION sql_log_bin = 0;
CREATE USER 'binarc'@'127.0.0.1' IDENTIFIED BY '$stream_pw';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'binarc'@'127.0.0.1';
CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '$repl_pw';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
SQL
# What binarc snapshot --help lists for a physical snapshot of a replica.
sql replica <<SQL
SET SESSION sql_log_bin = 0;
CREATE USER 'snap'@'127.0.0.1' IDENTIFIED BY '$snap_pw';
GRANT RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN ON *.* TO 'snap'@'127.0.0.1';
SET GLOBAL gtid_slave_pos = '';
CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${ports[primary]}, MASTER_USER='repl',
  MASTER_PASSWORD='$repl_pw', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos;
START SLAVE;
SQL

# slave_status: "IO=Yes SQL=Yes read=FILE:POS exec=FILE:POS" of the replica.
slave_status() {
	sql replica -e 'SHOW SLAVE STATUS\G' | awk '
		{ sub(":", "", $1); v[$1] = $2 }
		END { printf "IO=%s SQL=%s read=%s:%s exec=%s:%s\n", v["Slave_IO_Running"], v["Slave_SQL_Running"],
			v["Master_Log_File"], v["Read_Master_Log_Pos"], v["Relay_Master_Log_File"], v["Exec_Master_Log_Pos"] }'
}
for ((i = 0; ; i++)); do
	st="$(slave_status)"
	[[ "$st" != "IO=Yes SQL=Yes "* ]] || break
	((i < 300)) || die "the replica is not replicating after 30s: $st"
	sleep 0.1
done
note "replica  127.0.0.1:${ports[replica]}  (server_id 2) CHANGE MASTER TO … MASTER_USE_GTID=slave_pos: $st"

stream_url="mysql://binarc@127.0.0.1:${ports[primary]}"
stream_args=(stream --source "$stream_url" --store "$store" --cluster "$cluster")
printf '$ export BINARC_SOURCE_PASSWORD=…   # each account has a random password, never on a command line\n'
printf '$ binarc %s &\n' "$(quoted "${stream_args[@]}")"
BINARC_SOURCE_PASSWORD="$stream_pw" BINARC_LOG_FORMAT=console "$binarc" "${stream_args[@]}" \
	</dev/null >"$demo/stream.log" 2>&1 &
pids[stream]=$!

sql primary <<'SQL'
CREATE DATABASE shop;
USE shop;
CREATE TABLE shop.customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64) NOT NULL,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB;
CREATE TABLE shop.orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL,
  amount DECIMAL(10,2) NOT NULL, note VARCHAR(255), KEY (customer_id)) ENGINE=InnoDB;
CREATE TABLE shop.stock (sku INT PRIMARY KEY, qty INT NOT NULL) ENGINE=InnoDB;
CREATE TABLE shop.audit (id BIGINT PRIMARY KEY AUTO_INCREMENT,
  at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), payload TEXT NOT NULL) ENGINE=InnoDB;
INSERT INTO shop.customers (name) SELECT CONCAT('customer-0-', seq) FROM seq_1_to_500;
INSERT INTO shop.orders (customer_id, amount, note)
  SELECT 1 + seq % 500, ROUND(RAND() * 500, 2), REPEAT('o', 100) FROM seq_1_to_2000;
INSERT INTO shop.stock SELECT seq, 1000 FROM seq_1_to_200;
SQL
sleep 1
kill -0 "${pids[stream]}" 2>/dev/null || {
	cat "$demo/stream.log" >&2
	die "binarc stream exited at start-up"
}
show "$demo/stream.log" 6
note "(its log: $rel/stream.log; the schema shop: customers, orders, stock, audit, 2,700 rows)"

# --- 2. snapshot of the replica ------------------------------------------------------

step "2. a physical snapshot of the replica, while the primary keeps writing"
# A writer on the primary, and a sampler of the replica's threads, while
# the snapshot runs.
(
	n=0
	while [[ ! -e "$tmp/stop" ]]; do
		n=$((n + 1))
		sql primary -e "INSERT INTO shop.audit (payload) VALUES ('during the snapshot $n')" || exit 1
		sleep 0.05
	done
) &
pids[writer]=$!
(
	while [[ ! -e "$tmp/stop" ]]; do
		st="$(slave_status)" && echo "$st"
		sleep 0.05
	done
) >"$demo/replica-samples.txt" &
pids[sampler]=$!
sleep 0.3
BINARC_SOURCE_PASSWORD="$snap_pw" binarc_run snapshot 12 \
	snapshot --source "mysql://snap@127.0.0.1:${ports[replica]}" --store "$store" --cluster "$cluster"
touch "$tmp/stop"
stop_pid writer 15
stop_pid sampler 15
rm -f "$tmp/stop"

grep -q "replica SQL thread stopped" "$demo/snapshot.log" || die "binarc snapshot did not say it stopped the SQL thread"
grep -q "replica SQL thread started again" "$demo/snapshot.log" || die "binarc snapshot did not say it started the SQL thread again"
grep "IO=Yes SQL=No " "$demo/replica-samples.txt" >"$tmp/held" || true
held=$(wc -l <"$tmp/held")
((held > 0)) || die "no sample of the replica showed the SQL thread stopped and the IO thread running ($demo/replica-samples.txt)"
! grep -v "IO=Yes" "$demo/replica-samples.txt" >/dev/null ||
	die "the replica's IO thread stopped during the snapshot ($demo/replica-samples.txt)"
[[ "$(awk '{print $4}' "$tmp/held" | sort -u | wc -l)" == 1 ]] ||
	die "the replica's SQL thread moved while stopped ($demo/replica-samples.txt)"
note "the replica (SHOW SLAVE STATUS every 50 ms, $held samples while the backup ran):"
note "  first: $(head -n 1 "$tmp/held")"
note "  last:  $(tail -n 1 "$tmp/held")"
first_read="$(head -n 1 "$tmp/held" | awk '{print $3}')"
last_read="$(tail -n 1 "$tmp/held" | awk '{print $3}')"
if [[ "$first_read" != "$last_read" ]]; then
	note "  the SQL thread held still at the snapshot's coordinates; the IO thread kept reading the primary"
else
	note "  the SQL thread held still at the snapshot's coordinates; the IO thread stayed connected"
fi
st="$(slave_status)"
[[ "$st" == "IO=Yes SQL=Yes "* ]] || die "the replica does not replicate after the snapshot: $st"
note "  after: $st"

# --- 3. writes and a rotation ---------------------------------------------------------

# write_round N ORDERS: one round of writes; ORDERS=0 leaves shop.orders alone.
write_round() {
	local n="$1" orders="$2" o=""
	if ((orders)); then
		o="INSERT INTO orders (customer_id, amount, note)
  SELECT 1 + FLOOR(RAND() * 500), ROUND(RAND() * 500, 2), REPEAT(CHAR(65 + $n % 26), 100) FROM seq_1_to_200;
UPDATE orders SET amount = amount * 1.1 WHERE id % 7 = $n % 7;
DELETE FROM orders WHERE id % 97 = $n % 97;"
	fi
	sql primary shop <<SQL
START TRANSACTION;
INSERT INTO customers (name) SELECT CONCAT('customer-$n-', seq) FROM seq_1_to_50;
$o
UPDATE stock SET qty = qty - 1 - $n % 3 WHERE sku % 10 = $n % 10;
COMMIT;
INSERT INTO audit (payload) SELECT REPEAT(MD5(seq + $n), 4) FROM seq_1_to_200;
SQL
}

step "3. ${write_seconds}s of writes across customers, orders, stock and audit, and a binlog rotation"
round=0
flushed=false
t0=$SECONDS
while ((SECONDS - t0 < write_seconds)); do
	round=$((round + 1))
	write_round "$round" 1
	if ! $flushed && ((SECONDS - t0 >= write_seconds / 2)); then
		printf "\$ mariadb -e 'FLUSH BINARY LOGS'\n"
		sql primary -e 'FLUSH BINARY LOGS'
		flushed=true
	fi
	sleep 0.2
done
$flushed || sql primary -e 'FLUSH BINARY LOGS'
note "$round rounds of transactions (INSERT, UPDATE, DELETE)"
printf "\$ mariadb -e 'SHOW BINARY LOGS'\n"
sql primary -t -e 'SHOW BINARY LOGS' >"$tmp/logs.txt"
show "$tmp/logs.txt" 12

# --- 4. the bad DROP ---------------------------------------------------------------

step "4. someone drops the wrong table; the application keeps writing to the others"
printf "\$ mariadb -e 'CHECKSUM TABLE shop.orders'   # (the demo keeps this to compare with)\n"
orders_sum="$(sql primary -N -e 'CHECKSUM TABLE shop.orders' | awk '{print $2}')"
orders_rows="$(sql primary -N -e 'SELECT COUNT(*) FROM shop.orders')"
note "shop.orders  $orders_sum  ($orders_rows rows)"
printf "\$ mariadb -e 'DROP TABLE shop.orders'   # the mistake\n"
sql primary -e 'DROP TABLE shop.orders'
before_after="$(sql primary -N -e 'CHECKSUM TABLE shop.customers')"
for ((i = 1; i <= 6; i++)); do
	write_round "$((round + i))" 0
	sleep 0.2
done
[[ "$(sql primary -N -e 'CHECKSUM TABLE shop.customers')" != "$before_after" ]] ||
	die "the writes after the DROP changed nothing"
note "6 more rounds of writes to customers, stock and audit after the DROP"

# --- 5. find it -------------------------------------------------------------------

step "5. find the DROP in the archive"
# Everything the primary wrote must be archived before the restore.
for ((i = 0; ; i++)); do
	BINARC_SOURCE_PASSWORD="$stream_pw" "$binarc" ls --store "$store" --cluster "$cluster" --source "$stream_url" \
		</dev/null >"$tmp/ls.txt" 2>&1 && grep -q "up to date" "$tmp/ls.txt" && break
	kill -0 "${pids[stream]}" 2>/dev/null || die "binarc stream exited (log: $demo/stream.log)"
	((i < 600)) || {
		cat "$tmp/ls.txt" >&2
		die "the archive did not catch up with the primary within 60s"
	}
	sleep 0.1
done
binarc_run events 8 binlog events --store "$store" --cluster "$cluster" --grep 'drop table'
gtids="$(awk '/DROP TABLE/ && /orders/ {print $2}' "$demo/events.log")"
[[ -n "$gtids" && "$gtids" != *$'\n'* ]] || die "binlog events --grep did not list the DROP once:$(printf '\n%s' "$gtids")"
drop_gtid="$gtids"
[[ "$drop_gtid" =~ ^[0-9]+-[0-9]+-[0-9]+$ ]] || die "not a GTID: $drop_gtid"
note "the bad transaction: GTID $drop_gtid"

# --- 6. restore everything but it -------------------------------------------------------

step "6. restore the newest state without that transaction, into a new datadir"
restored="$tmp/restored"
skip=(--skip-gtid "$drop_gtid")
case "${BINARC_DEMO_FAULT:-}" in
"") ;;
keep-drop) skip=() ;; # the test's proof that a wrong restore fails the demo
*) die "BINARC_DEMO_FAULT=$BINARC_DEMO_FAULT: unknown (only keep-drop)" ;;
esac
binarc_run restore 24 restore --store "$store" --cluster "$cluster" --to latest "${skip[@]}" --datadir "$restored"
printf '$ mariadbd --datadir %s --skip-slave-start --skip-networking … &\n' "$restored"
start_server restored "$restored" --server-id=3 --skip-log-bin --skip-slave-start --skip-networking

# checksums NAME: "schema.table checksum" for every user table, sorted.
checksums() {
	local name="$1" t
	sql "$name" -N -e "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
		ORDER BY 1" | while read -r t; do
		sql "$name" -N -e "CHECKSUM TABLE $t"
	done | awk '{print $1, $2}'
}
# What the restore must hold: the primary's tables now, and shop.orders as
# it was just before the DROP.
{
	checksums primary
	echo "shop.orders $orders_sum"
} | sort >"$demo/expected-checksums.txt"
checksums restored | sort >"$demo/restored-checksums.txt"
printf "\$ mariadb -e 'CHECKSUM TABLE …'   # every table, on the primary and on the restored server\n"
join -a1 -a2 -e '(missing)' -o 0,1.2,2.2 "$demo/expected-checksums.txt" "$demo/restored-checksums.txt" |
	awk 'BEGIN { printf "    %-16s %-12s %s\n", "TABLE", "PRIMARY", "RESTORED" }
		{ printf "    %-16s %-12s %-12s %s%s\n", $1, $2, $3, ($2 == $3 ? "same" : "DIFFERENT"),
			($1 == "shop.orders" ? " (the primary'"'"'s just before the DROP)" : "") }'
if ! cmp -s "$demo/expected-checksums.txt" "$demo/restored-checksums.txt"; then
	die "the restored server's tables differ from the primary's (see above; $demo/*-checksums.txt)"
fi
n_tables=$(wc -l <"$demo/expected-checksums.txt")
echo "identical: all $n_tables tables equal the primary's, shop.orders back as it was before the DROP, the later writes kept"

# --- 7. the archive ---------------------------------------------------------------

step "7. the archive"
binarc_run ls 18 ls --store "$store" --cluster "$cluster"
binarc_run verify 6 verify --store "$store" --cluster "$cluster"

step "stopping binarc stream (SIGTERM), the servers, and removing $tmp"
kill -TERM "${pids[stream]}"
for ((i = 0; i < 300; i++)); do
	kill -0 "${pids[stream]}" 2>/dev/null || break
	sleep 0.1
done
kill -0 "${pids[stream]}" 2>/dev/null && die "binarc stream did not stop within 30s of SIGTERM"
rc=0
wait "${pids[stream]}" || rc=$?
unset "pids[stream]"
((rc == 0)) || die "binarc stream exited with status $rc after SIGTERM (log: $demo/stream.log)"
note "binarc stream: exit status 0, everything received was stored"
for name in restored replica primary; do stop_pid "$name" 60; done
step "demo finished in $((SECONDS - started))s; the archive is in $store, the logs in $rel/"
