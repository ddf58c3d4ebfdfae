package tools

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/policy"
)

// A tool runs its own migrations: migrate runs the tool's "migrate up" over
// one scenario's directory of migrations, on database db.
type tool struct {
	name string
	// sense is the tool policy.ToolSense must recognise from what it sends.
	sense policy.Tool
	// ledger lists the migrations the tool recorded as applied, in order.
	ledger string
	// oneTransaction is true for tools that run all pending migrations in
	// one transaction (knex): a refusal then undoes the safe ones before it.
	oneTransaction bool
	// printsDetail is false for tools that print only an error's message
	// line (knex): the fix must then be in the message.
	printsDetail bool
	// idiom is what the refusal of the default CREATE INDEX must show in
	// the tool's terms once the proxy tells the policy which tool it is.
	idiom   string
	migrate func(t *testing.T, db, scenario string) result
}

// A scenario is a directory of migrations under the tool's project and
// what running them must lead to. Every scenario's first migration creates
// the table payees, which is safe; the ones that must be refused add one
// unsafe migration after it.
type scenario struct {
	name string
	// rule is the rule whose refusal must stop the run; "" when the run
	// must succeed.
	rule string
	// ledger are the migrations recorded afterwards, each a substring of
	// the ledger's entry.
	ledger []string
	// present must exist afterwards (indexes valid); absent must not.
	present, absent []string
	// audit, when set, are the migrations pgguard's audit log must name
	// (checked for "ok"); the ledger's entries otherwise.
	audit []string
	// output must appear in what the tool printed.
	output []string
	// then, when set, runs after the checks (a tool's way to recover).
	then func(t *testing.T, db string)
}

// scenarios are what every tool runs; a tool's test adjusts them where
// the tool does things its own way.
func scenarios() []scenario {
	return []scenario{
		{name: "ok", ledger: []string{"create_payees", "add_nickname", "index_small"},
			present: []string{"payees", "small_v_idx", "big.nickname"}},
		{name: "index-default", rule: "create-index", ledger: []string{"create_payees"},
			present: []string{"payees"}, absent: []string{"big_account_idx"}},
		{name: "index-concurrent", ledger: []string{"create_payees", "index_big_concurrently"},
			present: []string{"payees", "big_account_cidx"}},
		{name: "alter-type", rule: "alter-column-type", ledger: []string{"create_payees"},
			present: []string{"payees"}},
		{name: "volatile-default", rule: "add-column-volatile-default", ledger: []string{"create_payees"},
			present: []string{"payees"}, absent: []string{"big.ref"}},
	}
}

// runScenarios runs each scenario in a database of its own, in parallel.
func runScenarios(t *testing.T, tl tool, scs []scenario) {
	t.Helper()
	for _, sc := range scs {
		if tl.oneTransaction && sc.rule != "" {
			sc.ledger, sc.present, sc.absent = nil, nil, append(sc.absent, "payees")
		}
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			db := database(t, tl.name)
			r := tl.migrate(t, db, sc.name)
			t.Logf("%s", r)
			if r.timedOut {
				t.Fatalf("the tool hung: %s", r)
			}
			conn := direct(t, db)
			checkLedger(t, conn, tl.ledger, sc.ledger)
			checkState(t, conn, sc.present, sc.absent)
			for _, s := range sc.output {
				if !strings.Contains(r.out, s) {
					t.Errorf("the tool's output lacks %q", s)
				}
			}
			if sc.rule == "" {
				if r.code != 0 {
					t.Fatalf("the migrations failed: %s", r)
				}
				if strings.Contains(r.out, "pgguard:") {
					t.Errorf("pgguard spoke up on safe migrations: %s", r)
				}
			} else {
				checkRefusal(t, tl, sc, r)
			}
			if sc.name == "ok" {
				audit := sc.audit
				if audit == nil {
					audit = sc.ledger
				}
				checkAudit(t, db, tl.sense, audit)
			}
			if strings.HasPrefix(sc.name, "index-default") {
				checkSense(t, db, tl.sense)
			}
			if sc.then != nil && !t.Failed() {
				sc.then(t, db)
			}
		})
	}
}

