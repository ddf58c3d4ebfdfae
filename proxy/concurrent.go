package proxy

import (
	"context"
	"fmt"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy"
)

// A CONCURRENTLY statement takes only SHARE UPDATE EXCLUSIVE, which blocks
// no reads or writes, but it waits for every transaction that could see the
// table: the session's short lock_timeout would kill it for nothing. pgguard
// lifts lock_timeout (and applies concurrent_statement_timeout) around it,
// restores both afterwards, and drops the INVALID index a failed or
// cancelled build leaves behind, so the migration can simply run again.

// liftSQL saves lock_timeout in a custom setting and replaces it with the
// policy's concurrent_statement_timeout (0: none) for the concurrent
// statement. Saving it on the server keeps a lower value the client set.
func liftSQL(timeout time.Duration) string {
	return fmt.Sprintf("SELECT set_config('pgguard.saved_lock_timeout', current_setting('lock_timeout'), false), "+
		"set_config('lock_timeout', '%dms', false)", timeout.Milliseconds())
}

const restoreSQL = "SELECT set_config('lock_timeout', current_setting('pgguard.saved_lock_timeout'), false)"

// beginConcurrent sends the lift and returns the sync point the statement
// must use and the function to call once the statement has been sent.
func (s *Session) beginConcurrent(v *verdict) (*syncPoint, func() error, error) {
	cfg := s.srv.cfg.Policy.Engine().Config()
	if err := s.internalSend(liftSQL(time.Duration(cfg.ConcurrentStatementTimeout))); err != nil {
		return nil, nil, err
	}
	sp := &syncPoint{notices: v.notices, creates: v.creates, done: make(chan outcome, 1), holdReady: true}
	finish := func() error {
		out, clientLeft := s.awaitOutcome(sp.done)
		if out.closed {
			return errSessionClosed
		}
		if clientLeft && out.errCode != "" {
			s.cleanupInvalidIndex(v, out)
			return errClientLeft
		}
		if _, err := s.internalQuery(restoreSQL); err != nil {
			return err
		}
		if out.errCode != "" {
			s.cleanupInvalidIndex(v, out)
		}
		// Only now may the client go on, say to run the migration again.
		s.cwMu.Lock()
		defer s.cwMu.Unlock()
		writeMessage(s.cw, msgReadyForQuery, []byte{out.status})
		return s.cw.Flush()
	}
	return sp, finish, nil
}

// runConcurrent sends a one-statement CONCURRENTLY Query with the lift
// around it and waits for it.
func (s *Session) runConcurrent(v *verdict, events []*StatementEvent, msg []byte) error {
	sp, finish, err := s.beginConcurrent(v)
	if err != nil {
		return err
	}
	sp.events = events
	sp.seq = s.newSyncPoint()
	s.syncs.push(sp)
	if err := s.send(msg); err != nil {
		return err
	}
	return finish()
}

// cleanupInvalidIndex drops the index a failed CREATE INDEX CONCURRENTLY
// left INVALID. It drops only the index the statement named, and only when
// the catalog says it is invalid: a build in progress elsewhere has an
// invalid index too, under another name.
func (s *Session) cleanupInvalidIndex(v *verdict, out outcome) {
	name := concurrentIndexName(v)
	if name == "" {
		if v.ddl {
			s.log.Warn("a concurrent build failed; if it left an INVALID index, drop it before re-running", "sqlstate", out.errCode)
		}
		return
	}
	cat := &sessionCatalog{s: s}
	exists, valid, ok := cat.Index(context.Background(), name)
	if !ok || !exists || valid {
		return
	}
	res, err := s.internalQuery("DROP INDEX CONCURRENTLY IF EXISTS " + name)
	if err != nil || res.errCode != "" {
		s.log.Error("could not drop the INVALID index a failed concurrent build left behind; drop it before re-running",
			"index", name, "sqlstate", res.errCode, "error", res.errMsg)
		return
	}
	s.log.Warn("dropped the INVALID index a failed concurrent build left behind", "index", name, "sqlstate", out.errCode, "error", out.errMsg)
	s.srv.hooks().ConcurrentCleanup(s.target.Name)
}

// concurrentIndexName returns the (quoted where needed) name of the index a
// one-statement CREATE INDEX CONCURRENTLY creates, or "" if it names none.
func concurrentIndexName(v *verdict) string {
	if len(v.decisions) != 1 {
		return ""
	}
	sql := v.decisions[0].Statement.Text
	if v.rewritten != "" {
		sql = v.rewritten
	}
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return ""
	}
	is := tree.Stmts[0].Stmt.GetIndexStmt()
	if is == nil || !is.Concurrent || is.Idxname == "" {
		return ""
	}
	name := policy.QuoteIdent(is.Idxname)
	if is.Relation != nil && is.Relation.Schemaname != "" {
		name = policy.QuoteIdent(is.Relation.Schemaname) + "." + name
	}
	return name
}
