package proxy

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Red team (issue 20): DDL that PostgreSQL 15 runs as a rewrite, an index
// rebuild or a scan of a large table under a lock that blocks writes,
// with shapes the rule fixtures do not generate. The server is the
// oracle: each statement is first run straight to PostgreSQL on a fresh
// schema, where the relfilenodes that change show what it rewrote, then
// through pgguard on another fresh schema.

// rt20bSchema is the base every case starts from: a table above the
// size threshold (50,000 rows, analyzed).
const rt20bSchema = "DROP SCHEMA IF EXISTS rt20b CASCADE; CREATE SCHEMA rt20b; GRANT ALL ON SCHEMA rt20b TO PUBLIC; " +
	"CREATE TABLE rt20b.t (id int, v varchar(20), n text); " +
	"INSERT INTO rt20b.t SELECT g, g::text, g::text FROM generate_series(1, 50000) g"

// rt20bFiles returns the relfilenode of every table and index in schema
// rt20b.
func rt20bFiles(t *testing.T, conn *pgx.Conn) map[string]uint32 {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT c.relname, c.relfilenode::int8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'rt20b' AND c.relkind IN ('r', 'i', 'm')")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint32{}
	for rows.Next() {
		var name string
		var f int64
		if err := rows.Scan(&name, &f); err != nil {
			t.Fatal(err)
		}
		m[name] = uint32(f)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// rt20bSetup recreates schema rt20b with setup on top of the base.
func rt20bSetup(t *testing.T, setup string) {
	t.Helper()
	sql := rt20bSchema
	if setup != "" {
		sql += "; " + setup
	}
	if err := pgExec("guard", strings.Split(sql+"; ANALYZE rt20b.t", "; ")...); err != nil {
		t.Fatalf("setup: %v", err)
	}
}

// rt20bRewritten runs stmt on conn and returns the relations of rt20b
// whose files it replaced, and its error.
func rt20bRewritten(t *testing.T, conn *pgx.Conn, stmt string) ([]string, error) {
	t.Helper()
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	defer direct.Close(context.Background())
	before := rt20bFiles(t, direct)
	_, err := conn.Exec(context.Background(), stmt)
	after := rt20bFiles(t, direct)
	var changed []string
	for k, v := range before {
		if w, ok := after[k]; ok && w != v {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	return changed, err
}

type rt20bCase struct {
	name, setup, stmt string
	// rewrites: PostgreSQL rewrites the table or rebuilds an index, so
	// pgguard must refuse; otherwise it must let the statement run.
	rewrites bool
}

func rt20bPlay(t *testing.T, cases []rt20bCase) {
	t.Helper()
	_, addr, _ := guardProxy(t, "", nil)
	t.Cleanup(func() { pgExec("guard", "DROP SCHEMA IF EXISTS rt20b CASCADE") })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt20bSetup(t, c.setup)
			// TimeZone UTC, where timestamp to timestamptz is catalog-only.
			direct := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&timezone=UTC")
			changed, err := rt20bRewritten(t, direct, c.stmt)
			if err != nil {
				t.Fatalf("straight to PostgreSQL: %s: %v", c.stmt, err)
			}
			if (len(changed) > 0) != c.rewrites {
				t.Fatalf("premise: straight to PostgreSQL %s replaced %v (want a rewrite: %v)", c.stmt, changed, c.rewrites)
			}
			rt20bSetup(t, c.setup)
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "timezone=UTC")
			changed, err = rt20bRewritten(t, conn, c.stmt)
			var pe *pgconn.PgError
			refused := errors.As(err, &pe) && pe.Code == "42501" && strings.HasPrefix(pe.Message, "pgguard: ")
			if refused {
				t.Logf("%s: %s", c.stmt, pe.Message)
			}
			switch {
			case c.rewrites && !refused:
				t.Errorf("%s: let through (err %v); PostgreSQL rebuilt %v of a 50,000-row table under ACCESS EXCLUSIVE", c.stmt, err, changed)
			case !c.rewrites && err != nil:
				t.Errorf("%s: refused (%v); PostgreSQL changes only the catalog", c.stmt, err)
			}
		})
	}
}

