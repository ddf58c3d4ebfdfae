package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/pgguard/pgguard/policy/sqltext"
	"io"
	"os"
	"strings"

	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/policy"
)

func init() {
	register("lint", "check SQL migration files against the policy", runLint)
}

// lintFinding is one line of `pgguard lint --format json`; docs/lint.md
// documents it.
type lintFinding struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Statement string `json:"statement"`
	Rule      string `json:"rule"`
	Action    string `json:"action"`
	Message   string `json:"message"`
	Detail    string `json:"detail,omitempty"`
	Hint      string `json:"hint,omitempty"`
	Rewritten string `json:"rewritten,omitempty"`
	Table     string `json:"table,omitempty"`
	Lock      string `json:"lock,omitempty"`
	AllowedBy string `json:"allowed_by,omitempty"`
}

type lintOptions struct {
	pgVersion     int
	inTransaction bool
	rules         string
	format        string
	user          string
	listRules     bool
	files         []string
	// sizesFile is --sizes: an exported sizes file (pgguard sizes export)
	// the tables it knows are judged with; sizes is it loaded.
	sizesFile string
	sizes     *pgcatalog.Sizes
	// renamed: the tables renamed earlier in the linted files, with
	// --sizes (pgcatalog.FileCatalog.Renamed).
	renamed map[policy.Table]policy.Table
}

func parseLintFlags(args []string, stdio stdio) (*lintOptions, error) {
	o := &lintOptions{}
	fs := flag.NewFlagSet("pgguard lint", flag.ContinueOnError)
	fs.IntVar(&o.pgVersion, "pg-version", 0, "PostgreSQL major version to check against (default: assume_pg_version from the rules)")
	fs.BoolVar(&o.inTransaction, "in-transaction", false, "the statements run inside one transaction block (as knex, node-pg-migrate, TypeORM, Django and Rails run a migration by default; sequelize-cli does not wrap a migration in a transaction)")
	fs.StringVar(&o.rules, "rules", "", "rules file (default: the built-in rules.yaml)")
	fs.StringVar(&o.format, "format", "text", "output format: text or json (one object per line)")
	fs.StringVar(&o.user, "user", "", "role the migration runs as, for profiles and pgguard:allow annotations")
	fs.BoolVar(&o.listRules, "list-rules", false, "list the rules and their default levels, and exit")
	fs.StringVar(&o.sizesFile, "sizes", "", "sizes file written by pgguard sizes export (e.g. production's): the tables it lists are judged with their size there instead of being assumed large")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pgguard lint [flags] FILE... | -")
		fs.PrintDefaults()
	}
	// Flags may follow file names: parse, take one file, repeat.
	for {
		if err := parseFlags(fs, args, stdio); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		o.files = append(o.files, args[0])
		args = args[1:]
	}
	switch {
	case o.format != "text" && o.format != "json":
		return nil, fmt.Errorf("--format: must be text or json, not %q", o.format)
	case o.pgVersion != 0 && (o.pgVersion < 10 || o.pgVersion > 18):
		return nil, fmt.Errorf("--pg-version: %d is not a supported PostgreSQL major version (10 to 18)", o.pgVersion)
	case len(o.files) == 0 && !o.listRules:
		fs.Usage()
		return nil, errors.New("no files to check (use - for standard input)")
	}
	if o.sizesFile != "" {
		s, err := pgcatalog.LoadSizes(o.sizesFile)
		if err != nil {
			return nil, fmt.Errorf("--sizes: %w", err)
		}
		o.sizes = s
	}
	return o, nil
}

func runLint(args []string, io stdio) int {
	o, err := parseLintFlags(args, io)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(io.err, "pgguard lint: %v\n", err)
		return 2
	}
	if o.listRules {
		for _, r := range policy.Rules() {
			fmt.Fprintf(io.out, "%-30s %-8s %s\n", r.ID, r.Default, r.Summary)
		}
		return 0
	}
	var cfg *policy.Config
	if o.rules != "" {
		cfg, err = policy.LoadConfig(o.rules)
	} else {
		cfg, err = policy.DefaultConfig()
	}
	if err != nil {
		fmt.Fprintf(io.err, "pgguard lint: %v\n", err)
		return 2
	}
	engine, err := policy.NewEngine(cfg)
	if err != nil {
		fmt.Fprintf(io.err, "pgguard lint: %v\n", err)
		return 2
	}
	rejected, failed := false, false
	for _, name := range o.files {
		findings, err := lintFile(engine, o, name, io.in)
		if err != nil {
			fmt.Fprintf(io.err, "pgguard lint: %v\n", err)
			failed = true
			continue
		}
		for _, f := range findings {
			rejected = rejected || f.Action == policy.Reject.String()
			printFinding(io.out, o.format, f)
		}
	}
	switch {
	case failed:
		return 2
	case rejected:
		return 1
	}
	return 0
}

