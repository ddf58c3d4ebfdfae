package enforce

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/policy/sqltext"

	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/wire"
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

// conflicts is PostgreSQL's table of conflicting lock modes (Table 13.2,
// lock.c's LockConflicts): the modes each mode conflicts with.
var conflicts = map[string][]string{
	policy.LockAccessShare:          {policy.LockAccessExclusive},
	policy.LockRowShare:             {policy.LockExclusive, policy.LockAccessExclusive},
	policy.LockRowExclusive:         {policy.LockShare, policy.LockShareRowExclusive, policy.LockExclusive, policy.LockAccessExclusive},
	policy.LockShareUpdateExclusive: {policy.LockShareUpdateExclusive, policy.LockShare, policy.LockShareRowExclusive, policy.LockExclusive, policy.LockAccessExclusive},
	policy.LockShare:                {policy.LockRowExclusive, policy.LockShareUpdateExclusive, policy.LockShareRowExclusive, policy.LockExclusive, policy.LockAccessExclusive},
	policy.LockShareRowExclusive:    {policy.LockRowExclusive, policy.LockShareUpdateExclusive, policy.LockShare, policy.LockShareRowExclusive, policy.LockExclusive, policy.LockAccessExclusive},
	policy.LockExclusive:            {policy.LockRowShare, policy.LockRowExclusive, policy.LockShareUpdateExclusive, policy.LockShare, policy.LockShareRowExclusive, policy.LockExclusive, policy.LockAccessExclusive},
	policy.LockAccessExclusive:      {policy.LockAccessShare, policy.LockRowShare, policy.LockRowExclusive, policy.LockShareUpdateExclusive, policy.LockShare, policy.LockShareRowExclusive, policy.LockExclusive, policy.LockAccessExclusive},
}

// lockModes are the eight table lock modes, weakest first.
var lockModes = []string{policy.LockAccessShare, policy.LockRowShare, policy.LockRowExclusive, policy.LockShareUpdateExclusive,
	policy.LockShare, policy.LockShareRowExclusive, policy.LockExclusive, policy.LockAccessExclusive}

// conflict reports whether two lock modes conflict.
func conflict(a, b string) bool { return slices.Contains(conflicts[a], b) }

// covers returns the modes that, held already by the session, let it take
// mode without waiting for another session: mode itself (taken again
// locally) and every mode that conflicts with all that mode conflicts with
// (no other session can hold one of those beside it).
func covers(mode string) []string {
	var out []string
	for _, h := range lockModes {
		all := true
		for _, c := range conflicts[mode] {
			all = all && conflict(h, c)
		}
		if h == mode || all {
			out = append(out, h)
		}
	}
	return out
}

// pgLocksModes spells modes as pg_locks.mode does, as an SQL list.
func pgLocksModes(modes []string) string {
	q := make([]string, len(modes))
	for i, m := range modes {
		var b strings.Builder
		for _, w := range strings.Fields(m) {
			b.WriteString(w[:1] + strings.ToLower(w[1:]))
		}
		q[i] = "'" + b.String() + "Lock'"
	}
	return strings.Join(q, ", ")
}

// tableWant is a table a statement will lock, and with which mode (or,
// with lock.Via, the relations it locks through that table).
type tableWant struct {
	lock policy.TableLock
	mode string
	// path is the search_path a SET earlier in the same Query gives an
	// unqualified table's statement (nil: the session's).
	path []string
}

// relationSQL is the OID of w's table as the statement will resolve it:
// with the search_path a SET earlier in the Query set, if any (the look
// runs before the Query is sent, with the session's), else the session's.
func (w tableWant) relationSQL() string {
	if w.lock.Table.Schema != "" || w.path == nil {
		return "pg_catalog.to_regclass(" + pgcatalog.QuoteLiteral(w.lock.Table.String()) + ")::oid"
	}
	var each []string
	name := pgcatalog.QuoteLiteral("." + policy.QuoteIdent(w.lock.Table.Name))
	for _, s := range w.path {
		schema := pgcatalog.QuoteLiteral(policy.QuoteIdent(s))
		if s == "$user" {
			schema = "pg_catalog.quote_ident(current_user)"
		}
		each = append(each, "pg_catalog.to_regclass("+schema+" || "+name+")::oid")
	}
	if len(each) == 0 {
		return "NULL::oid"
	}
	return "COALESCE(" + strings.Join(each, ", ") + ")"
}

