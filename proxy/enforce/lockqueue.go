package enforce

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy"

	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/internal/pgcatalog"
)

// A statement that waits for its lock sits at the head of the table's lock
// queue, and every later query on the table waits behind it, however weak
// its own lock: lock_timeout bounds that, but each try still stalls the
// application for the whole timeout. So before a statement that takes an
// ACCESS EXCLUSIVE lock on a table is sent, pgguard looks at the server's
// lock table; while a session whose transaction has run longer than
// lock_queue.threshold holds or awaits a lock on one of those tables, the
// statement waits here, outside the queue, where nobody queues behind it.
// It looks again with a growing backoff, up to lock_queue.deadline, and is
// refused past it, naming the session in its way.

// lockQueueSQL finds, among the other sessions that hold or await a lock on
// one of tables, the one whose transaction has run longest, if longer than
// threshold: its pid, user, application_name, client address, state, the
// age of its transaction in seconds, and its query. to_regclass takes no
// lock, and the question runs where its snapshot is invisible: outside a
// transaction block, or right before a statement that takes its own
// snapshot at its start (checked by the caller).
func lockQueueSQL(tables []policy.Table, threshold time.Duration) string {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = "pg_catalog.to_regclass(" + pgcatalog.QuoteLiteral(t.String()) + ")"
	}
	return "SELECT a.pid, a.usename, a.application_name, host(a.client_addr), a.state," +
		" extract(epoch FROM now() - a.xact_start)::float8, a.query" +
		" FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid" +
		" WHERE l.locktype = 'relation' AND l.pid <> pg_catalog.pg_backend_pid()" +
		" AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())" +
		" AND l.relation IN (" + strings.Join(names, ", ") + ")" +
		// Holding ACCESS EXCLUSIVE already, the statement waits for nobody.
		" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks o WHERE o.pid = pg_catalog.pg_backend_pid() AND o.locktype = 'relation'" +
		" AND o.relation = l.relation AND o.mode = 'AccessExclusiveLock' AND o.granted)" +
		fmt.Sprintf(" AND a.xact_start < now() - interval '%d milliseconds'", threshold.Milliseconds()) +
		" ORDER BY a.xact_start LIMIT 1"
}

// blocker is the session a statement waits for outside the lock queue.
type blocker struct {
	pid, user, app, client, state, query string
	age                                  time.Duration
}

// lookBeforeQueue runs before a statement of ds, which v answers, when the
// session can run a query of pgguard's own. Before one that takes an
// ACCESS EXCLUSIVE lock on tables, it waits outside the lock queue while a
// long holder of a lock on them is in the way; before a concurrent index
// build, while another session builds an index on the same table (two
// builds on one table each wait for the other's transaction, and
// PostgreSQL cancels one of them as a deadlock, leaving its index
// INVALID). It returns the refusal when the way is still blocked at the
// deadline.
func (m *Machine) lookBeforeQueue(v *verdict, ds []policy.StatementDecision) *policy.Finding {
	cfg := m.cfg.Policy.Engine().Config()
	deadline, threshold := time.Duration(cfg.LockQueue.Deadline), time.Duration(cfg.LockQueue.Threshold)
	status := m.state.TxStatus()
	if deadline <= 0 || m.unsynced || m.batch != nil || m.pending.Load() > 0 || status == 'E' {
		return nil
	}
	if status == 'T' && anySnapshotFree(ds) {
		// LOCK TABLE takes no snapshot: a question before it would take
		// the transaction's (REPEATABLE READ reads after a LOCK).
		return nil
	}
	if table := concurrentIndexTable(v); table != "" {
		return m.waitOutsideQueue(v, buildsOnSQL(table), deadline, buildRefusal)
	}
	var tables []policy.Table
	for _, sd := range ds {
		if sd.Decision.Concurrent || sd.Decision.Lock != policy.LockAccessExclusive {
			continue
		}
		for _, t := range sd.Decision.LocksExclusive {
			if t.Name != "" {
				tables = append(tables, t)
			}
		}
	}
	if len(tables) == 0 {
		return nil
	}
	return m.waitOutsideQueue(v, lockQueueSQL(tables, threshold), deadline, lockQueueRefusal)
}

// buildsOnSQL finds another session that is building an index on table
// (pg_stat_progress_create_index), with the columns lockQueueSQL gives.
// relid is an OID, which another database may use for another table (a
// database cloned from a template has the same ones): the database counts.
func buildsOnSQL(table string) string {
	return "SELECT a.pid, a.usename, a.application_name, host(a.client_addr), a.state," +
		" extract(epoch FROM now() - a.xact_start)::float8, a.query" +
		" FROM pg_catalog.pg_stat_progress_create_index p JOIN pg_catalog.pg_stat_activity a ON a.pid = p.pid" +
		" WHERE p.relid = pg_catalog.to_regclass(" + pgcatalog.QuoteLiteral(table) + ") AND p.pid <> pg_catalog.pg_backend_pid()" +
		" AND p.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())" +
		" ORDER BY a.xact_start LIMIT 1"
}

