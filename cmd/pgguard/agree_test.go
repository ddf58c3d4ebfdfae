package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/pgguard/pgguard/policy/sqltext"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/proxy"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestLintAgreesWithProxy runs every rule fixture (policy/testdata/<rule>/
// ok.sql and bad.sql) through `pgguard lint` and through the proxy in front
// of a real PostgreSQL, and requires the same decision: the same overall
// action and the same rules behind it.
//
// A directive that stands for earlier statements of the same transaction
// (in-transaction, created=, exclusive=, not-valid=) is reproduced by
// running those statements first on both sides. Directives that describe
// what lint cannot know (catalog facts, the role, the tool, a statement
// that is not alone) or another server version make the statement
// skipped, and counted. PGGUARD_AGREE_LOG=1 logs every decision.
func TestLintAgreesWithProxy(t *testing.T) {
	start := time.Now()
	pg := pgtest.Must(t, pgtest.Options{})
	ctx := context.Background()
	db, err := pg.CreateDatabase("agree")
	if err != nil {
		t.Fatal(err)
	}
	major := pg.Version / 10000
	cfg, err := policy.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	if major != cfg.AssumePGVersion {
		// Statements without a pg= directive are written for the assumed
		// version, which is what lint checks them against.
		msg := fmt.Sprintf("the fixtures assume PostgreSQL %d; this server is %d", cfg.AssumePGVersion, major)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip("skipping: " + msg)
	}

	pol, addr := startAgreeProxy(t, pg)
	admin, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", pgtest.SuperUser, pg.Addr(), db))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	state := &serverState{conn: admin}
	state.baseline = state.fingerprint(t)

	sess := dialAgree(t, fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", pgtest.SuperUser, addr, db))
	defer sess.conn.Close(ctx)

	var st agreeStats
	st.skipped = map[string]int{}
	st.actions = map[policy.Action]int{}
	used := map[int]bool{} // knownDifferences entries that matched
	for _, rule := range policy.Rules() {
		eng := agreeEngine(t, rule)
		pol.Swap(eng)
		for _, file := range []string{"ok.sql", "bad.sql"} {
			path := filepath.Join("..", "..", "policy", "testdata", rule.ID, file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sqltext.Split(string(data)) {
				where := fmt.Sprintf("%s/%s:%d", rule.ID, file, s.Line)
				fx, skip := parseAgreeContext(s.Text, major)
				st.total++
				if len(fx.items) == 0 {
					st.plain++
				}
				if len(skip) > 0 {
					for _, r := range skip {
						st.skipped[r]++
					}
					st.skippedStmts++
					continue
				}
				for _, table := range append(fx.existing(), named(s.Text, fx)...) {
					// Lint assumes a table it knows nothing of is large;
					// so does the proxy's catalog after this (5M rows).
					if _, err := admin.Exec(ctx, table.create); err != nil {
						t.Fatalf("%s: %s: %v", where, table.create, err)
					}
					if _, err := admin.Exec(ctx, "UPDATE pg_catalog.pg_class SET reltuples = 5000000 WHERE oid = $1::regclass", table.name); err != nil {
						t.Fatalf("%s: making %s look large: %v", where, table.name, err)
					}
				}
				lint := lintVerdict(t, eng, fx, s.Text)
				got := sess.verdict(t, fx, s.Text)
				state.restore(t)
				st.compared++
				st.actions[got.action]++
				if os.Getenv("PGGUARD_AGREE_LOG") != "" {
					t.Logf("%s: lint %s, proxy %s", where, lint.key(), got.key())
				}
				if len(fx.items) == 0 {
					st.plainCompared++
				}
				if lint.key() == got.key() {
					continue
				}
				if i := knownDifference(rule.ID, file, s.Text, lint, got); i >= 0 {
					used[i] = true
					st.documented++
					continue
				}
				t.Errorf("%s: lint and the proxy disagree on\n%s\n  lint:  %s\n%s  proxy: %s\n%s",
					where, indentSQL(s.Text), lint.key(), lint.details(), got.key(), got.details())
			}
		}
	}
	for i, d := range knownDifferences {
		if !used[i] {
			t.Errorf("documented difference no longer seen (remove it from knownDifferences): %s/%s %q", d.rule, d.file, d.statement)
		}
	}

	reasons := make([]string, 0, len(st.skipped))
	for r, n := range st.skipped {
		reasons = append(reasons, fmt.Sprintf("%s: %d", r, n))
	}
	sort.Strings(reasons)
	t.Logf("%d fixture statements: %d compared (%d of them documented differences), %d skipped; "+
		"%d without context directives, %d of them compared; in %s",
		st.total, st.compared, st.documented, st.skippedStmts, st.plain, st.plainCompared, time.Since(start).Round(time.Millisecond))
	t.Logf("the proxy's decisions on the compared statements: %d allow, %d warn, %d rewrite, %d reject",
		st.actions[policy.Allow], st.actions[policy.Warn], st.actions[policy.Rewrite], st.actions[policy.Reject])
	t.Logf("skipped statements by directive (a statement may count under several): %s", strings.Join(reasons, ", "))
	if st.plain == 0 || st.plainCompared*5 < st.plain*4 {
		t.Errorf("compared only %d of the %d fixture statements without context directives (want at least 80%%)", st.plainCompared, st.plain)
	}
	if st.compared < 200 {
		t.Errorf("compared only %d fixture statements: the test would pass vacuously", st.compared)
	}
}

// startAgreeProxy runs pgguard in-process in front of pg; the test swaps
// the engine of the returned Policy for each rule's fixtures.
func startAgreeProxy(t *testing.T, pg *pgtest.Server) (*proxy.Policy, string) {
	t.Helper()
	pol := proxy.NewPolicy(agreeEngine(t, nil))
	srv, err := proxy.New(proxy.Config{
		Targets: []proxy.Target{{Name: "agree", Listen: "127.0.0.1:0", Upstream: pg.Addr()}},
		Policy:  pol,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	return pol, srv.Addrs()[0].String()
}

type agreeStats struct {
	total, compared, documented, skippedStmts int
	plain, plainCompared                      int // statements without directives
	skipped                                   map[string]int
	actions                                   map[policy.Action]int // the proxy's, on compared statements
}

// agreeEngine is the engine the policy fixtures use (fixtureEngine in
// package policy): the built-in rules, rule enabled at reject when it is
// off by default, and the role fixture_admin allowed to annotate.
func agreeEngine(t *testing.T, rule *policy.Rule) *policy.Engine {
	t.Helper()
	cfg, err := policy.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rule != nil && rule.Default == policy.LevelOff {
		cfg.Rules[rule.ID] = policy.LevelReject
	}
	cfg.Annotations.AllowedRoles = []string{"fixture_admin"}
	e, err := policy.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// agreeContext is what the test reproduces of a statement's directives.
type agreeContext struct {
	items         []string // every directive item
	inTransaction bool
	pgVersion     int      // from pg=N (the server's own major version)
	created       []string // created=TABLE
	exclusive     []string // exclusive=TABLE
	notValid      []notValidItem
}

// notValidItem is a not-valid=TABLE.CONSTRAINT (or not-valid-fk=) directive.
type notValidItem struct {
	table, constraint string // as SQL writes them
	fk                bool
}

// parseAgreeContext reads the `-- context:` directives of a fixture
// statement and returns, as skip, the directives the test cannot
// reproduce on a real server the way lint would see them.
func parseAgreeContext(text string, serverMajor int) (c agreeContext, skip []string) {
	for _, line := range strings.Split(text, "\n") {
		body, ok := strings.CutPrefix(strings.TrimSpace(line), "--")
		if !ok {
			continue
		}
		body, ok = strings.CutPrefix(strings.TrimSpace(body), "context:")
		if !ok {
			continue
		}
		for _, item := range strings.Fields(body) {
			c.items = append(c.items, item)
			key, val, _ := strings.Cut(item, "=")
			switch key {
			case "in-transaction":
				c.inTransaction = true
			case "created":
				if t := policy.ParseTableName(val); t.Schema != "" && t.Schema != "public" && !policy.IsTempSchema(t.Schema) {
					// The test keeps to the public schema.
					skip = append(skip, "created= in another schema")
					continue
				}
				c.created = append(c.created, val)
			case "pg":
				if n, err := strconv.Atoi(val); err == nil && n == serverMajor {
					c.pgVersion = n
					continue
				}
				skip = append(skip, "pg=N (not the server's version)")
			case "exclusive":
				// An earlier statement of the transaction took the lock:
				// both sides see that statement (LOCK TABLE).
				c.exclusive = append(c.exclusive, val)
			case "not-valid", "not-valid-fk":
				// An earlier statement of the transaction added the
				// constraint NOT VALID: both sides see that statement.
				table, constraint, ok := splitQualified(val)
				if !ok {
					skip = append(skip, key+" (unreadable)")
					continue
				}
				c.notValid = append(c.notValid, notValidItem{table: table, constraint: constraint, fk: key == "not-valid-fk"})
			default:
				// Catalog facts (small=, large=, rows=, column-type=, ...)
				// and the session (user=, tool=, not-alone): lint cannot
				// know them, so the two are not expected to agree.
				skip = append(skip, key)
			}
		}
	}
	if !c.inTransaction && (len(c.exclusive) > 0 || len(c.notValid) > 0) {
		// The proxy remembers locks and NOT VALID constraints only until
		// the transaction ends, which in autocommit is the statement's end.
		skip = append(skip, "exclusive= or not-valid= outside a transaction")
	}
	return c, skip
}

// splitQualified splits TABLE.CONSTRAINT at its last dot outside quotes.
func splitQualified(s string) (table, name string, ok bool) {
	inQ, dot := false, -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQ = !inQ
		case '.':
			if !inQ {
				dot = i
			}
		}
	}
	if dot <= 0 || dot == len(s)-1 {
		return "", "", false
	}
	return s[:dot], s[dot+1:], true
}

// existing lists the tables that must exist before the statement's
// transaction begins: those the earlier statements of exclusive= and
// not-valid= directives act on, unless created= creates them. A
// not-valid-fk table gets two columns for a foreign key to itself.
func (c agreeContext) existing() []existingTable {
	var out []existingTable
	seen := map[string]bool{}
	for _, t := range c.created {
		seen[t] = true
	}
	add := func(t string, fk bool) {
		if seen[t] {
			return
		}
		seen[t] = true
		cols := "()"
		if fk {
			cols = "(agree_id int PRIMARY KEY, agree_ref int)"
		}
		out = append(out, existingTable{name: t, create: "CREATE TABLE " + t + " " + cols})
	}
	for _, nv := range c.notValid {
		add(nv.table, nv.fk)
	}
	for _, t := range c.exclusive {
		add(t, false)
	}
	return out
}

type existingTable struct{ name, create string }

// named lists the relations a statement names that lint takes to exist
// (and, knowing nothing of them, to be large), and that neither the
// statement nor its directives create: the proxy asks the server, which
// must say the same, or the proxy would rightly let the server answer a
// statement about a relation that does not exist. Left out: names in other
// schemas than public (the test keeps to the public schema), temporary
// ones, and migration ledgers (lint takes those as small).
func named(text string, fx agreeContext) []existingTable {
	tree, err := pg_query.Parse(text)
	if err != nil {
		return nil
	}
	skip := map[string]bool{}
	for _, t := range fx.created {
		skip[t] = true
	}
	for _, t := range fx.existing() {
		skip[t.name] = true
	}
	var out []existingTable
	add := func(t policy.Table) {
		if t.Name == "" || (t.Schema != "" && t.Schema != "public") {
			return
		}
		if _, ledger := policy.IsLedgerTable(t); ledger {
			return
		}
		name := t.String()
		if skip[name] {
			return
		}
		skip[name] = true
		// Rows of no columns, so that the planner's estimate of a
		// statement that names no column follows the reltuples the test
		// sets (an empty table's pages say 0 rows); a statement that
		// names a column cannot be planned, as without the table.
		out = append(out, existingTable{name: name, create: "CREATE TABLE " + name + " AS SELECT FROM generate_series(1, 2000); ANALYZE " + name})
	}
	for _, raw := range tree.Stmts {
		stmt := raw.Stmt
		switch s := stmt.GetNode().(type) {
		case *pg_query.Node_CreateStmt:
			skip[policy.TableOf(s.CreateStmt.Relation).String()] = true
		case *pg_query.Node_CreateTableAsStmt:
			skip[policy.TableOf(s.CreateTableAsStmt.GetInto().GetRel()).String()] = true
		case *pg_query.Node_ViewStmt:
			skip[policy.TableOf(s.ViewStmt.View).String()] = true
		case *pg_query.Node_AlterDomainStmt:
			// Lint takes the domain to exist with a large table of it;
			// so does the proxy's catalog after this: a table of 2,000
			// rows with a column of the domain, then made to look large.
			var parts []string
			for _, it := range s.AlterDomainStmt.TypeName {
				parts = append(parts, it.GetString_().GetSval())
			}
			if len(parts) == 2 && parts[0] != "public" || len(parts) == 0 || len(parts) > 2 {
				break
			}
			dom := policy.QuoteIdent(parts[len(parts)-1])
			users := policy.QuoteIdent("agree_" + parts[len(parts)-1] + "_users")
			if !skip[users] {
				skip[users] = true
				out = append(out, existingTable{name: users, create: "CREATE DOMAIN " + dom + " AS int; CREATE TABLE " + users + " AS SELECT NULL::" + dom +
					" AS v FROM generate_series(1, 2000); ANALYZE " + users})
			}
		case *pg_query.Node_DropStmt:
			switch s.DropStmt.RemoveType {
			case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_INDEX, pg_query.ObjectType_OBJECT_VIEW,
				pg_query.ObjectType_OBJECT_MATVIEW, pg_query.ObjectType_OBJECT_SEQUENCE:
				for _, o := range s.DropStmt.Objects {
					var parts []string
					for _, it := range o.GetList().GetItems() {
						parts = append(parts, it.GetString_().GetSval())
					}
					switch len(parts) {
					case 1:
						add(policy.Table{Name: parts[0]})
					case 2:
						add(policy.Table{Schema: parts[0], Name: parts[1]})
					}
				}
			}
		}
		rangeVars(stmt.ProtoReflect(), func(rv *pg_query.RangeVar) {
			if rv.Relpersistence != "t" {
				add(policy.TableOf(rv))
			}
		})
	}
	return out
}

// rangeVars calls fn for every RangeVar in a parse tree, also those held
// in fields of type RangeVar rather than in a Node.
func rangeVars(m protoreflect.Message, fn func(*pg_query.RangeVar)) {
	if !m.IsValid() {
		return
	}
	if rv, ok := m.Interface().(*pg_query.RangeVar); ok {
		fn(rv)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				rangeVars(v.List().Get(i).Message(), fn)
			}
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			rangeVars(v.Message(), fn)
		}
		return true
	})
}

// earlier lists the statements that put the session in the state the
// directives describe, in the statement's own transaction (or, without
// in-transaction, just before it).
func (c agreeContext) earlier() []string {
	var out []string
	for _, t := range c.created {
		out = append(out, createFor(t))
	}
	for _, t := range c.exclusive {
		out = append(out, "LOCK TABLE "+t+" IN ACCESS EXCLUSIVE MODE")
	}
	for _, nv := range c.notValid {
		if nv.fk {
			out = append(out, "ALTER TABLE "+nv.table+" ADD CONSTRAINT "+nv.constraint+
				" FOREIGN KEY (agree_ref) REFERENCES "+nv.table+" (agree_id) NOT VALID")
		} else {
			out = append(out, "ALTER TABLE "+nv.table+" ADD CONSTRAINT "+nv.constraint+" CHECK (true) NOT VALID")
		}
	}
	return out
}

// agreeVerdict is one side's decision on a statement.
type agreeVerdict struct {
	action   policy.Action
	rules    []string // "rule@action" of the findings behind action
	messages []string
}

// key is what must be equal on both sides: the overall action and the
// rules behind it. A refused statement shows only its refusals on the wire
// (its warnings never reach the client), so only those count then.
func (v agreeVerdict) key() string {
	return v.action.String() + " [" + strings.Join(v.rules, " ") + "]"
}

func (v agreeVerdict) details() string {
	var b strings.Builder
	for _, m := range v.messages {
		fmt.Fprintf(&b, "    %s\n", strings.ReplaceAll(m, "\n", "\n      "))
	}
	return b.String()
}

// add records one finding.
func (v *agreeVerdict) add(rule string, a policy.Action, msg string) {
	v.messages = append(v.messages, a.String()+" "+rule+": "+msg)
	if a == policy.Allow {
		return
	}
	if a > v.action {
		v.action = a
	}
	v.rules = append(v.rules, rule+"@"+a.String())
}

// finish keeps the findings behind the action, sorted.
func (v *agreeVerdict) finish() {
	if v.action == policy.Reject {
		v.rules = slices.DeleteFunc(v.rules, func(r string) bool { return !strings.HasSuffix(r, "@reject") })
	}
	sort.Strings(v.rules)
	v.rules = slices.Compact(v.rules)
}

// lintVerdict decides the statement as `pgguard lint [--in-transaction]
// [--pg-version N] FILE` would, with FILE holding the statement alone, or
// after the earlier statements its directives stand for.
func lintVerdict(t *testing.T, e *policy.Engine, fx agreeContext, text string) agreeVerdict {
	t.Helper()
	var prefix strings.Builder
	for _, sql := range fx.earlier() {
		fmt.Fprintf(&prefix, "%s;\n", sql)
	}
	skipLines := strings.Count(prefix.String(), "\n")
	o := &lintOptions{pgVersion: fx.pgVersion, inTransaction: fx.inTransaction, format: "json", files: []string{"-"}}
	findings, err := lintFile(e, o, "-", strings.NewReader(prefix.String()+text+";\n"))
	if err != nil {
		t.Fatal(err)
	}
	var v agreeVerdict
	for _, f := range findings {
		if f.Line <= skipLines {
			continue // a finding on an earlier statement
		}
		a := map[string]policy.Action{"allow": policy.Allow, "warn": policy.Warn, "rewrite": policy.Rewrite, "reject": policy.Reject}[f.Action]
		v.add(f.Rule, a, f.Message)
	}
	v.finish()
	return v
}

// createFor is the statement that creates a table for a created=TABLE
// directive: no columns, which is all the policy looks at.
func createFor(table string) string { return "CREATE TABLE " + table + " ()" }

// agreeSession is one client session through the proxy, reused for every
// statement; the NOTICEs of the statement being run are collected.
type agreeSession struct {
	conn    *pgconn.PgConn
	mu      sync.Mutex
	notices []*pgconn.Notice
}

func dialAgree(t *testing.T, dsn string) *agreeSession {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	s := &agreeSession{}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		s.mu.Lock()
		s.notices = append(s.notices, n)
		s.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if s.conn, err = pgconn.ConnectConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return s
}

// exec runs one simple-protocol Query and returns the server's (or
// pgguard's) error, if any, and the NOTICEs that came with it.
func (s *agreeSession) exec(t *testing.T, sql string) (*pgconn.PgError, []*pgconn.Notice) {
	t.Helper()
	s.mu.Lock()
	s.notices = nil
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.conn.Exec(ctx, sql).ReadAll()
	var pgErr *pgconn.PgError
	if err != nil && !errors.As(err, &pgErr) {
		t.Fatalf("%s: %v", firstLineOf(sql), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return pgErr, s.notices
}

// must runs a statement of the test's own, which must succeed and draw no
// word from pgguard.
func (s *agreeSession) must(t *testing.T, sql string) {
	t.Helper()
	if err, notices := s.exec(t, sql); err != nil || len(notices) > 0 {
		t.Fatalf("%s: error %v, notices %v", sql, err, notices)
	}
}

// verdict runs the statement through the proxy in the context the
// directives describe (BEGIN first when in-transaction, then the earlier
// statements the directives stand for) and reads pgguard's decision off the wire. The session is left
// idle, without the statement's settings.
func (s *agreeSession) verdict(t *testing.T, fx agreeContext, text string) agreeVerdict {
	t.Helper()
	if fx.inTransaction {
		s.must(t, "BEGIN")
	}
	for _, sql := range fx.earlier() {
		s.must(t, sql)
	}
	pgErr, notices := s.exec(t, text)
	var v agreeVerdict
	for _, n := range notices {
		rule, msg, ok := pgguardMessage(n.Message)
		switch {
		case !ok:
			v.messages = append(v.messages, "(server "+n.Severity+": "+n.Message+")")
		case n.Severity == "NOTICE" && strings.HasPrefix(msg, "rewritten to run without blocking writes:"):
			v.add(rule, policy.Rewrite, msg)
		case n.Severity == "WARNING":
			v.add(rule, policy.Warn, msg)
		default:
			t.Errorf("a notice from pgguard of an unknown shape: %s %s", n.Severity, n.Message)
		}
	}
	if pgErr != nil {
		rule, msg, ok := pgguardMessage(pgErr.Message)
		if ok && pgErr.Code == "42501" {
			v.add(rule, policy.Reject, msg)
			// Further refusals are in the detail: " Also <rule>: <message>".
			for _, id := range ruleIDs() {
				if strings.Contains(pgErr.Detail, "Also "+id+": ") {
					v.add(id, policy.Reject, "(in the detail)")
				}
			}
		} else {
			v.messages = append(v.messages, "(server ERROR "+pgErr.Code+": "+pgErr.Message+")")
		}
	}
	v.finish()
	if s.conn.TxStatus() != 'I' {
		s.must(t, "ROLLBACK")
	}
	// Settings the statement changed (SET lock_timeout, set_config) would
	// draw a lock_timeout WARNING on a later statement.
	s.must(t, "DISCARD ALL")
	return v
}

// pgguardMessage splits "pgguard: <rule>: <message>".
func pgguardMessage(m string) (rule, msg string, ok bool) {
	rest, ok := strings.CutPrefix(m, "pgguard: ")
	if !ok {
		return "", "", false
	}
	rule, msg, ok = strings.Cut(rest, ": ")
	return rule, msg, ok && !strings.Contains(rule, " ")
}

// ruleIDs lists every id a finding can carry.
func ruleIDs() []string {
	ids := []string{policy.ParseErrorRule, policy.BadAnnotationRule, policy.DynamicSQLRule}
	for _, r := range policy.Rules() {
		ids = append(ids, r.ID)
	}
	return ids
}

// serverState undoes what a statement that succeeded left in the
// database: a table the catalog would then report as small, a function
// whose volatility the catalog would know.
type serverState struct {
	conn     *pgx.Conn
	baseline string
}

const fingerprintSQL = `SELECT concat_ws(' ',
	(SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname !~ '^pg_(toast_)?temp_'), (SELECT count(*) FROM pg_catalog.pg_class),
	(SELECT count(*) FROM pg_catalog.pg_proc), (SELECT count(*) FROM pg_catalog.pg_type),
	(SELECT count(*) FROM pg_catalog.pg_constraint), (SELECT count(*) FROM pg_catalog.pg_authid),
	(SELECT count(*) FROM pg_catalog.pg_db_role_setting), (SELECT count(*) FROM pg_catalog.pg_event_trigger),
	(SELECT count(*) FROM pg_catalog.pg_extension), (SELECT count(*) FROM pg_catalog.pg_database))`

func (s *serverState) fingerprint(t *testing.T) string {
	t.Helper()
	var fp string
	if err := s.conn.QueryRow(context.Background(), fingerprintSQL).Scan(&fp); err != nil {
		t.Fatal(err)
	}
	return fp
}

// restore empties the public schema when the catalogs changed, and fails
// the test when that was not enough: a later statement would be judged
// against another database than the first.
func (s *serverState) restore(t *testing.T) {
	t.Helper()
	if s.fingerprint(t) == s.baseline {
		return
	}
	ctx := context.Background()
	if _, err := s.conn.Exec(ctx, "DROP SCHEMA public CASCADE; CREATE SCHEMA public"); err != nil {
		t.Fatal(err)
	}
	if fp := s.fingerprint(t); fp != s.baseline {
		t.Fatalf("a fixture statement changed the database beyond the public schema (catalog counts %s, were %s)", fp, s.baseline)
	}
}

// knownDifferences are the statements on which the proxy legitimately
// decides otherwise than lint: it knows the catalog, lint does not. Each
// names the statement exactly, both decisions, and why.
var knownDifferences = []struct {
	rule, file, statement string // statement: its first line after the comments
	lint, proxy           string // agreeVerdict.key()
	why                   string
}{}

// knownDifference returns the index of the knownDifferences entry that
// explains a disagreement, or -1.
func knownDifference(rule, file, text string, lint, proxy agreeVerdict) int {
	first := firstLineOf(text)
	for i, d := range knownDifferences {
		if d.rule == rule && d.file == file && d.statement == first && d.lint == lint.key() && d.proxy == proxy.key() {
			return i
		}
	}
	return -1
}

// firstLineOf returns the first line of a statement that is not a comment.
func firstLineOf(text string) string {
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
			return l
		}
	}
	return strings.TrimSpace(text)
}

func indentSQL(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}