// searchPathSet returns the schemas of a SET [LOCAL] search_path TO a
// list, and whether sql is one.
func searchPathSet(sql string) ([]string, bool) {
	if !strings.Contains(strings.ToLower(sql), "search_path") {
		return nil, false
	}
	res, err := sqltext.PgParse(sql)
	if err != nil || len(res.Stmts) != 1 {
		return nil, false
	}
	vs := res.Stmts[0].Stmt.GetVariableSetStmt()
	if vs == nil || vs.Name != "search_path" || vs.Kind != pg_query.VariableSetKind_VAR_SET_VALUE {
		return nil, false
	}
	path := []string{}
	for _, a := range vs.Args {
		c := a.GetAConst()
		if c == nil || c.GetSval() == nil {
			return nil, false
		}
		path = append(path, c.GetSval().GetSval())
	}
	return path, true
}

// wantsOf lists the tables that statements of ds will lock with a mode
// that blocks writes (SHARE or stronger, not CONCURRENTLY), with the
// strongest mode on each (policy Decision.TableLocks: the main table, the
// table a FOREIGN KEY references, and those it locks through them, which
// the look's query resolves in the catalog).
func wantsOf(ds []policy.StatementDecision) []tableWant {
	var out []tableWant
	var path []string
	for _, sd := range ds {
		if p, ok := searchPathSet(sd.Statement.Text); ok {
			path = p
		}
		if sd.Decision.Concurrent {
			continue
		}
	next:
		for _, tl := range sd.Decision.TableLocks {
			if !policy.BlocksWrites(tl.Mode) {
				continue
			}
			for i := range out {
				if out[i].lock.Same(tl) {
					if policy.LockStrength(tl.Mode) > policy.LockStrength(out[i].mode) {
						out[i].mode = tl.Mode
					}
					continue next
				}
			}
			out = append(out, tableWant{tl, tl.Mode, path})
		}
	}
	return out
}

// lookMarker starts pgguard's look at the lock queue, so that it can tell
// whether the snapshot of pg_stat_activity that a transaction keeps is the
// one its look took (clearActivitySQL). The random part keeps a client
// from sending it.
var lookMarker = "/* " + rejectMarker + " lock queue */ "

// lockQueueSQL finds, among the other sessions that hold or await a lock
// on one of the tables that conflicts with the mode the statement takes
// there (PostgreSQL's conflict table, not any lock), the one whose
// transaction has run longest, if longer than threshold: its pid, user,
// application_name, client address, state, the age of its transaction in
// seconds, and its query. Not in its way: a session waiting for a lock
// that conflicts with one this session holds there already (PostgreSQL
// puts this session's request before it), nor anyone when this session
// holds the mode already or one that covers it. to_regclass takes no
// lock, and the question runs where its snapshot is invisible (the
// caller's concern).
func lockQueueSQL(wants []tableWant, threshold time.Duration) string {
	return lockQueueKnownSQL(wants, threshold, nil)
}

