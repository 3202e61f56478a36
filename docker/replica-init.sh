# replica-init.sh runs once, on the replica's first start, from the mariadb
# image's /docker-entrypoint-initdb.d. The entrypoint sources it (it must stay
# non-executable), so docker_process_sql and docker_sql_escape_string_literal
# are defined; it runs under the entrypoint's `set -eo pipefail`.
#
# It points the replica at the primary and starts replicating. With an empty
# gtid_slave_pos, MASTER_USE_GTID=slave_pos starts from the primary's first
# binlog file, so the replica also gets the users primary-init.sh created.
# The replication settings (in master.info, not the binlog) survive the
# entrypoint's restart of the server, which then starts the replica threads
# by itself.

binarc_init_repl_password="$(docker_sql_escape_string_literal "$(</run/secrets/replication_password)")"

docker_process_sql --binary-mode <<SQL
CHANGE MASTER TO
  MASTER_HOST='primary',
  MASTER_PORT=3306,
  MASTER_USER='repl',
  MASTER_PASSWORD='$binarc_init_repl_password',
  MASTER_USE_GTID=slave_pos,
  MASTER_CONNECT_RETRY=10;
START SLAVE;
SQL

unset binarc_init_repl_password
