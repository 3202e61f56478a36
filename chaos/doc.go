// Package chaos is binarc's seeded fault campaign: it starts a real
// master/master pair A⇄B with a replica R, versitygw behind a fault proxy,
// and binarc stream following the writable server through proxies of its
// own; writers commit numbered rows and record what each server
// acknowledged (with @@last_gtid); a schedule drawn from one seed
// (math/rand/v2) kills, stops and flips servers, kills binarc, takes the
// store down or slows it, and cuts or freezes binarc's links.
//
// The checker is independent of binarc's code: it reads the writers'
// records, the servers' own tables, the archive only as binarc's CLI gives
// it (binarc binlog fetch, decoded with mariadb-binlog; the join.json files
// as raw JSON; binarc verify), and restores made with binarc restore into
// fresh servers, compared by checksum with a model computed from the
// records. It never imports binarc's archive, restore or stream packages.
//
// The same seed gives the same schedule (the timing of a loaded machine
// does not repeat, so a failing seed is rerun, not replayed). `make chaos
// SEED=… DURATION=…` runs it; its test runs three fixed seeds.
package chaos