// lockQueueKnownSQL is lockQueueSQL where the holders in known (pid and
// virtualtransaction, "pid:vxid") also count as old when their session's
// pg_stat_activity row is hidden from this role: hiddenHoldersSQL found
// them at two looks threshold apart (their age is not shown).
func lockQueueKnownSQL(wants []tableWant, threshold time.Duration, known []string) string {
	var pairs []string
	for _, a := range lockModes {
		for _, b := range conflicts[a] {
			pairs = append(pairs, "("+pgLocksModes([]string{a})+", "+pgLocksModes([]string{b})+")")
		}
	}
	var on []string
	for _, w := range wants {
		// The table (or what the statement locks through it: an index's
		// table, a foreign key's other table, a sequence, from the
		// catalog) and its partitions or inheritance children, which the
		// statement locks with it (ALTER TABLE, DROP, TRUNCATE, LOCK and
		// CREATE INDEX of a partitioned table recurse).
		on = append(on, "(l.relation IN (WITH RECURSIVE d(r) AS (SELECT x.r FROM ("+w.lock.RelationsSQL(w.relationSQL())+") x(r)"+
			" UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.r) SELECT r FROM d)"+
			" AND l.mode IN ("+pgLocksModes(conflicts[w.mode])+")"+
			" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks o WHERE o.pid = pg_catalog.pg_backend_pid() AND o.locktype = 'relation'"+
			" AND o.relation = l.relation AND o.granted AND (o.mode IN ("+pgLocksModes(covers(w.mode))+")"+
			" OR (NOT l.granted AND (o.mode, l.mode) IN (SELECT * FROM c)))))")
	}
	// Ages are counted to the look's own start (statement_timestamp), not
	// now(): inside a transaction block now() is the block's start, and
	// a holder that began after it would never be old enough.
	//
	// A prepared transaction (PREPARE TRANSACTION) keeps its locks with
	// no backend: pg_locks.pid is NULL, and its own transactionid lock,
	// under the same virtualtransaction, names it in pg_prepared_xacts.
	return lookMarker + "WITH c(held, wanted) AS (VALUES " + strings.Join(pairs, ", ") + ")" +
		" SELECT a.pid, COALESCE(a.usename, px.owner), a.application_name, host(a.client_addr), COALESCE(a.state, 'prepared')," +
		" extract(epoch FROM pg_catalog.statement_timestamp() - COALESCE(a.xact_start, px.prepared))::float8, a.query, px.gid," +
		// Whether another session already waits for a lock this one
		// holds (from earlier in its block): waiting here would keep it
		// waiting. pg_locks keeps no snapshot in the block.
		" EXISTS (SELECT 1 FROM pg_catalog.pg_locks w WHERE NOT w.granted AND w.pid IS NOT NULL AND w.pid <> pg_catalog.pg_backend_pid()" +
		" AND pg_catalog.pg_backend_pid() = ANY (pg_catalog.pg_blocking_pids(w.pid)))" +
		" FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid" +
		" LEFT JOIN pg_catalog.pg_locks x ON l.pid IS NULL AND x.pid IS NULL AND x.locktype = 'transactionid' AND x.virtualtransaction = l.virtualtransaction" +
		" LEFT JOIN pg_catalog.pg_prepared_xacts px ON px.transaction = x.transactionid" +
		" WHERE l.locktype = 'relation' AND (a.pid IS NOT NULL OR px.gid IS NOT NULL) AND l.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()" +
		" AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())" +
		" AND (" + strings.Join(on, " OR ") + ")" +
		fmt.Sprintf(" AND (COALESCE(a.xact_start, px.prepared) < pg_catalog.statement_timestamp() - interval '%d milliseconds'", threshold.Milliseconds()) +
		knownHidden(known) + ")" +
		" ORDER BY COALESCE(a.xact_start, px.prepared) LIMIT 1"
}

// knownHidden is the condition under which a holder of lockQueueKnownSQL
// is one of known.
func knownHidden(known []string) string {
	if len(known) == 0 {
		return ""
	}
	q := make([]string, len(known))
	for i, k := range known {
		q[i] = pgcatalog.QuoteLiteral(k)
	}
	return " OR (a.pid IS NOT NULL AND a.xact_start IS NULL AND (l.pid::text || ':' || l.virtualtransaction) IN (" + strings.Join(q, ", ") + "))"
}

// hiddenHoldersSQL lists, as "pid:vxid", the sessions lockQueueSQL would
// look at but whose age it cannot see: pg_stat_activity hides another
// role's xact_start from a role without pg_read_all_stats, while pg_locks
// shows their locks to anyone.
func hiddenHoldersSQL(wants []tableWant) string {
	full := lockQueueKnownSQL(wants, 0, nil)
	from := strings.Index(full, " FROM pg_catalog.pg_locks l LEFT JOIN")
	where := strings.LastIndex(full, " AND (COALESCE(a.xact_start")
	if from < 0 || where < 0 {
		return ""
	}
	with := full[len(lookMarker):strings.Index(full, " SELECT a.pid")]
	return lookMarker + with + " SELECT DISTINCT l.pid::text || ':' || l.virtualtransaction" + full[from:where] +
		" AND a.pid IS NOT NULL AND a.xact_start IS NULL"
}

// clearActivitySQL drops the snapshot of pg_stat_activity that pgguard's
// look took inside the client's transaction block, where PostgreSQL keeps
// it until the transaction ends: the client's own reads of it later in the
// block would show that moment, and pgguard's question as its own query.
// A snapshot the client's reads took before is kept (its own row shows
// its query, not the look's). A look that found no lock to look at may
// not have read pg_stat_activity: the snapshot is then this question's
// own, and is dropped as well (its own row starts with the same marker).
var clearActivitySQL = "/* " + rejectMarker + " lock queue, clear */ SELECT pg_catalog.pg_stat_clear_snapshot() FROM pg_catalog.pg_stat_activity" +
	" WHERE pid = pg_catalog.pg_backend_pid() AND pg_catalog.starts_with(query, " + pgcatalog.QuoteLiteral("/* "+rejectMarker+" lock queue") + ")"