// waitOutsideQueue looks with ask (one row: the blocker) until it finds no
// row, with a growing backoff, for at most deadline; past it, refuse makes
// the refusal (in mode enforce). A wait is reported to the observer and
// kept in v for the statement's audit line.
func (m *Machine) waitOutsideQueue(v *verdict, ask string, deadline time.Duration, refuse func(blocker, time.Duration, time.Duration) *policy.Finding) *policy.Finding {
	cfg := m.cfg.Policy.Engine().Config()
	start := time.Now()
	wait := 100 * time.Millisecond
	var b blocker
	looks := 0
	// ended reports a wait that happened, however it ended.
	ended := func(outcome string) {
		if looks == 0 {
			return
		}
		took := time.Since(start)
		v.queueWait, v.queueBlocker = took, "pid "+b.pid+" "+b.app
		m.obs.LockQueueWait(m.state.Target, took, looks, b.app, outcome)
		m.log.Info("lock queue: the wait ended", "outcome", outcome, "waited", took.Round(time.Millisecond).String(), "looks", looks)
	}
	for {
		out, err := m.internalQuery(ask)
		if err != nil || out.errCode != "" || len(out.rows) != 1 || len(out.rows[0]) != 7 {
			ended(observe.LockQueueClear)
			return nil
		}
		b = blockerOf(out.rows[0])
		if looks == 0 {
			m.log.Warn("lock queue: waiting outside the queue for a session in the statement's way",
				"blocker_pid", b.pid, "blocker_application_name", b.app, "blocker_state", b.state, "blocker_transaction_age", b.age.String(),
				"user", m.state.User, "database", m.state.Database)
		}
		looks++
		if time.Since(start)+wait > deadline {
			if cfg.Mode != policy.ModeEnforce {
				// mode warn or audit changes nothing the client sent: past
				// the deadline the statement goes, with lock_timeout.
				ended(observe.LockQueueSent)
				return nil
			}
			ended(observe.LockQueueRefused)
			return refuse(b, time.Since(start), deadline)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-m.sess.Done():
			t.Stop()
			ended(observe.LockQueueClosed)
			return nil
		}
		if wait *= 2; wait > time.Second {
			wait = time.Second
		}
	}
}

func blockerOf(row []*string) blocker {
	s := func(i int) string {
		if row[i] == nil {
			return ""
		}
		return *row[i]
	}
	b := blocker{pid: s(0), user: s(1), app: s(2), client: s(3), state: s(4)}
	if secs, err := strconv.ParseFloat(s(5), 64); err == nil {
		b.age = time.Duration(secs * float64(time.Second)).Round(time.Second)
	}
	// Only the statement's shape: a literal of another session's query
	// must not reach this client, nor a log.
	if q := observe.NormaliseSQL(s(6)); q != observe.UnnormalisedStatement {
		b.query = q
	}
	return b
}

// describe says who b is, for a refusal: "pid 123" and what else is known.
func (b blocker) describe() (who, what string) {
	var parts []string
	if b.user != "" {
		parts = append(parts, "user "+b.user)
	}
	if b.app != "" {
		parts = append(parts, "application_name "+b.app)
	}
	if b.client != "" {
		parts = append(parts, "client "+b.client)
	}
	if b.state != "" {
		parts = append(parts, b.state)
	}
	parts = append(parts, "its transaction has run "+b.age.String())
	what = strings.Join(parts, ", ")
	if b.query != "" {
		what += ". Its query: " + b.query
	}
	return "pid " + b.pid, what
}

func lockQueueRefusal(b blocker, waited, deadline time.Duration) *policy.Finding {
	who, what := b.describe()
	return &policy.Finding{RuleID: "lock-queue", Action: policy.Reject, Lock: policy.LockAccessExclusive,
		Message: fmt.Sprintf("another session (%s) has held or awaited a lock on the table for %s; this statement would wait behind it, and every query on the table behind this statement",
			who, b.age),
		Detail: fmt.Sprintf("pgguard waited %s (lock_queue.deadline %s) outside the lock queue, so that no query on the table queued behind this statement, for %s (%s).",
			waited.Round(time.Millisecond), deadline, who, what),
		Hint: "-- run the migration again once that session's transaction has ended, or end it:\n" +
			"SELECT pg_terminate_backend(" + b.pid + ");",
	}
}

func buildRefusal(b blocker, waited, deadline time.Duration) *policy.Finding {
	who, what := b.describe()
	return &policy.Finding{RuleID: "lock-queue", Action: policy.Reject, Lock: policy.LockShareUpdateExclusive,
		Message: fmt.Sprintf("another session (%s) is building an index on the table; two concurrent builds on one table wait for each other, and PostgreSQL cancels one as a deadlock, leaving its index INVALID", who),
		Detail: fmt.Sprintf("pgguard waited %s (lock_queue.deadline %s) for that build to end before starting this one: %s (%s).",
			waited.Round(time.Millisecond), deadline, who, what),
		Hint: "-- run the migration again once the other build has finished; watch it with:\n" +
			"SELECT * FROM pg_stat_progress_create_index WHERE pid = " + b.pid + ";",
	}
}

// concurrentIndexTable returns the table a one-statement CREATE INDEX
// CONCURRENTLY (the client's own or a rewrite) builds on, or "".
func concurrentIndexTable(v *verdict) string {
	is := concurrentIndexStmt(v)
	if is == nil || is.Relation == nil {
		return ""
	}
	return policy.TableOf(is.Relation).String()
}

// snapshotFree reports whether a statement takes no snapshot of its own
// (LOCK TABLE), so that a question of pgguard's before it would be the one
// that takes the transaction's.
func snapshotFree(sql string) bool {
	res, err := pg_query.Parse(sql)
	return err == nil && len(res.Stmts) == 1 && res.Stmts[0].Stmt.GetLockStmt() != nil
}