// lintFile decides every statement of one file. Tables created earlier in
// the file count as created in the open transaction.
func lintFile(e *policy.Engine, o *lintOptions, name string, stdin io.Reader) ([]lintFinding, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(stdin)
		name = "<stdin>"
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	// The same memory of the open transaction as the proxy keeps: tables
	// created, NOT VALID constraints and ACCESS EXCLUSIVE locks count until
	// the transaction ends. A table created earlier in the file outside
	// the open transaction is no longer new to the proxy: it exists, and
	// the proxy's catalog reports it empty, which only the size-dependent
	// rules let pass. Lint's catalog (emptyTables) says the same, so that
	// lint and the proxy agree on it (a RENAME COLUMN of it is refused by
	// both).
	var tx policy.TxMemory
	var pending []string // created in the open transaction
	var empty emptyTables
	inTx := o.inTransaction
	// searchPath is the search_path the file set (nil: none); a SET LOCAL
	// one lasts until the transaction ends, when savedPath is back.
	var searchPath, savedPath []string
	localPath := false
	sc := &policy.Context{
		Alone:               true, // migration tools send one statement at a time
		Migration:           true, // a migration file, by definition
		ServerVersion:       o.pgVersion * 10000,
		User:                o.user,
		CreatedTables:       tx.Created,
		NotValidConstraints: tx.NotValidLock,
		ExclusiveTables:     tx.Exclusive,
		Remembers:           tx.Active,
	}
	var out []lintFinding
	for _, s := range sqltext.Split(string(data)) {
		switch {
		case policy.BeginsTransaction(s.Text):
			inTx = true
		case policy.EndsTransaction(s.Text):
			// Committed, or rolled back: either way not new any more (a
			// rolled-back table is taken as committed, the lenient side).
			empty = empty.add(pending)
			pending = nil
			inTx = o.inTransaction
			tx.Reset()
			if localPath {
				searchPath, localPath = savedPath, false
			}
		}
		if path, local, ok := pgcatalog.SearchPathSet(s.Text); ok && (inTx || !local) {
			// The proxy resolves the names that follow with it, so lint
			// finds them in the sizes file with it too. A SET LOCAL
			// outside a transaction block does nothing (PostgreSQL
			// only warns).
			if local && !localPath {
				savedPath, localPath = searchPath, true
			}
			searchPath = path
		}
		sc.InTransaction = inTx
		sc.Catalog = nil
		switch {
		case o.sizes != nil:
			if o.renamed == nil {
				o.renamed = map[policy.Table]policy.Table{}
			}
			sc.Catalog = sizedTables{empty, pgcatalog.FileCatalog{S: o.sizes, SearchPath: searchPath, User: o.user, Renamed: o.renamed}}
		case len(empty) > 0:
			sc.Catalog = empty
		}
		d := e.Decide(context.Background(), s, sc)
		if inTx {
			tx.Apply(d.Effect()) // savepoints included
			pending = append(pending, d.CreatesTables...)
		} else {
			empty = empty.add(d.CreatesTables)
		}
		for _, f := range d.Findings {
			out = append(out, lintFinding{
				File: name, Line: s.Line, Statement: s.Text, Rule: f.RuleID, Action: f.Action.String(),
				Message: f.Message, Detail: f.Detail, Hint: f.Hint, Rewritten: d.Rewritten,
				Table: f.Table, Lock: f.Lock, AllowedBy: f.AllowedBy,
			})
		}
	}
	return out, nil
}

// emptyTables is lint's catalog once the file has created tables outside
// the open transaction: it reports those as empty, as the proxy's catalog
// would, and knows nothing else (ok=false), as without a catalog.
type emptyTables []policy.Table

func (c emptyTables) add(tables []string) emptyTables {
	for _, t := range tables {
		c = append(c, policy.ParseTableName(t))
	}
	return c
}

