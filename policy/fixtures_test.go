package policy

import (
	"context"
	"flag"
	"fmt"
	"github.com/pgguard/pgguard/policy/sqltext"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixtureContext reads the `-- context:` directives of a fixture statement
// (see testdata/README.md) into a session context.
func fixtureContext(t testing.TB, text string) *Context {
	sc := &Context{Alone: true}
	var cat *fakeCatalog
	catalog := func() *fakeCatalog {
		if cat == nil {
			cat = newFakeCatalog()
		}
		return cat
	}
	var created, exclusive []Table
	var notValid []NotValidConstraint
	lx := sqltext.Lexer{Src: text}
	for tok := lx.Next(); tok.Kind != sqltext.TokEOF; tok = lx.Next() {
		if tok.Kind != sqltext.TokComment {
			continue
		}
		body, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(text[tok.Start:tok.End], "--")), "context:")
		if !ok {
			continue
		}
		for _, item := range strings.Fields(body) {
			key, val, _ := strings.Cut(item, "=")
			switch key {
			case "in-transaction":
				sc.InTransaction = true
			case "migration":
				sc.Migration = true
			case "unique-key": // TABLE:COL[,COL] is covered by a valid unique index
				table, cols, _ := strings.Cut(val, ":")
				if catalog().uniqueKeys == nil {
					catalog().uniqueKeys = map[string][][]string{}
				}
				catalog().uniqueKeys[table] = append(catalog().uniqueKeys[table], strings.Split(cols, ","))
			case "not-alone":
				sc.Alone = false
			case "pg":
				v, err := strconv.Atoi(val)
				if err != nil {
					t.Fatalf("bad directive %q", item)
				}
				sc.ServerVersion = v * 10000
			case "user":
				sc.User = val
			case "tool":
				sc.Tool = Tool(val)
			case "created":
				created = append(created, ParseTableName(val))
			case "exclusive": // the transaction holds ACCESS EXCLUSIVE on TABLE
				exclusive = append(exclusive, ParseTableName(val))
			case "small":
				catalog().sizes[val] = TableSize{Rows: 100, Bytes: 8192}
			case "large":
				catalog().sizes[val] = TableSize{Rows: 5_000_000, Bytes: 2 << 30}
			case "partitioned":
				catalog().partitioned[val] = true
			case "invalid-index":
				catalog().invalid[val] = true
			case "not-null-check":
				catalog().notNullChecks[val] = true
			case "function":
				name, v, _ := strings.Cut(val, ":")
				catalog().volatility[name] = Volatility(v[0])
			case "unique-index":
				catalog().unique[val] = true
			case "populated":
				catalog().populated[val] = true
			case "rows":
				n, err := strconv.ParseInt(val, 10, 64)
				if err != nil {
					t.Fatalf("bad directive %q", item)
				}
				catalog().rows = &n
			case "enum": // TYPE is an enum type
				catalog().enums[val] = true
			case "column-type":
				col, typ, _ := strings.Cut(val, ":")
				catalog().columnTypes[col] = typ
			case "not-valid", "not-valid-fk": // TABLE.CONSTRAINT added NOT VALID earlier in the transaction
				tc := ParseTableName(val) // TABLE.CONSTRAINT reads like schema.table
				if tc.Schema == "" {
					t.Fatalf("bad directive %q", item)
				}
				lock := LockAccessExclusive
				if key == "not-valid-fk" {
					lock = LockShareRowExclusive
				}
				notValid = append(notValid, NotValidConstraint{Table: Table{Name: tc.Schema}, Name: tc.Name, Lock: lock})
			case "partition-key": // TABLE:STRATEGY:COLUMN[,COLUMN]
				if catalog().partKeys == nil {
					catalog().partKeys = map[string]string{}
				}
				table, key, _ := strings.Cut(val, ":")
				catalog().partKeys[table] = key
			case "bound-check": // TABLE has a validated CHECK on its partition key
				if catalog().boundChecks == nil {
					catalog().boundChecks = map[string]bool{}
				}
				catalog().boundChecks[val] = true
			case "temp": // TABLE is a temporary table of the session (created earlier)
				catalog().relations[val] = Relation{Exists: true, Schema: "pg_temp_3", Temporary: true}
			case "missing": // no relation TABLE exists
				catalog().relations[val] = Relation{}
			case "resolves": // TABLE:SCHEMA: the search_path finds TABLE in SCHEMA
				name, schema, _ := strings.Cut(val, ":")
				catalog().relations[name] = Relation{Exists: true, Schema: schema}
			case "domain-column": // DOMAIN:TABLE.COLUMN has a column of the domain; domains named by none have no column
				dom, tc, _ := strings.Cut(val, ":")
				col := ParseTableName(tc) // TABLE.COLUMN reads like schema.table
				if col.Schema == "" {
					t.Fatalf("bad directive %q", item)
				}
				if catalog().domainColumns == nil {
					catalog().domainColumns = map[string][]DomainColumn{}
				}
				catalog().domainColumns[dom] = append(catalog().domainColumns[dom], DomainColumn{Table: ParseTableName(col.Schema), Column: col.Name})
			case "domain-not-null": // the domain DOMAIN is NOT NULL already
				if catalog().domainNotNull == nil {
					catalog().domainNotNull = map[string]bool{}
				}
				catalog().domainNotNull[val] = true
			case "creation-schema": // unqualified CREATEs go to SCHEMA
				catalog().creationSchema = val
			default:
				t.Fatalf("unknown context directive %q", item)
			}
		}
	}
	if created != nil {
		sc.CreatedTables = func(schema, table string) bool { return TableIn(created, schema, table) }
	}
	if exclusive != nil {
		sc.ExclusiveTables = func(schema, table string) bool {
			return (table == "" && len(exclusive) > 0) || TableIn(exclusive, schema, table)
		}
	}
	if notValid != nil {
		sc.NotValidConstraints = func(t Table, name string) (string, bool) { return FindNotValid(notValid, t, name) }
	}
	if cat != nil {
		sc.Catalog = cat
	}
	return sc
}