// checkRefusal checks a run that pgguard must have stopped.
func checkRefusal(t *testing.T, tl tool, sc scenario, r result) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("the run succeeded, but pgguard must refuse it (%s): %s", sc.rule, r)
	}
	if !strings.Contains(r.out, "pgguard: "+sc.rule+":") {
		t.Fatalf("the tool did not print pgguard's refusal by %s: %s", sc.rule, r)
	}
	// The message line carries the essential fix, whole: some tools (knex's
	// migrator when it is called from code, Prisma) print nothing else.
	for _, line := range strings.Split(r.out, "\n") {
		if !strings.Contains(line, "pgguard: "+sc.rule+":") {
			continue
		}
		if !strings.Contains(line, " Fix: ") {
			t.Errorf("the refusal's message carries no fix: %s", line)
		}
		for _, p := range []string{"see the hint", "see the detail"} {
			if strings.Contains(line, p) {
				t.Errorf("the refusal's message points at a part of the error (%q): %s", p, line)
			}
		}
	}
	if sc.rule == "create-index" {
		// The message itself carries the fix.
		if !strings.Contains(r.out, "Fix: run CREATE INDEX CONCURRENTLY") {
			t.Errorf("the refusal's message does not carry the fix: %s", r)
		}
		if !strings.Contains(r.out, tl.idiom) {
			t.Errorf("the refusal does not give the fix in %s's terms (%q): %s", tl.name, tl.idiom, r)
		}
	}
	if tl.printsDetail && !strings.Contains(r.out, "Safe recipe:") {
		t.Errorf("the tool did not print the safe recipe: %s", r)
	}
}

// checkLedger compares the tool's ledger with the migrations a scenario
// must have recorded.
func checkLedger(t *testing.T, conn *pgx.Conn, sql string, want []string) {
	t.Helper()
	got := column(t, conn, sql)
	// create_payees matches 20260101000001_create_payees.js, and
	// CreatePayees1767225600001 (TypeORM's class names).
	norm := strings.NewReplacer("_", "", "-", "")
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = strings.Contains(strings.ToLower(norm.Replace(got[i])), norm.Replace(want[i]))
	}
	if !ok {
		t.Errorf("the ledger holds %q, want entries with %q", got, want)
	}
}

// checkState checks the schema after a run: present objects exist
// (indexes valid; "table.column" names a column), absent ones do not, and
// big is untouched: account still integer, every row there.
func checkState(t *testing.T, conn *pgx.Conn, present, absent []string) {
	t.Helper()
	ctx := context.Background()
	exists := func(name string) bool {
		var n int
		var err error
		if table, col, ok := strings.Cut(name, "."); ok {
			err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped", table, col).Scan(&n)
		} else {
			err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE oid = to_regclass($1)", name).Scan(&n)
		}
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	for _, name := range present {
		if !exists(name) {
			t.Errorf("%s does not exist", name)
			continue
		}
		var valid bool
		err := conn.QueryRow(ctx, "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", name).Scan(&valid)
		if err == nil && !valid {
			t.Errorf("index %s is INVALID", name)
		} else if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
	}
	for _, name := range absent {
		if exists(name) {
			t.Errorf("%s exists, but the migration creating it was refused", name)
		}
	}
	var typ string
	var n int64
	if err := conn.QueryRow(ctx, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'account'").Scan(&typ); err != nil {
		t.Fatal(err)
	}
	if typ != "integer" {
		t.Errorf("big.account is %s, want integer: a refused ALTER ... TYPE ran", typ)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM big").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != bigRows {
		t.Errorf("big has %d rows, want %d", n, bigRows)
	}
}

// checkAudit checks that pgguard's audit log names the tool and each
// migration it recorded in its ledger, in order, whether the ledger INSERT
// carried the name as a literal or as a bind parameter.
func checkAudit(t *testing.T, db string, tool policy.Tool, want []string) {
	t.Helper()
	var got []string
	for _, rec := range guard.Audit(t, db) {
		if rec.Migration != "" {
			got = append(got, rec.Tool+" "+rec.Migration)
		}
	}
	norm := strings.NewReplacer("_", "", "-", "")
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		tl, name, _ := strings.Cut(got[i], " ")
		ok = tl == string(tool) && strings.Contains(strings.ToLower(norm.Replace(name)), norm.Replace(want[i]))
	}
	if !ok {
		t.Errorf("the audit log names the migrations %q, want %s with %q", got, tool, want)
	}
}