func (c emptyTables) TableSize(_ context.Context, table string) (policy.TableSize, bool) {
	t := policy.ParseTableName(table)
	return policy.TableSize{}, policy.TableIn(c, t.Schema, t.Name)
}

func (emptyTables) HasValidatedNotNullCheck(context.Context, string, string) (bool, bool) {
	return false, false
}
func (emptyTables) IsPartitioned(context.Context, string) (bool, bool)  { return false, false }
func (emptyTables) Index(context.Context, string) (bool, bool, bool)    { return false, false, false }
func (emptyTables) HasUniqueIndex(context.Context, string) (bool, bool) { return false, false }
func (emptyTables) FunctionVolatility(context.Context, string) (policy.Volatility, bool) {
	return policy.VolatilityUnknown, false
}
func (emptyTables) EstimateRows(context.Context, string) (int64, bool) { return 0, false }

// Relation knows the temporary tables created earlier in the file: the
// session's own, which an unqualified name finds first, and which no rule
// about other sessions judges (as the proxy, whose catalog says so).
// Anything else is unknown. A temporary table dropped later in the file
// is still taken as one: lint does not follow drops.
func (c emptyTables) Relation(_ context.Context, name string) (policy.Relation, bool) {
	t := policy.ParseTableName(name)
	if t.Schema == "" || policy.IsTempSchema(t.Schema) {
		for _, e := range c {
			if e.Schema == "pg_temp" && e.Name == t.Name {
				return policy.Relation{Exists: true, Schema: "pg_temp", Temporary: true}, true
			}
		}
	}
	return policy.Relation{}, false
}

func (emptyTables) CreationSchema(context.Context) (string, bool) { return "", false }

// sizedTables is lint's catalog with --sizes: the tables created earlier
// in the file are empty, those the sizes file lists have its sizes (and
// its word on which are partitioned), and nothing else is known.
type sizedTables struct {
	emptyTables
	file pgcatalog.FileCatalog
}

func (c sizedTables) TableSize(ctx context.Context, table string) (policy.TableSize, bool) {
	if s, ok := c.emptyTables.TableSize(ctx, table); ok {
		return s, ok
	}
	return c.file.TableSize(ctx, table)
}

// WillRename remembers, for the rest of the linted files, that a table
// the sizes file has by one name is renamed (policy.RenameObserver).
func (c sizedTables) WillRename(ctx context.Context, from string, to policy.Table) {
	c.file.WillRename(ctx, from, to)
}

func (c sizedTables) IsPartitioned(ctx context.Context, table string) (bool, bool) {
	return c.file.IsPartitioned(ctx, table)
}

func (c sizedTables) EstimateRows(ctx context.Context, sql string) (int64, bool) {
	t, whole := pgcatalog.WholeTable(sql)
	if whole {
		if _, empty := c.emptyTables.TableSize(ctx, t.String()); empty {
			return 0, true
		}
	}
	return c.file.EstimateRows(ctx, sql)
}

// UniqueKeys are the file's unique keys of a table it lists (unique and
// valid there), as the proxy on the file's database finds them; a table
// created earlier in the file has none known.
func (c sizedTables) UniqueKeys(ctx context.Context, table string) ([][]string, bool) {
	if _, empty := c.emptyTables.TableSize(ctx, table); empty {
		return nil, false
	}
	return c.file.UniqueKeys(ctx, table)
}

// Lacks: the file's database has no relation of that name, so a CREATE
// TABLE IF NOT EXISTS of it creates the table there (policy.SourceLacker).
func (c sizedTables) Lacks(ctx context.Context, table string) bool {
	return c.file.Lacks(ctx, table)
}

func (c sizedTables) SizesFrom(ctx context.Context, table string) string {
	if _, empty := c.emptyTables.TableSize(ctx, table); empty {
		return ""
	}
	return c.file.SizesFrom(ctx, table)
}

func printFinding(w io.Writer, format string, f lintFinding) {
	if format == "json" {
		b, _ := json.Marshal(f)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintf(w, "%s:%d: %s %s: %s\n", f.File, f.Line, f.Action, f.Rule, f.Message)
	indent := func(label, s string) {
		if s != "" {
			fmt.Fprintf(w, "    %s: %s\n", label, strings.ReplaceAll(s, "\n", "\n      "))
		}
	}
	indent("detail", f.Detail)
	indent("allowed by", f.AllowedBy)
	indent("rewritten", f.Rewritten)
	indent("fix", f.Hint)
}
