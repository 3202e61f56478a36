package stream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// errSwitch ends a session when another of the sources has become the
// writable primary.
var errSwitch = errors.New("another server is the primary now")

// primaryInfo checks the server to archive and makes it the current
// source. With one source, that is it (retried while it is down). With
// several, it is the writable one (read_only=OFF); while none is, binarc
// waits and says so once, unless a source refuses binarc's login or grant:
// that is the operator's to fix, as it is with one source, and fails at
// once. A source that refuses while another is writable does not stop
// the archive: it is logged as an error and the writable one archived.
func (a *Archiver) primaryInfo(ctx context.Context) (replication.ServerInfo, error) {
	if len(a.cfg.Sources) == 1 {
		info, err := untilUp(a, ctx, "primary", func() (replication.ServerInfo, error) { return a.cfg.Source.Preflight(ctx) })
		if err == nil {
			a.src = a.cfg.Source
			a.logPrimary(info)
		}
		return info, err
	}
	backoff := 250 * time.Millisecond
	var since time.Time
	for {
		src, info, problems, err := a.findWritable(ctx)
		if err != nil {
			return replication.ServerInfo{}, err
		}
		if src != nil {
			if !since.IsZero() {
				a.log.Info().Dur("waited", time.Since(since).Round(time.Millisecond)).Str("source", src.String()).Msg("a writable primary is back")
			}
			if a.src.Addr() != src.Addr() {
				a.log.Warn().Str("source", src.String()).Uint32("server_id", info.ServerID).Str("was", a.src.String()).Msg("archiving the writable server of the sources (it changed)")
			} else {
				a.log.Info().Str("source", src.String()).Uint32("server_id", info.ServerID).Msg("archiving the writable server of the sources")
			}
			a.src = *src
			a.logPrimary(info)
			return info, nil
		}
		if since.IsZero() {
			since = time.Now()
			a.log.Warn().Str("sources", strings.Join(problems, "; ")).Msg("no source is writable (read_only=OFF): waiting for one (logged once)")
		}
		select {
		case <-ctx.Done():
			return replication.ServerInfo{}, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, a.cfg.MaxBackoff, 5*time.Second)
	}
}

func (a *Archiver) logPrimary(info replication.ServerInfo) {
	a.log.Info().Str("source", a.src.String()).Str("version", info.Version).Str("flavor", string(info.Flavor)).
		Uint32("server_id", info.ServerID).Str("binlog_format", info.BinlogFormat).Str("binlog_checksum", info.BinlogChecksum).
		Msg("primary checked")
	if info.BinlogFormat != "ROW" {
		a.log.Warn().Str("binlog_format", info.BinlogFormat).Msg("binlog_format is not ROW: the archive is exact, but replaying statement-based events is only as deterministic as the statements")
	}
}

// findWritable returns the first source that answers and is writable, or
// nil and what each source said; err is, when no source is writable and
// none answers read-only (a failover under way), the first permanent
// problem of a source (permanentSourceError), which no wait fixes. A permanent problem of a source while another is writable
// is logged, not returned: the fault campaign's 60-minute run had one
// host of --source a freshly provisioned server without binarc's user,
// and binarc refused to start for the rest of the run although the
// writable primary was fine.
func (a *Archiver) findWritable(ctx context.Context) (*replication.Config, replication.ServerInfo, []string, error) {
	var problems []string
	var permanent error
	readOnly := 0
	for i := range a.cfg.Sources {
		src := &a.cfg.Sources[i]
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := src.Preflight(cctx)
		cancel()
		switch {
		case permanentSourceError(err):
			if !replication.IsConfigError(err) {
				err = fmt.Errorf("source %s: %w", src.Addr(), err)
			}
			if permanent == nil {
				permanent = err
			}
			problems = append(problems, err.Error())
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", src.Addr(), err))
		case info.ReadOnly:
			readOnly++
			problems = append(problems, fmt.Sprintf("%s: read-only (server_id %d)", src.Addr(), info.ServerID))
		default:
			if permanent != nil {
				a.log.Error().Err(permanent).Str("archiving", src.String()).
					Msg("a source refuses binarc (login or grant): it cannot be archived if it becomes the primary; fix it there. The writable source is archived meanwhile")
			}
			return src, info, problems, nil
		}
	}
	if permanent != nil && readOnly > 0 {
		// Another source answers, read-only: a failover may be under way
		// (the campaign met a rebuilt server without binarc's user yet,
		// while the promotion was still to come). Wait for a writable
		// one; the refusal is in the problems logged meanwhile. (With the
		// others down, a refusal is what it looks like: fail now.)
		return nil, replication.ServerInfo{}, problems, nil
	}
	return nil, replication.ServerInfo{}, problems, permanent
}

