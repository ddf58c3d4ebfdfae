package pgcatalog

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// slowStatements are uat statements of built-ins whose constants
// production's planner folds, seconds of its CPU each, during which no
// interrupt is served (statement_timeout included): Boyer-Moore-Horspool's
// worst case in strpos (haystack × needle comparisons) from lpad and rpad,
// or from a megabyte's literal; numeric arithmetic on values of a hundred
// thousand digits, written in a few bytes ('1e131000'). Each is distinct
// (no answer cached).
func slowStatements() map[string]string {
	mod := "(('1e131000'::numeric/7) % ('1e65000'::numeric/3))"
	return map[string]string{
		"strpos_lpad":    "UPDATE accounts SET status = 'x' WHERE id < strpos(lpad('', 1000000, 'a'), rpad('b', 60000, 'a'))",
		"strpos_literal": "UPDATE accounts SET status = 'x' WHERE id < strpos('" + strings.Repeat("a", 1000000) + "', 'b" + strings.Repeat("a", 60000) + "')",
		"numeric_mod":    "UPDATE accounts SET status = 'x' WHERE id < " + strings.Repeat(mod+" + ", 15) + mod,
	}
}

func redteamDosRig(t *testing.T) (*pgtest.Server, *ConnQuerier, *LiveSizes, *Borrowed) {
	pg, prod, uat := redteamServer(t)
	for _, q := range []*ConnQuerier{prod, uat} {
		mustExec(t, q, "CREATE TABLE accounts (id int PRIMARY KEY, status text)")
	}
	mustExec(t, prod, "INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 1500) g")
	for _, q := range []*ConnQuerier{prod, uat} {
		analyze(t, q)
	}
	live := NewLiveSizes("production", ConnSpec{Upstream: pg.Addr(), User: pgtest.SCRAMUser, Password: pgtest.Password, Database: "production", ConnectTimeout: 5 * time.Second}, time.Minute, nil)
	if err := live.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pg, prod, live, &Borrowed{Catalog: &Catalog{Q: uat}, Src: live}
}

// TestRedteamPlannerQuestionHoldsProductionLocks: the question takes
// AccessShareLock on production's table when production parses it, and
// holds it until the transaction ends; the monitor connection's only
// bound is its statement_timeout, 60s (pgguard gives up on it after the
// connect timeout and 10s, closing the socket, but the backend folds on).
// A production migration's ALTER TABLE waits for the lock all that time,
// and every query of the table queues behind the ALTER: a uat user stalls
// production's table. Here production's own DDL, with a lock_timeout of
// 5s, must get its lock.
func TestRedteamPlannerQuestionHoldsProductionLocks(t *testing.T) {
	_, prod, live, b := redteamDosRig(t)
	for name, sql := range slowStatements() {
		t.Run(name, func(t *testing.T) {
			question, ok := PlannerQuestion(sql, b.sourceName(context.Background()))
			if !ok {
				return // not asked of production
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				live.EstimateRowsAt(context.Background(), question, policy.Table{Schema: "public", Name: "accounts"})
			}()
			// Until production's backend of the question holds its lock.
			for i := 0; ; i++ {
				rows, ok := prod.Query("SELECT count(*) FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid" +
					" WHERE a.application_name = 'pgguard-sizes' AND l.relation = 'public.accounts'::regclass AND l.granted AND a.pid <> pg_catalog.pg_backend_pid()")
				if ok && len(rows) == 1 && rows[0][0] != nil && *rows[0][0] != "0" {
					break
				}
				select {
				case <-done:
					return // answered (or given up) at once
				default:
				}
				if i > 400 {
					t.Fatal("the question never locked accounts")
				}
				time.Sleep(50 * time.Millisecond)
			}
			start := time.Now()
			_, err := prod.Conn.Exec(prod.Ctx, "SET lock_timeout = '5s'; ALTER TABLE accounts ADD COLUMN IF NOT EXISTS note text; RESET lock_timeout").ReadAll()
			t.Logf("production's ALTER TABLE: %v after %s", err, time.Since(start).Round(time.Millisecond))
			if err != nil {
				t.Errorf("production's own ALTER TABLE accounts waited 5s for the lock a uat statement's planner question holds: %v", err)
			}
			<-done
		})
	}
}