// ADD COLUMN of a domain type: PostgreSQL 15 rewrites the table when the
// domain has a constraint (CHECK or NOT NULL: every row's new value must
// be checked, ATExecAddColumn) or a volatile default, even with no
// DEFAULT in the statement and through a domain over a domain.
func TestRedteamAddColumnDomainRewrites(t *testing.T) {
	rt20bPlay(t, []rt20bCase{
		{"domain with CHECK", "CREATE DOMAIN rt20b.pos AS int CHECK (VALUE > 0)", "ALTER TABLE rt20b.t ADD COLUMN x rt20b.pos", true},
		{"domain NOT NULL DEFAULT 1", "CREATE DOMAIN rt20b.nn AS int NOT NULL DEFAULT 1", "ALTER TABLE rt20b.t ADD COLUMN x rt20b.nn", true},
		{"domain DEFAULT random()", "CREATE DOMAIN rt20b.r AS float8 DEFAULT random()", "ALTER TABLE rt20b.t ADD COLUMN x rt20b.r", true},
		{"domain over a domain with CHECK", "CREATE DOMAIN rt20b.pos AS int CHECK (VALUE > 0); CREATE DOMAIN rt20b.pos2 AS rt20b.pos", "ALTER TABLE rt20b.t ADD COLUMN x rt20b.pos2", true},
		{"domain without constraints", "CREATE DOMAIN rt20b.p AS int", "ALTER TABLE rt20b.t ADD COLUMN x rt20b.p", false},
		{"domain with a constant default", "CREATE DOMAIN rt20b.c AS int DEFAULT 7", "ALTER TABLE rt20b.t ADD COLUMN x rt20b.c", false},
	})
}

// A type change PostgreSQL makes without rewriting the table still
// rebuilds every index whose definition it cannot reuse: an expression or
// partial index on the column (CheckIndexCompatible refuses both), and any
// index on it when the collation or the operator class changes
// (timestamp to timestamptz, catalog-only with TimeZone UTC). The build reads the whole table
// under the ALTER's ACCESS EXCLUSIVE lock.
func TestRedteamTypeChangeRebuildsIndexes(t *testing.T) {
	rt20bPlay(t, []rt20bCase{
		{"varchar to text under an expression index", "CREATE INDEX rt20b_lower ON rt20b.t (lower(v))", "ALTER TABLE rt20b.t ALTER COLUMN v TYPE text", true},
		{"varchar to text under a partial index", "CREATE INDEX rt20b_part ON rt20b.t (id) WHERE v <> ''", "ALTER TABLE rt20b.t ALTER COLUMN v TYPE text", true},
		{"wider varchar under an expression index", "CREATE INDEX rt20b_lower ON rt20b.t (lower(v))", "ALTER TABLE rt20b.t ALTER COLUMN v TYPE varchar(30)", true},
		{"collation change on an indexed column", "CREATE INDEX rt20b_n ON rt20b.t (n)", `ALTER TABLE rt20b.t ALTER COLUMN n TYPE text COLLATE "C"`, true},
		{"timestamp to timestamptz in UTC on an indexed column", "CREATE INDEX rt20b_ts ON rt20b.t (id); ALTER TABLE rt20b.t ADD COLUMN ts timestamp DEFAULT '2026-01-01'; CREATE INDEX rt20b_tsi ON rt20b.t (ts)", "ALTER TABLE rt20b.t ALTER COLUMN ts TYPE timestamptz", true},
		{"varchar to text under a plain index", "CREATE INDEX rt20b_v ON rt20b.t (v)", "ALTER TABLE rt20b.t ALTER COLUMN v TYPE text", false},
		{"collation change on a column without index", "", `ALTER TABLE rt20b.t ALTER COLUMN n TYPE text COLLATE "C"`, false},
	})
}

