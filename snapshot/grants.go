package snapshot

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/binarc/binarc/replication"
)

// requiredPrivileges lists the global privileges a MariaDB user needs for a
// snapshot, checked against SHOW GRANTS before anything is stopped, so a
// missing one fails at once with the GRANT to run, not half-way through a
// backup with the replica's SQL thread stopped.
//
// Found by running each step with a user lacking one privilege (MariaDB
// 10.11): mariabackup checks RELOAD and PROCESS itself at start (BACKUP
// STAGE, the processlist) and needs BINLOG MONITOR for SHOW MASTER STATUS
// at the end when the server writes a binlog; LOCK TABLES is not needed
// since 10.4 (BACKUP STAGE replaced FLUSH TABLES WITH READ LOCK).
// mariadb-dump --single-transaction needs SELECT, SHOW VIEW, TRIGGER and
// EVENT; with --master-data also RELOAD (FLUSH TABLES WITH READ LOCK) and
// BINLOG MONITOR. SHOW SLAVE STATUS, which tells whether the server is a
// replica, needs SLAVE MONITOR (on a primary too); on a replica STOP/START
// SLAVE needs REPLICATION SLAVE ADMIN.
//
// MySQL's needs differ (BACKUP_ADMIN for xtrabackup 8.0, REPLICATION
// CLIENT); binarc does not check them there and reports the tool's error.
func requiredPrivileges(method Method, replica, logBin bool) []string {
	var p []string
	switch method {
	case Physical:
		p = append(p, "RELOAD", "PROCESS")
		if logBin {
			p = append(p, "BINLOG MONITOR")
		}
	case Logical:
		p = append(p, "SELECT", "SHOW VIEW", "TRIGGER", "EVENT")
		if !replica {
			p = append(p, "RELOAD", "BINLOG MONITOR")
		}
	}
	p = append(p, "SLAVE MONITOR")
	if replica {
		p = append(p, "REPLICATION SLAVE ADMIN")
	}
	return p
}

var grantOnAll = regexp.MustCompile(`(?i)^GRANT (.+?) ON \*\.\* TO `)

// privilegeAliases maps the spellings SHOW GRANTS or an operator may use to
// the one requiredPrivileges uses. MariaDB 10.5.2+ made REPLICATION CLIENT
// an alias of BINLOG MONITOR and 10.5.9 REPLICA MONITOR of SLAVE MONITOR.
var privilegeAliases = map[string]string{
	"REPLICATION CLIENT":        "BINLOG MONITOR",
	"REPLICA MONITOR":           "SLAVE MONITOR",
	"REPLICATION REPLICA ADMIN": "REPLICATION SLAVE ADMIN",
}

// missingPrivileges compares SHOW GRANTS output with what is needed.
// SUPER covers the replication and binlog privileges split off it in
// MariaDB 10.5 (it still implies them before 11.0).
func missingPrivileges(grants []string, need []string) []string {
	have := map[string]bool{}
	for _, g := range grants {
		m := grantOnAll.FindStringSubmatch(strings.TrimSpace(g))
		if m == nil {
			continue
		}
		for _, p := range strings.Split(m[1], ",") {
			p = strings.ToUpper(strings.Join(strings.Fields(p), " "))
			if a, ok := privilegeAliases[p]; ok {
				p = a
			}
			have[p] = true
		}
	}
	if have["ALL PRIVILEGES"] || have["ALL"] {
		return nil
	}
	var missing []string
	for _, p := range need {
		if have[p] {
			continue
		}
		if have["SUPER"] && (p == "BINLOG MONITOR" || p == "SLAVE MONITOR" || p == "REPLICATION SLAVE ADMIN") {
			continue
		}
		missing = append(missing, p)
	}
	return missing
}

// checkPrivileges fails with the GRANT statement to run when the user lacks
// a privilege the snapshot needs (MariaDB only; see requiredPrivileges).
// Before binarc knows whether the server is a replica it checks only
// SLAVE MONITOR, which it needs to find out (preReplicaCheck).
func (c *conn) checkPrivileges(method Method, replica, preReplicaCheck bool) error {
	if c.info.Flavor != replication.FlavorMariaDB {
		return nil
	}
	rows, err := c.c.Execute("SHOW GRANTS FOR CURRENT_USER()")
	if err != nil {
		return classify(c.cfg, fmt.Errorf("SHOW GRANTS: %w", err))
	}
	defer rows.Close()
	var grants []string
	for i := range rows.RowNumber() {
		g, _ := rows.GetString(i, 0)
		grants = append(grants, strings.Clone(g)) // see conn.query
	}
	need := requiredPrivileges(method, replica, c.info.LogBin)
	check := need
	if preReplicaCheck {
		check = []string{"SLAVE MONITOR"}
	}
	missing := missingPrivileges(grants, check)
	if len(missing) == 0 {
		return nil
	}
	what := "a " + string(method) + " snapshot"
	switch {
	case preReplicaCheck:
		what = "SHOW SLAVE STATUS, which tells whether the server is a replica"
		need = requiredPrivileges(method, true, c.info.LogBin)
	case replica:
		what += " of a replica"
	}
	return &ConfigError{
		Problem: fmt.Sprintf("server %s: user %q lacks %s, needed for %s", c.cfg.Addr(), c.cfg.User, strings.Join(missing, ", "), what),
		Hint: fmt.Sprintf("run on the server: GRANT %s ON *.* TO '%s'@'%%' (with the user's host in place of %%)",
			strings.Join(need, ", "), c.cfg.User),
	}
}
