package policy

import (
	"fmt"
	"regexp"
	"sort"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Level is what rules.yaml sets for a rule: off, warn, reject or rewrite.
type Level uint8

// Levels, from the mildest.
const (
	LevelOff Level = iota
	LevelWarn
	LevelReject
	// LevelRewrite rewrites the statement into its safe form when the rule
	// offers one for this statement and session, and rejects it otherwise.
	LevelRewrite
)

func (l Level) String() string {
	switch l {
	case LevelOff:
		return "off"
	case LevelWarn:
		return "warn"
	case LevelReject:
		return "reject"
	case LevelRewrite:
		return "rewrite"
	}
	return "unknown"
}

// Rule is one check of the policy. Each rule lives in its own file of
// package policy/rules, <id>.go, and registers itself from init with Register.
type Rule struct {
	// ID is the rule's name in rules.yaml, findings, metrics and
	// annotations: lower-case words joined by dashes.
	ID string
	// Summary is a one-line description for listings.
	Summary string
	// Default is the level when rules.yaml does not name the rule.
	Default Level
	// CanRewrite is true when Check may report a Rewrite; only such rules
	// accept the rewrite level.
	CanRewrite bool
	// SizeDependent is true when the rule exists because of the table's
	// size (a long scan or rewrite): the engine then drops its findings on
	// tables created in the open transaction and on small tables.
	SizeDependent bool
	// DML is true when the rule looks at UPDATE, DELETE, MERGE and WITH
	// statements, which are otherwise not parsed.
	DML bool
	// MayConcern, for a DML rule, is a cheap look at the text: false means
	// the statement certainly does not concern the rule and need not be
	// parsed for it (application UPDATEs by key, on the hot path). Nil
	// means every DML statement may concern it.
	MayConcern func(text string) bool
	// Keywords make the rule see any statement whose text contains one of
	// them (lower case, matched ignoring case), even a SELECT that would
	// otherwise not be parsed, e.g. "lock_timeout" for set_config(...).
	Keywords []string
	// Advisory is true for a rule about how a migration is written (types,
	// names, IF EXISTS) rather than about what it does to other sessions.
	// The engine drops the findings of every other rule on a temporary
	// relation (nobody else sees it) and on one the catalog says does not
	// exist (the server answers that statement itself).
	Advisory bool
	// Check inspects one parsed statement and reports what it finds with
	// c.Report. The node is shared with other rules and sessions: read only.
	Check func(c *Check, stmt *pg_query.Node)
	// Verify says how the PostgreSQL verification test proves the rule's
	// claims (lock, work) and its recipe. Nil only for rules that are not
	// about locks (session settings, advisory rules); say why in a comment.
	Verify *Verification
}

// Work is what a statement does to a table while it holds its lock.
type Work uint8

// Kinds of work.
const (
	// WorkNone: catalog only, done in about a millisecond.
	WorkNone Work = iota
	// WorkScan: reads the whole table (validation, index build).
	WorkScan
	// WorkRewrite: writes a new copy of the table (relfilenode changes).
	WorkRewrite
)

func (w Work) String() string {
	return [...]string{"none", "scan", "rewrite"}[w]
}

// Verification is a rule's proof against a real PostgreSQL. The test
// creates a database with the table ledger (id bigint primary key,
// account_id bigint not null, amount numeric(18,2) not null, currency text
// (nullable, never null), note text (half null), created_at timestamptz not
// null), holding 300,000 rows, and the table accounts (id bigint primary
// key, 1,000 rows). See verify_pg_test.go.
type Verification struct {
	// Setup runs before Statement, outside any transaction.
	Setup []string
	// Statement is a statement the rule rejects, written against ledger.
	// The test runs it inside BEGIN ... ROLLBACK and checks Lock and Work.
	Statement string
	// Lock is the strongest lock Statement holds on ledger, e.g. "SHARE".
	Lock string
	// Work is what Statement does to ledger while holding Lock.
	Work Work
	// Error, when set, is the SQLSTATE PostgreSQL raises for Statement
	// inside a transaction block; Lock and Work are then not checked.
	Error string
	// Outside is true when the rule judges Statement as an autocommit
	// statement, alone in its Query (rules that report only where a
	// CONCURRENTLY rewrite is legal); the test still runs it inside
	// BEGIN ... ROLLBACK to observe its lock.
	Outside bool
	// NoRecipe is true when the rule's hint is not SQL that can be run as
	// is (say why in a comment). Otherwise the test runs the hint the rule
	// reports for Statement, statement by statement, and checks that no
	// step holds a lock that blocks writes while scanning or rewriting.
	NoRecipe bool
}

var ruleIDPattern = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

var registry struct {
	sync.Mutex
	byID  map[string]*Rule
	rules []*Rule // sorted by ID
}

// Register adds a rule to the registry. It is meant to be called from init
// and panics on an invalid or duplicate id or an incomplete rule.
func Register(r Rule) {
	registry.Lock()
	defer registry.Unlock()
	switch {
	case !ruleIDPattern.MatchString(r.ID):
		panic(fmt.Sprintf("policy: invalid rule id %q", r.ID))
	case r.ID == ParseErrorRule || r.ID == BadAnnotationRule || r.ID == DynamicSQLRule:
		panic(fmt.Sprintf("policy: rule id %q is reserved", r.ID))
	case registry.byID[r.ID] != nil:
		panic(fmt.Sprintf("policy: rule %q registered twice", r.ID))
	case r.Check == nil || r.Summary == "":
		panic(fmt.Sprintf("policy: rule %q needs a Summary and a Check", r.ID))
	case r.Default == LevelRewrite && !r.CanRewrite:
		panic(fmt.Sprintf("policy: rule %q defaults to rewrite but cannot rewrite", r.ID))
	}
	if registry.byID == nil {
		registry.byID = map[string]*Rule{}
	}
	rule := r
	registry.byID[r.ID] = &rule
	registry.rules = append(registry.rules, &rule)
	sort.Slice(registry.rules, func(i, j int) bool { return registry.rules[i].ID < registry.rules[j].ID })
}

// Rules returns every registered rule, sorted by id.
func Rules() []*Rule {
	registry.Lock()
	defer registry.Unlock()
	return append([]*Rule(nil), registry.rules...)
}

// LookupRule returns the rule registered under id.
func LookupRule(id string) (*Rule, bool) {
	registry.Lock()
	defer registry.Unlock()
	r, ok := registry.byID[id]
	return r, ok
}

// Findings the engine itself produces, under ids no rule may register.
const (
	// ParseErrorRule: a statement that looks like DDL does not parse
	// (on_parse_error).
	ParseErrorRule = "parse-error"
	// BadAnnotationRule: a pgguard:allow annotation without a reason or
	// naming an unknown rule.
	BadAnnotationRule = "bad-annotation"
	// DynamicSQLRule: EXECUTE of a non-literal string in a DO block or
	// function (on_dynamic_sql).
	DynamicSQLRule = "dynamic-sql"
)