// blocker is the session a statement waits for outside the lock queue.
type blocker struct {
	pid, user, app, client, state, query string
	// gid names a prepared transaction, which has no backend (pid "").
	gid string
	age time.Duration
	// hostage: another session already waits for a lock this session
	// holds, taken earlier in its transaction block.
	hostage bool
}

// lookBeforeQueue runs before a statement of ds, which v answers, when the
// session can run a query of pgguard's own. Before one that takes a lock
// that blocks writes on tables, it waits outside the lock queue while a
// long holder (or awaiter) of a conflicting lock on them is in the way;
// before a concurrent index build, while another session builds an index
// on the same table (two builds on one table each wait for the other's
// transaction, and PostgreSQL cancels one of them as a deadlock, leaving
// its index INVALID). Inside a transaction block it looks only where the
// question is invisible: at READ COMMITTED, where every statement takes a
// snapshot of its own (at REPEATABLE READ a question could take the
// transaction's snapshot, seconds before the statement would have), and
// it drops the snapshot of pg_stat_activity it took. It returns the
// refusal when the way is still blocked at the deadline.
func (m *Machine) lookBeforeQueue(v *verdict, ds []policy.StatementDecision) *policy.Finding {
	cfg := m.cfg.Policy.Engine().Config()
	deadline, threshold := time.Duration(cfg.LockQueue.Deadline), time.Duration(cfg.LockQueue.Threshold)
	status := m.state.TxStatus()
	if deadline <= 0 || m.unsynced || m.batch != nil || m.pending.Load() > 0 || status == 'E' {
		return nil
	}
	if table := concurrentIndexTable(v); table != "" {
		if f := m.waitOutsideQueue(v, m.textQuery, buildsOnSQL(table), false, deadline, buildRefusal); f != nil {
			return f
		}
		if status == 'I' {
			return m.tellBuildWaits(v, table, threshold)
		}
		return nil
	}
	if rel := concurrentOperationRelation(v); rel != "" {
		// REINDEX ... CONCURRENTLY and DROP INDEX CONCURRENTLY (the
		// client's or pgguard's rewrite) wait for another build's lock on
		// the table holding a snapshot, as a second build would: the same
		// deadlock, and PostgreSQL may cancel the other session's build.
		return m.waitOutsideQueue(v, m.textQuery, buildsOnOIDSQL(rel), false, deadline, buildRefusal)
	}
	wants := wantsOf(ds)
	if len(wants) == 0 {
		return nil
	}
	inBlock := status == 'T'
	if inBlock {
		out, err := m.internalQuery("SHOW transaction_isolation")
		if err != nil || out.errCode != "" || len(out.rows) != 1 || len(out.rows[0]) != 1 || out.rows[0][0] == nil {
			return nil
		}
		switch iso := *out.rows[0][0]; iso {
		case "read committed":
		case "repeatable read", "serializable":
			if !m.snapshotTaken(iso) {
				return nil
			}
		default:
			return nil
		}
	}
	mode := ""
	for _, w := range wants {
		if policy.LockStrength(w.mode) > policy.LockStrength(mode) {
			mode = w.mode
		}
	}
	// Holders whose age this role cannot see are old when a second look,
	// threshold later, still finds them in the same transaction.
	var known []string
	if !inBlock && threshold > 0 {
		if ask := hiddenHoldersSQL(wants); ask != "" {
			first := m.hiddenHolders(ask)
			if len(first) > 0 {
				t := time.NewTimer(threshold)
				select {
				case <-t.C:
				case <-m.sess.Done():
					t.Stop()
					return nil
				}
				for _, h := range m.hiddenHolders(ask) {
					if slices.Contains(first, h) {
						known = append(known, h)
					}
				}
			}
		}
	}
	return m.waitOutsideQueue(v, m.textQuery, lockQueueKnownSQL(wants, threshold, known), inBlock, deadline,
		func(b blocker, waited, deadline time.Duration) *policy.Finding {
			return lockQueueRefusal(b, mode, waited, deadline)
		})
}