// ALTER TYPE ... ALTER ATTRIBUTE ... TYPE ... CASCADE rewrites every typed
// table of the composite type (CREATE TABLE ... OF type); pgguard did not
// look at ALTER TYPE at all.
func TestRedteamAlterTypeAttributeRewritesTypedTable(t *testing.T) {
	rt20bPlay(t, []rt20bCase{
		{"typed table", "CREATE TYPE rt20b.ct AS (a int, b text); CREATE TABLE rt20b.tt OF rt20b.ct; INSERT INTO rt20b.tt SELECT g, g::text FROM generate_series(1, 50000) g; ANALYZE rt20b.tt",
			"ALTER TYPE rt20b.ct ALTER ATTRIBUTE a TYPE bigint CASCADE", true},
		{"no typed table, no CASCADE", "CREATE TYPE rt20b.ct AS (a int, b text)", "ALTER TYPE rt20b.ct ALTER ATTRIBUTE a TYPE bigint", false},
		{"typed table, wider varchar", "CREATE TYPE rt20b.ct AS (a varchar(10)); CREATE TABLE rt20b.tt OF rt20b.ct; INSERT INTO rt20b.tt SELECT g::text FROM generate_series(1, 50000) g; ANALYZE rt20b.tt",
			"ALTER TYPE rt20b.ct ALTER ATTRIBUTE a TYPE varchar(20) CASCADE", false},
	})
}

// A column changed to a domain over its own type with no constraint is
// binary coercible: PostgreSQL neither rewrites nor scans
// (ATColumnChangeRequiresRewrite), but pgguard refuses it as a rewrite.
func TestRedteamTypeChangeToPlainDomainRefused(t *testing.T) {
	rt20bPlay(t, []rt20bCase{
		{"text to a domain over text", "CREATE DOMAIN rt20b.tx AS text; CREATE INDEX rt20b_n ON rt20b.t (n)", "ALTER TABLE rt20b.t ALTER COLUMN n TYPE rt20b.tx", false},
		{"varchar(20) to a domain over varchar(30)", "CREATE DOMAIN rt20b.tv AS varchar(30)", "ALTER TABLE rt20b.t ALTER COLUMN v TYPE rt20b.tv", false},
		{"a domain column back to its base type", "CREATE DOMAIN rt20b.tx AS text CHECK (VALUE <> ''); ALTER TABLE rt20b.t ADD COLUMN d rt20b.tx", "ALTER TABLE rt20b.t ALTER COLUMN d TYPE text", false},
		// and what must still be refused:
		{"text to a domain with a CHECK", "CREATE DOMAIN rt20b.tc AS text CHECK (VALUE <> '')", "ALTER TABLE rt20b.t ALTER COLUMN n TYPE rt20b.tc", true},
		{"varchar(20) to a domain over varchar(10)", "CREATE DOMAIN rt20b.ts AS varchar(10)", "ALTER TABLE rt20b.t ALTER COLUMN v TYPE rt20b.ts USING left(v, 10)", true},
	})
}