// fakeCatalog answers from maps; anything not in them is unknown.
type fakeCatalog struct {
	sizes          map[string]TableSize
	partitioned    map[string]bool
	invalid        map[string]bool
	notNullChecks  map[string]bool // "table.column"
	volatility     map[string]Volatility
	columnTypes    map[string]string         // "table.column"
	enums          map[string]bool           // enum types
	unique         map[string]bool           // materialized views with a unique index
	populated      map[string]bool           // populated materialized views
	rows           *int64                    // EstimateRows' answer for any statement
	partKeys       map[string]string         // partitioned table -> "strategy:col,col"
	boundChecks    map[string]bool           // tables with a validated CHECK on their partition key
	relations      map[string]Relation       // what a name resolves to; others unknown
	creationSchema string                    // "": unknown
	uniqueKeys     map[string][][]string     // KeyCatalog's answer; nil: unknown
	domainColumns  map[string][]DomainColumn // DomainColumnCatalog's answer; nil: unknown
	domainNotNull  map[string]bool           // domains that are NOT NULL already
}

func (f *fakeCatalog) DomainColumns(_ context.Context, typ string) ([]DomainColumn, bool, bool) {
	if f.domainColumns == nil {
		return nil, false, false
	}
	return f.domainColumns[typ], f.domainNotNull[typ], true
}

func (f *fakeCatalog) UniqueKeys(_ context.Context, table string) ([][]string, bool) {
	if f.uniqueKeys == nil {
		return nil, false
	}
	return f.uniqueKeys[table], true
}

func newFakeCatalog() *fakeCatalog {
	return &fakeCatalog{sizes: map[string]TableSize{}, partitioned: map[string]bool{}, invalid: map[string]bool{},
		notNullChecks: map[string]bool{}, volatility: map[string]Volatility{}, columnTypes: map[string]string{}, enums: map[string]bool{},
		unique: map[string]bool{}, populated: map[string]bool{}, relations: map[string]Relation{}}
}

func (f *fakeCatalog) Relation(_ context.Context, name string) (Relation, bool) {
	r, ok := f.relations[name]
	return r, ok
}

func (f *fakeCatalog) CreationSchema(context.Context) (string, bool) {
	return f.creationSchema, f.creationSchema != ""
}

func (f *fakeCatalog) TableSize(_ context.Context, table string) (TableSize, bool) {
	s, ok := f.sizes[table]
	return s, ok
}

func (f *fakeCatalog) HasValidatedNotNullCheck(_ context.Context, table, column string) (bool, bool) {
	return f.notNullChecks[table+"."+column], true
}

func (f *fakeCatalog) IsPartitioned(_ context.Context, table string) (bool, bool) {
	return f.partitioned[table], true
}

func (f *fakeCatalog) Index(_ context.Context, name string) (bool, bool, bool) {
	if f.invalid[name] {
		return true, false, true
	}
	return false, false, true
}

func (f *fakeCatalog) HasUniqueIndex(_ context.Context, table string) (bool, bool) {
	return f.unique[table], true
}

func (f *fakeCatalog) MatViewPopulated(_ context.Context, matview string) (bool, bool) {
	return f.populated[matview], true
}