// hiddenHolders runs ask (hiddenHoldersSQL) and returns its rows.
func (m *Machine) hiddenHolders(ask string) []string {
	out, err := m.textQuery(ask)
	if err != nil || out.errCode != "" {
		return nil
	}
	var hs []string
	for _, r := range out.rows {
		if len(r) == 1 && r[0] != nil {
			hs = append(hs, *r[0])
		}
	}
	return hs
}

// snapshotTaken reports whether the REPEATABLE READ or SERIALIZABLE (iso)
// transaction block the session is in has taken its snapshot already (a
// statement of the block needed one), so that a question of pgguard's
// there reads with that snapshot and takes none. The server says so
// without taking one: SET TRANSACTION ISOLATION LEVEL to another level
// fails, in a savepoint, with "must be called before any query" once the
// snapshot is taken (check_XactIsoLevel tests that first), and with "must
// not be called in a subtransaction" before. SAVEPOINT, SET and ROLLBACK TO
// take no snapshot, use no command id and assign no transaction ID; the
// savepoint is rolled back to and released. Any other answer (a message
// in another language, lc_messages) counts as not taken.
func (m *Machine) snapshotTaken(iso string) bool {
	other := "SERIALIZABLE"
	if iso == "serializable" {
		other = "REPEATABLE READ"
	}
	if out, err := m.internalQuery("SAVEPOINT " + estimateSavepoint); err != nil || out.errCode != "" {
		return false
	}
	out, err := m.internalQuery("SET TRANSACTION ISOLATION LEVEL " + other)
	r1, err1 := m.internalQuery("ROLLBACK TO SAVEPOINT " + estimateSavepoint)
	r2, err2 := m.internalQuery("RELEASE SAVEPOINT " + estimateSavepoint)
	return err == nil && err1 == nil && err2 == nil && r1.errCode == "" && r2.errCode == "" &&
		out.errCode == "25001" && out.errMsg == "SET TRANSACTION ISOLATION LEVEL must be called before any query"
}

// buildsOnSQL finds another session that is building an index on table
// (pg_stat_progress_create_index), with the columns lockQueueSQL gives.
// relid is an OID, which another database may use for another table (a
// database cloned from a template has the same ones): the database counts.
func buildsOnSQL(table string) string {
	return buildsOnOIDSQL("pg_catalog.to_regclass(" + pgcatalog.QuoteLiteral(table) + ")")
}

// buildsOnOIDSQL is buildsOnSQL for the table whose OID rel (an SQL
// expression) gives.
func buildsOnOIDSQL(rel string) string {
	return "SELECT a.pid, a.usename, a.application_name, host(a.client_addr), a.state," +
		" extract(epoch FROM pg_catalog.statement_timestamp() - a.xact_start)::float8, a.query, NULL::text, false" +
		" FROM pg_catalog.pg_stat_progress_create_index p JOIN pg_catalog.pg_stat_activity a ON a.pid = p.pid" +
		// pg_stat_progress_create_index hides another role's relid from
		// a role without pg_read_all_stats; pg_locks shows anyone the
		// build's lock on the table.
		" WHERE (p.relid = " + rel + " OR p.relid IS NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.pid = p.pid" +
		" AND l.locktype = 'relation' AND l.relation = " + rel + "))" +
		" AND p.pid <> pg_catalog.pg_backend_pid()" +
		" AND p.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())" +
		" ORDER BY a.xact_start LIMIT 1"
}

// retryLook is the look before each retry of ds's statement after a
// lock_timeout failure (the question asked before its first try) and the
// mode it takes, or "" when there is none to ask.
func (m *Machine) retryLook(ds []policy.StatementDecision) (ask, mode string) {
	cfg := m.cfg.Policy.Engine().Config()
	if time.Duration(cfg.LockQueue.Deadline) <= 0 {
		return "", ""
	}
	wants := wantsOf(ds)
	if len(wants) == 0 {
		return "", ""
	}
	for _, w := range wants {
		if policy.LockStrength(w.mode) > policy.LockStrength(mode) {
			mode = w.mode
		}
	}
	return lockQueueSQL(wants, time.Duration(cfg.LockQueue.Threshold)), mode
}