// permanentSourceError tells whether a source's error is one no wait
// fixes: a problem the operator must fix (replication.ConfigError, which
// names the server), or a refused login or missing grant the driver
// reported as it is (MySQL errors 1045, 1044, 1227).
func permanentSourceError(err error) bool {
	if err == nil {
		return false
	}
	if replication.IsConfigError(err) {
		return true
	}
	var me *mysql.MyError
	return errors.As(err, &me) && (me.Code == mysql.ER_ACCESS_DENIED_ERROR || me.Code == mysql.ER_DBACCESS_DENIED_ERROR || me.Code == mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR)
}

// watchPrimary checks, while a session runs, that the archived server is
// still the writable one; when it is down or read-only and another source
// is writable, it ends the session with errSwitch. It never switches while
// the archived server is writable: two writable servers are the operator's
// to sort out, and binarc keeps the one it has.
func (a *Archiver) watchPrimary(ctx context.Context) error {
	return onTicks(ctx, a.cfg.SwitchCheck, func() error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := a.src.Preflight(cctx)
		cancel()
		if err == nil && !info.ReadOnly {
			return nil
		}
		// A permanent problem of another source does not end a session
		// that runs: it fails the next start, when it matters.
		src, other, _, _ := a.findWritable(ctx)
		if src == nil || src.Addr() == a.src.Addr() {
			return nil
		}
		why := "read-only"
		if err != nil {
			why = "down (" + err.Error() + ")"
		}
		a.log.Warn().Str("from", a.src.String()).Str("to", src.String()).Uint32("server_id", other.ServerID).
			Msgf("FAILOVER: the archived primary is %s and %s is writable: switching to it; the new timeline is joined to this one by GTID", why, src.Addr())
		return errSwitch
	})
}

// joinRecorder records the joins between timelines once they are final,
// trying again every few seconds while one is pending.
// While one is pending it tries again after 5 s, doubling up to 5 min (an
// idle new primary may take long to write): each try reads the archive.
func (a *Archiver) joinRecorder(ctx context.Context) {
	wait := 5 * time.Second
	for {
		pending, err := a.recordJoins(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("could not record the join between timelines; trying again later (restores work it out from the archive meanwhile)")
		}
		next := min(wait*2, 5*time.Minute)
		if err == nil && pending == 0 {
			wait, next = time.Hour, 5*time.Second // until a new timeline kicks it
		}
		select {
		case <-ctx.Done():
			return
		case <-a.joinKick:
			wait = 5 * time.Second
		case <-time.After(wait):
			wait = next
		}
	}
}

// recordJoins records the joins that are final (archive.RecordJoins) and
// logs each; it returns how many are still provisional.
func (a *Archiver) recordJoins(ctx context.Context) (int, error) {
	pending, recorded, err := archive.RecordJoins(ctx, a.cat, os.TempDir())
	for _, j := range recorded {
		a.log.Info().Str("timeline", j.Timeline).Str("previous", j.Previous).Str("parent", j.Parent).Strs("lost", j.Lost).Strs("errant", j.Errant).
			Time("switch_time", j.SwitchTime).Msg("recorded the join between timelines: " + j.String())
	}
	return pending, err
}

// kickJoins wakes the join recorder (a new timeline may have started).
func (a *Archiver) kickJoins() {
	select {
	case a.joinKick <- struct{}{}:
	default:
	}
}