func (f *fakeCatalog) FunctionVolatility(_ context.Context, name string) (Volatility, bool) {
	v, ok := f.volatility[name]
	return v, ok
}

func (f *fakeCatalog) EstimateRows(context.Context, string) (int64, bool) {
	if f.rows == nil {
		return 0, false
	}
	return *f.rows, true
}

func (f *fakeCatalog) IsEnum(_ context.Context, typ string) (bool, bool) {
	return f.enums[typ], true
}

func (f *fakeCatalog) ColumnType(_ context.Context, table, column string) (string, bool) {
	t, ok := f.columnTypes[table+"."+column]
	return t, ok
}

// fixtureEngine enables rule at its default level (reject when it is off
// by default) and lets the role fixture_admin use annotations.
func fixtureEngine(t testing.TB, rule *Rule) *Engine {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rule != nil && rule.Default == LevelOff {
		cfg.Rules[rule.ID] = LevelReject
	}
	cfg.Annotations.AllowedRoles = []string{"fixture_admin"}
	if rule != nil && rule.ID == "lock-timeout" {
		// The rule judges a session's own lock_timeout only where every
		// statement of the session gets the policy's (scope session);
		// under scope ddl it sees function SET clauses alone.
		cfg.LockTimeoutScope = ScopeSession
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func readFixture(t *testing.T, path string) []sqltext.Statement {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("every rule needs %s: %v", path, err)
	}
	stmts := sqltext.Split(string(data))
	if len(stmts) == 0 {
		t.Fatalf("%s holds no statement", path)
	}
	return stmts
}

func TestRuleFixtures(t *testing.T) {
	for _, rule := range Rules() {
		t.Run(rule.ID, func(t *testing.T) {
			t.Parallel()
			e := fixtureEngine(t, rule)
			dir := filepath.Join("testdata", rule.ID)
			if _, err := os.Stat(filepath.Join("..", "docs", "rules", rule.ID+".md")); err != nil {
				t.Errorf("every rule needs a doc page: %v", err)
			}
			ctx := context.Background()
			for _, s := range readFixture(t, filepath.Join(dir, "ok.sql")) {
				d := e.Decide(ctx, s, fixtureContext(t, s.Text))
				for _, f := range d.Findings {
					if f.RuleID == rule.ID {
						t.Errorf("ok.sql:%d: %s: unexpected finding: %s", s.Line, firstLine(s.Text), f.Message)
					}
				}
			}
			var golden strings.Builder
			for _, s := range readFixture(t, filepath.Join(dir, "bad.sql")) {
				d := e.Decide(ctx, s, fixtureContext(t, s.Text))
				if len(d.Findings) == 0 {
					t.Errorf("bad.sql:%d: %s: no finding", s.Line, firstLine(s.Text))
				}
				for _, f := range d.Findings {
					if f.RuleID != rule.ID {
						t.Errorf("bad.sql:%d: %s: finding of another rule %s: %s", s.Line, firstLine(s.Text), f.RuleID, f.Message)
					}
				}
				writeGolden(&golden, s, d)
			}
			compareGolden(t, filepath.Join(dir, "bad.golden"), golden.String())
		})
	}
}

func writeGolden(w *strings.Builder, s sqltext.Statement, d Decision) {
	fmt.Fprintf(w, "=== line %d: %s\n", s.Line, firstLine(stripComments(s.Text)))
	fmt.Fprintf(w, "decision: %s (lock %q)\n", d.Action, d.Lock)
	for _, f := range d.Findings {
		fmt.Fprintf(w, "%s %s: %s\n", f.RuleID, f.Action, f.Message)
		if f.Detail != "" {
			fmt.Fprintf(w, "  detail: %s\n", f.Detail)
		}
		if f.AllowedBy != "" {
			fmt.Fprintf(w, "  allowed by: %s\n", f.AllowedBy)
		}
		fmt.Fprintf(w, "  hint:\n    %s\n", strings.ReplaceAll(f.Hint, "\n", "\n    "))
	}
	if d.Rewritten != "" {
		fmt.Fprintf(w, "rewritten: %s\n", d.Rewritten)
	}
	w.WriteString("\n")
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./policy -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run go test ./policy -update and review the diff):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff shows the first differing line of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return ""
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// stripComments drops leading comment lines (directives, annotations).
func stripComments(s string) string {
	lines := strings.Split(s, "\n")
	for len(lines) > 1 && strings.HasPrefix(strings.TrimSpace(lines[0]), "--") {
		lines = lines[1:]
	}
	return strings.Join(lines, "\n")
}