// ALTER DOMAIN ... ADD CONSTRAINT (without NOT VALID), SET NOT NULL and
// VALIDATE CONSTRAINT scan every table with a column of the domain under
// a SHARE lock (validateDomainConstraint, AlterDomainNotNull), which
// blocks every write. pgguard treats them as taking no lock at all, so
// they run without lock_timeout and queue behind any writer for as long
// as it lasts, with every later writer of the table queued behind them.
func TestRedteamAlterDomainGetsLockTimeout(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	t.Cleanup(func() { pgExec("guard", "DROP SCHEMA IF EXISTS rt20b CASCADE") })
	for _, c := range []struct{ name, setup, stmt string }{
		{"ADD CONSTRAINT CHECK", "", "ALTER DOMAIN rt20b.d ADD CONSTRAINT d_pos CHECK (VALUE > 0)"},
		{"SET NOT NULL", "", "ALTER DOMAIN rt20b.d SET NOT NULL"},
		{"VALIDATE CONSTRAINT", "ALTER DOMAIN rt20b.d ADD CONSTRAINT d_pos CHECK (VALUE > 0) NOT VALID", "ALTER DOMAIN rt20b.d VALIDATE CONSTRAINT d_pos"},
	} {
		t.Run(c.name, func(t *testing.T) {
			setup := "CREATE DOMAIN rt20b.d AS int; ALTER TABLE rt20b.t ADD COLUMN x rt20b.d DEFAULT 1"
			if c.setup != "" {
				setup += "; " + c.setup
			}
			rt20bSetup(t, setup)
			// The oracle: straight to PostgreSQL the statement holds SHARE
			// on the table.
			direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, direct, "BEGIN")
			mustExec(t, direct, c.stmt)
			var mode string
			if err := direct.QueryRow(ctx, "SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'rt20b.t'::regclass").Scan(&mode); err != nil || mode != "ShareLock" {
				t.Fatalf("premise: %s straight to PostgreSQL holds %q on rt20b.t (%v), want ShareLock", c.stmt, mode, err)
			}
			mustExec(t, direct, "ROLLBACK")

			// A writer's open transaction; through pgguard the statement
			// must give up after lock_timeout (or be refused), not wait
			// for the writer.
			mustExec(t, direct, "BEGIN")
			mustExec(t, direct, "INSERT INTO rt20b.t (id) VALUES (0)")
			defer direct.Exec(ctx, "ROLLBACK")
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			start := time.Now()
			_, err := conn.Exec(tctx, c.stmt)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || (pe.Code != "55P03" && pe.Code != "42501") {
				t.Fatalf("%s behind a writer: %v after %v; want lock_timeout's 55P03 (or a refusal)", c.stmt, err, time.Since(start).Round(time.Second))
			}
		})
	}
}

