# primary-init.sh runs once, on the primary's first start, from the mariadb
# image's /docker-entrypoint-initdb.d. The entrypoint sources it (it must stay
# non-executable), so docker_process_sql and docker_sql_escape_string_literal
# are defined; it runs under the entrypoint's `set -eo pipefail`.
#
# It creates two users, with passwords from the compose secrets:
#   binarc@'%'  the archiver. REPLICATION SLAVE and BINLOG MONITOR for
#               `binarc stream`; RELOAD, PROCESS and BINLOG MONITOR for
#               mariadb-backup, SLAVE MONITOR and REPLICATION SLAVE ADMIN to
#               stop and start the replica's SQL thread, for `binarc
#               snapshot` (see binarc snapshot --help). The replica gets the
#               user through replication.
#   repl@'%'    the replica's replication user.
#
# The users are created from password hashes: MariaDB writes CREATE USER ...
# IDENTIFIED BY '<password>' to the binlog as typed, and the binlog is
# exactly what binarc archives. The SELECT PASSWORD() is not binlogged.

binarc_init_hash() {
	local escaped
	escaped="$(docker_sql_escape_string_literal "$(<"$1")")"
	docker_process_sql --skip-column-names <<<"SELECT PASSWORD('$escaped')"
}

binarc_init_binarc_hash="$(binarc_init_hash /run/secrets/binarc_password)"
binarc_init_repl_hash="$(binarc_init_hash /run/secrets/replication_password)"

docker_process_sql --binary-mode <<SQL
CREATE USER 'binarc'@'%' IDENTIFIED BY PASSWORD '$binarc_init_binarc_hash';
GRANT REPLICATION SLAVE, BINLOG MONITOR, RELOAD, PROCESS, SLAVE MONITOR, REPLICATION SLAVE ADMIN
  ON *.* TO 'binarc'@'%';
CREATE USER 'repl'@'%' IDENTIFIED BY PASSWORD '$binarc_init_repl_hash';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
SQL

unset -f binarc_init_hash
unset binarc_init_binarc_hash binarc_init_repl_hash