// waitOutsideQueue looks with ask (one row: the blocker), which run sends
// on the session's connection, until it finds no row, with a growing
// backoff, for at most deadline; past it, refuse makes the refusal (in
// mode enforce). A wait is reported to the observer and kept in v, if
// any, for the statement's audit line.
func (m *Machine) waitOutsideQueue(v *verdict, run func(string) (outcome, error), ask string, inBlock bool, deadline time.Duration, refuse func(blocker, time.Duration, time.Duration) *policy.Finding) *policy.Finding {
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
		if v != nil {
			who, _ := b.describe()
			v.queueWait, v.queueBlocker = took, who+" "+b.app
		}
		m.obs.LockQueueWait(m.state.Target, took, looks, b.app, outcome)
		m.log.Info("lock queue: the wait ended", "outcome", outcome, "waited", took.Round(time.Millisecond).String(), "looks", looks)
	}
	for {
		out, err := run(ask)
		if inBlock && err == nil {
			if _, err = run(clearActivitySQL); err != nil {
				return nil
			}
		}
		if err != nil || out.errCode != "" || len(out.rows) != 1 || len(out.rows[0]) != 9 {
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
		if (inBlock && b.hostage) || time.Since(start)+wait > deadline {
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
		if inBlock {
			// The block may hold locks (its earlier statements') that a
			// session can start waiting for at any moment: each look
			// finds out (b.hostage), so the looks come often enough that
			// such a session waits no longer than one of them.
			wait = 100 * time.Millisecond
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
	b := blocker{pid: s(0), user: s(1), app: s(2), client: s(3), state: s(4), gid: s(7), hostage: s(8) == "t"}
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
	if b.state == "" && b.gid == "" && b.age == 0 {
		// pg_stat_activity hides another role's session from a role
		// without pg_read_all_stats (lockQueueKnownSQL).
		parts = append(parts, "its activity is hidden from this role (pg_read_all_stats shows it)")
	} else {
		parts = append(parts, "its transaction has run "+b.age.String())
	}
	what = strings.Join(parts, ", ")
	if b.query != "" {
		what += ". Its query: " + b.query
	}
	if b.gid != "" {
		return "prepared transaction " + pgcatalog.QuoteLiteral(b.gid), what
	}
	return "pid " + b.pid, what
}

// endRecipe is the hint's way to end b's transaction.
func (b blocker) endRecipe() string {
	if b.gid != "" {
		// No backend to terminate: only COMMIT or ROLLBACK PREPARED
		// ends it (run by its owner or a superuser, in its database).
		return "ROLLBACK PREPARED " + pgcatalog.QuoteLiteral(b.gid) + ";"
	}
	return "SELECT pg_terminate_backend(" + b.pid + ");"
}

func lockQueueRefusal(b blocker, mode string, waited, deadline time.Duration) *policy.Finding {
	who, what := b.describe()
	if b.hostage {
		return &policy.Finding{RuleID: "lock-queue", Action: policy.Reject, Lock: mode,
			Message: fmt.Sprintf("another session (%s) has held or awaited a lock on the table that conflicts with this statement's %s for %s, and other sessions already wait for locks this transaction holds; waiting for it would keep them waiting",
				who, mode, b.age),
			Detail: fmt.Sprintf("pgguard refused at once (after %s) instead of waiting outside the lock queue up to lock_queue.deadline %s: this transaction block took locks earlier that other sessions are waiting for, and they would wait as long. In the way: %s (%s).",
				waited.Round(time.Millisecond), deadline, who, what),
			Hint: "-- roll this transaction back and run the migration again once that session's transaction has ended, or end it:\n" +
				b.endRecipe(),
		}
	}
	return &policy.Finding{RuleID: "lock-queue", Action: policy.Reject, Lock: mode,
		Message: fmt.Sprintf("another session (%s) has held or awaited a lock on the table that conflicts with this statement's %s for %s; this statement would wait behind it, and every query on the table that conflicts with %s behind this statement",
			who, mode, b.age, mode),
		Detail: fmt.Sprintf("pgguard waited %s (lock_queue.deadline %s) outside the lock queue, so that no query on the table queued behind this statement, for %s (%s).",
			waited.Round(time.Millisecond), deadline, who, what),
		Hint: "-- run the migration again once that session's transaction has ended, or end it:\n" +
			b.endRecipe(),
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

// concurrentOperationRelation returns an SQL expression for the OID of the
// table a one-statement REINDEX (INDEX or TABLE) CONCURRENTLY or DROP INDEX
// CONCURRENTLY (the client's own or a rewrite) works on, or "". Not for
// REINDEX SCHEMA or DATABASE, which work on many tables.
func concurrentOperationRelation(v *verdict) string {
	if len(v.decisions) != 1 {
		return ""
	}
	sql := v.decisions[0].Statement.Text
	if v.rewritten != "" {
		sql = v.rewritten
	}
	tree, err := sqltext.PgParse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return ""
	}
	indexTable := func(name string) string {
		return "(SELECT x.indrelid FROM pg_catalog.pg_index x WHERE x.indexrelid = pg_catalog.to_regclass(" + pgcatalog.QuoteLiteral(name) + "))"
	}
	switch n := tree.Stmts[0].Stmt; {
	case n.GetReindexStmt() != nil:
		rs := n.GetReindexStmt()
		concurrent := false
		for _, p := range rs.Params {
			if p.GetDefElem().GetDefname() == "concurrently" {
				concurrent = true // as the policy reads it (statementFacts)
			}
		}
		if !concurrent || rs.Relation == nil {
			return ""
		}
		name := policy.TableOf(rs.Relation).String()
		switch rs.Kind {
		case pg_query.ReindexObjectType_REINDEX_OBJECT_TABLE:
			return "pg_catalog.to_regclass(" + pgcatalog.QuoteLiteral(name) + ")::oid"
		case pg_query.ReindexObjectType_REINDEX_OBJECT_INDEX:
			return indexTable(name)
		}
	case n.GetDropStmt() != nil:
		ds := n.GetDropStmt()
		if !ds.Concurrent || ds.RemoveType != pg_query.ObjectType_OBJECT_INDEX || len(ds.Objects) != 1 {
			return ""
		}
		l := ds.Objects[0].GetList()
		if l == nil {
			return ""
		}
		var parts []string
		for _, it := range l.Items {
			parts = append(parts, policy.QuoteIdent(it.GetString_().GetSval()))
		}
		return indexTable(strings.Join(parts, "."))
	}
	return ""
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
	res, err := sqltext.PgParse(sql)
	return err == nil && len(res.Stmts) == 1 && res.Stmts[0].Stmt.GetLockStmt() != nil
}

// buildWaitsSQL finds the sessions of this database, other than this one,
// whose transactions a concurrent index build of table started now would
// wait for, as PostgreSQL 15's DefineIndex does: in its waits for writers
// (WaitForLockers), a transaction that holds a lock on the table that
// conflicts with SHARE; in its wait for older snapshots
// (WaitForOlderSnapshots), a transaction with a snapshot (backend_xmin) in
// the same database, vacuum excepted (only client backends; a VACUUM they
// run is left out by its query). Only those whose transaction has run
// longer than threshold, the oldest first, at most 10: pid,
// application_name, state, the age of the transaction in seconds, and why.
func buildWaitsSQL(table string, threshold time.Duration) string {
	// Prepared transactions that wrote the table are waited for too
	// (WaitForLockers): they have no backend and no pg_stat_activity row;
	// their locks (pid NULL) and their transactionid lock share a
	// virtualtransaction, which names them in pg_prepared_xacts.
	prepared := "SELECT NULL::int, NULL::text, 'prepared', extract(epoch FROM now() - px.prepared)::float8, 'writes the table', px.gid, px.prepared" +
		" FROM pg_catalog.pg_prepared_xacts px WHERE px.database = pg_catalog.current_database()" +
		fmt.Sprintf(" AND px.prepared < now() - interval '%d milliseconds'", threshold.Milliseconds()) +
		" AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_locks x ON x.pid IS NULL AND x.locktype = 'transactionid'" +
		" AND x.virtualtransaction = l.virtualtransaction WHERE l.pid IS NULL AND l.locktype = 'relation'" +
		" AND l.relation = pg_catalog.to_regclass(" + pgcatalog.QuoteLiteral(table) + ")" +
		" AND l.mode IN (" + pgLocksModes(conflicts[policy.LockShare]) + ") AND x.transactionid = px.transaction)"
	return "SELECT * FROM (" + buildWaitsSessionsSQL(table, threshold) + " UNION ALL " + prepared + ") w ORDER BY 7 LIMIT 10"
}

func buildWaitsSessionsSQL(table string, threshold time.Duration) string {
	return "SELECT a.pid, a.application_name, a.state, extract(epoch FROM now() - a.xact_start)::float8," +
		" CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.pid = a.pid AND l.locktype = 'relation'" +
		" AND l.relation = pg_catalog.to_regclass(" + pgcatalog.QuoteLiteral(table) + ")" +
		" AND l.mode IN (" + pgLocksModes(conflicts[policy.LockShare]) + ")) THEN 'writes the table' ELSE 'holds a snapshot' END, NULL::text, a.xact_start" +
		" FROM pg_catalog.pg_stat_activity a" +
		" WHERE a.datname = pg_catalog.current_database() AND a.pid <> pg_catalog.pg_backend_pid() AND a.backend_type = 'client backend'" +
		fmt.Sprintf(" AND a.xact_start < now() - interval '%d milliseconds'", threshold.Milliseconds()) +
		" AND (a.backend_xmin IS NOT NULL OR EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.pid = a.pid AND l.locktype = 'relation'" +
		" AND l.relation = pg_catalog.to_regclass(" + pgcatalog.QuoteLiteral(table) + ")" +
		" AND l.mode IN (" + pgLocksModes(conflicts[policy.LockShare]) + ")))" +
		// No backslash: the session may read literals without
		// standard_conforming_strings.
		" AND NOT (a.state = 'active' AND pg_catalog.lower(pg_catalog.ltrim(a.query, ' ' || pg_catalog.chr(9) || pg_catalog.chr(10) || pg_catalog.chr(13))) LIKE 'vacuum%')" +
		""
}

// tellBuildWaits runs right before a concurrent index build of table is
// sent, outside any transaction block (its question's snapshot is its
// own): it finds the older sessions the build will wait for in its
// waiting phases (buildWaitsSQL) and tells the client at once, with a
// NOTICE naming them (pid, application_name, state, age; no query), the
// audit log (v.buildWaits, on the statement's line) and the metrics
// (pgguard_concurrent_build_waits_total, by application_name), and logs
// it. The build runs either way; it takes no lock that blocks the
// application meanwhile.
func (m *Machine) tellBuildWaits(v *verdict, table string, threshold time.Duration) *policy.Finding {
	out, err := m.textQuery(buildWaitsSQL(table, threshold))
	if err != nil || out.errCode != "" || len(out.rows) == 0 {
		return nil
	}
	var who []string
	var pids, ends []string
	for _, row := range out.rows {
		if len(row) != 7 {
			return nil
		}
		s := func(i int) string {
			if row[i] == nil {
				return ""
			}
			return *row[i]
		}
		w := observe.WaitedSession{PID: s(0), ApplicationName: s(1), State: s(2), Reason: s(4)}
		if secs, err := strconv.ParseFloat(s(3), 64); err == nil {
			w.AgeSeconds = secs
		}
		age := time.Duration(w.AgeSeconds * float64(time.Second)).Round(time.Second)
		desc := "pid " + w.PID + " ("
		if gid := s(5); gid != "" {
			desc = "prepared transaction " + pgcatalog.QuoteLiteral(gid) + " ("
			w.Reason += " (prepared transaction " + pgcatalog.QuoteLiteral(gid) + ")"
			ends = append(ends, "ROLLBACK PREPARED "+pgcatalog.QuoteLiteral(gid)+";")
		}
		v.buildWaits = append(v.buildWaits, w)
		if w.ApplicationName != "" {
			desc += "application_name " + w.ApplicationName + ", "
		}
		if w.State != "" {
			desc += w.State + ", "
		}
		who = append(who, desc+"its transaction has run "+age.String()+"; "+s(4)+")")
		if w.PID != "" {
			pids = append(pids, w.PID)
		}
	}
	var end []string
	if len(pids) > 0 {
		end = append(end, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ("+strings.Join(pids, ", ")+");")
	}
	end = append(end, ends...)
	n := &wire.PGError{Severity: "NOTICE", Code: "00000",
		Message: fmt.Sprintf("pgguard: concurrent build: the index build on %s will wait for %d older transaction(s) before it can finish: %s",
			table, len(who), strings.Join(who, ", ")),
		Detail: "A concurrent index build waits for every transaction that writes the table, and then for every transaction of this database " +
			"that holds a snapshot, that began before it; meanwhile it blocks no query of the application.",
		Hint: "-- to let it finish sooner, end those transactions, e.g.:\n" + strings.Join(end, "\n"),
	}
	m.log.Info("concurrent build: waits for older transactions", "sessions", strings.Join(pids, ","),
		"user", m.state.User, "database", m.state.Database)
	m.conns.ToClientMu.Lock()
	m.conns.ToClient.Write(m.forClient(n).Encode(nil, true))
	err = m.conns.ToClient.Flush()
	m.conns.ToClientMu.Unlock()
	_ = err // a client gone is found by what comes next
	return nil
}