// The same statements scan a table of 50,000 rows under SHARE: a scan
// that blocks writes for as long as the table is big, as ADD CHECK
// without NOT VALID does on a table (rule add-check-constraint). The
// server is the oracle: straight to PostgreSQL each statement scans
// rt20b.t (pg_stat_xact_user_tables) or not, and pgguard must refuse
// exactly those that scan it, judging by the catalog's tables of the
// domain (and of domains over it) and their sizes. A domain whose only
// table is small, the catalog-only forms, and a statement PostgreSQL
// refuses itself (an array of the domain) are not refused.
func TestRedteamAlterDomainScanRefused(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	t.Cleanup(func() { pgExec("guard", "DROP SCHEMA IF EXISTS rt20b CASCADE") })
	const onBig = "CREATE DOMAIN rt20b.d AS int; ALTER TABLE rt20b.t ADD COLUMN x rt20b.d DEFAULT 1"
	for _, c := range []struct {
		name, setup, stmt string
		refused           bool
	}{
		{"ADD CONSTRAINT CHECK", onBig, "ALTER DOMAIN rt20b.d ADD CONSTRAINT d_pos CHECK (VALUE > 0)", true},
		{"ADD CHECK, unnamed", onBig, "ALTER DOMAIN rt20b.d ADD CHECK (VALUE > 0)", true},
		{"SET NOT NULL", onBig, "ALTER DOMAIN rt20b.d SET NOT NULL", true},
		{"VALIDATE CONSTRAINT", onBig + "; ALTER DOMAIN rt20b.d ADD CONSTRAINT d_pos CHECK (VALUE > 0) NOT VALID", "ALTER DOMAIN rt20b.d VALIDATE CONSTRAINT d_pos", true},
		{"ADD CONSTRAINT, the big table's column is of a domain over it",
			"CREATE DOMAIN rt20b.d AS int; CREATE DOMAIN rt20b.d2 AS rt20b.d; ALTER TABLE rt20b.t ADD COLUMN x rt20b.d2 DEFAULT 1",
			"ALTER DOMAIN rt20b.d ADD CONSTRAINT d_pos CHECK (VALUE > 0)", true},
		{"ADD CONSTRAINT, a materialized view of the domain",
			"CREATE DOMAIN rt20b.d AS int; CREATE MATERIALIZED VIEW rt20b.mv AS SELECT id::rt20b.d AS x FROM rt20b.t; ANALYZE rt20b.mv",
			"ALTER DOMAIN rt20b.d ADD CONSTRAINT d_pos CHECK (VALUE > 0)", true},
		// and what must pass:
		{"ADD CONSTRAINT, only a small table of the domain",
			"CREATE DOMAIN rt20b.d AS int; CREATE TABLE rt20b.s (x rt20b.d); INSERT INTO rt20b.s SELECT g FROM generate_series(1, 10) g; ANALYZE rt20b.s",
			"ALTER DOMAIN rt20b.d ADD CONSTRAINT d_pos CHECK (VALUE > 0)", false},
		{"SET NOT NULL, NOT NULL already", onBig + "; ALTER DOMAIN rt20b.d SET NOT NULL", "ALTER DOMAIN rt20b.d SET NOT NULL", false},
		{"SET NOT NULL, no column of the domain", "CREATE DOMAIN rt20b.d AS int", "ALTER DOMAIN rt20b.d SET NOT NULL", false},
		{"ADD CONSTRAINT NOT VALID", onBig, "ALTER DOMAIN rt20b.d ADD CONSTRAINT d_pos CHECK (VALUE > 0) NOT VALID", false},
		{"DROP CONSTRAINT", onBig + "; ALTER DOMAIN rt20b.d ADD CONSTRAINT d_pos CHECK (VALUE > 0) NOT VALID", "ALTER DOMAIN rt20b.d DROP CONSTRAINT d_pos", false},
		{"DROP DEFAULT", onBig + "; ALTER DOMAIN rt20b.d SET DEFAULT 1", "ALTER DOMAIN rt20b.d DROP DEFAULT", false},
		{"RENAME", onBig, "ALTER DOMAIN rt20b.d RENAME TO d3", false},
		{"ADD CONSTRAINT, an array of the domain (PostgreSQL refuses it)", "CREATE DOMAIN rt20b.d AS int; ALTER TABLE rt20b.t ADD COLUMN x rt20b.d[]",
			"ALTER DOMAIN rt20b.d ADD CONSTRAINT d_pos CHECK (VALUE > 0)", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The oracle: straight to PostgreSQL, does it scan rt20b.t?
			rt20bSetup(t, c.setup)
			direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			defer direct.Close(ctx)
			mustExec(t, direct, "BEGIN")
			_, directErr := direct.Exec(ctx, c.stmt)
			scans := int64(0)
			if directErr == nil {
				if err := direct.QueryRow(ctx, "SELECT coalesce(sum(seq_scan), 0)::int8 FROM pg_stat_xact_user_tables WHERE schemaname = 'rt20b' AND relname IN ('t', 'mv')").Scan(&scans); err != nil {
					t.Fatal(err)
				}
			}
			direct.Exec(ctx, "ROLLBACK")
			if (scans > 0) != c.refused {
				t.Fatalf("premise: straight to PostgreSQL %s scanned rt20b's big relation %d times (error %v); the case says refused=%v", c.stmt, scans, directErr, c.refused)
			}

			rt20bSetup(t, c.setup)
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			_, err := conn.Exec(ctx, c.stmt)
			var pe *pgconn.PgError
			refused := errors.As(err, &pe) && pe.Code == "42501"
			if refused != c.refused {
				t.Fatalf("%s through pgguard: %v; want refused=%v", c.stmt, err, c.refused)
			}
			if refused && !strings.Contains(pe.Message, "alter-domain-constraint") {
				t.Fatalf("%s refused by another rule: %s", c.stmt, pe.Message)
			}
			if !refused && (err == nil) != (directErr == nil) {
				t.Fatalf("%s: through pgguard %v, straight to PostgreSQL %v", c.stmt, err, directErr)
			}
		})
	}
}