// TestRedteamPlannerQuestionsOpenConnections: each question opens a
// connection of its own to production, and nothing bounds how many are
// open at once. While production's own migration holds its table's lock
// (a rewrite of accounts), every uat session's question of that table
// (each its own statement, so none is answered from the cache) waits in
// production's lock queue, on a connection of its own, for up to the
// monitor connection's statement_timeout, a minute (pgguard gives up
// after the connect timeout and 10s and closes the socket; the backend
// waits on): uat sessions fill production's max_connections (or the
// monitor role's CONNECTION LIMIT). pgguard must not have more than one
// question at a time under way in production.
func TestRedteamPlannerQuestionsOpenConnections(t *testing.T) {
	pg, prod, live, b := redteamDosRig(t)
	// Production's migration, holding the lock.
	migration := connect(t, pg, "production")
	mustExec(t, migration, "SET default_transaction_read_only = off")
	mustExec(t, migration, "BEGIN")
	mustExec(t, migration, "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
	const sessions = 4
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < sessions; i++ {
		q, ok := PlannerQuestion(fmt.Sprintf("UPDATE accounts SET status = 'x' WHERE id < %d", 10+i), b.sourceName(ctx))
		if !ok {
			t.Fatal("no planner question")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			live.EstimateRowsAt(ctx, q, policy.Table{Schema: "public", Name: "accounts"})
		}()
	}
	most := 0
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		rows, ok := prod.Query("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = 'pgguard-sizes' AND query LIKE '%pgguard_question%' AND pid <> pg_catalog.pg_backend_pid()")
		if ok && len(rows) == 1 && rows[0][0] != nil {
			var n int
			fmt.Sscan(*rows[0][0], &n)
			if n > most {
				most = n
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("at most %d of production's connections held by questions at once", most)
	if most > 1 {
		t.Errorf("%d uat sessions held %d of production's connections with planner questions at once; want at most 1", sessions, most)
	}
	cancel()
	mustExec(t, migration, "ROLLBACK")
	wg.Wait()
}

// TestRedteamPlannerQuestionWritesProductionWAL: production parses the
// question as a temporary view, and a temporary view's rule is a row of
// pg_rewrite, a catalog that is WAL-logged (and TOASTed): the question's
// literals are written to production's WAL, which its standbys replay and
// its archive keeps, even though the transaction is rolled back. A uat
// statement's literal is bounded only by pgguard's MaxStatementMessage
// (256MB): each such statement (each its own, so not answered from the
// cache) writes that much of production's WAL. Here a 4MB literal must
// not make production write a megabyte of WAL.
func TestRedteamPlannerQuestionWritesProductionWAL(t *testing.T) {
	_, prod, live, b := redteamDosRig(t)
	lit := make([]byte, 0, 4<<20)
	sum := md5.Sum([]byte("seed"))
	for len(lit) < 4<<20 {
		sum = md5.Sum(sum[:])
		lit = append(lit, hex.EncodeToString(sum[:])...)
	}
	sql := "UPDATE accounts SET status = 'x' WHERE status = '" + string(lit) + "'"
	question, ok := PlannerQuestion(sql, b.sourceName(context.Background()))
	if !ok {
		return // not asked of production
	}
	lsn := func() string {
		rows, ok := prod.Query("SELECT pg_catalog.pg_current_wal_insert_lsn()::text")
		if !ok {
			t.Fatal(prod.Err)
		}
		return *rows[0][0]
	}
	before := lsn()
	rows, ok := live.EstimateRowsAt(context.Background(), question, policy.Table{Schema: "public", Name: "accounts"})
	after := lsn()
	res, _ := prod.Query("SELECT pg_catalog.pg_wal_lsn_diff('" + after + "', '" + before + "')::bigint")
	var wal int64
	fmt.Sscan(*res[0][0], &wal)
	t.Logf("estimate %d (%v); production wrote %d bytes of WAL for the question", rows, ok, wal)
	if wal > 1<<20 {
		t.Errorf("a uat statement with a 4MB literal made production write %d bytes of WAL (the question's temporary view)", wal)
	}
}
