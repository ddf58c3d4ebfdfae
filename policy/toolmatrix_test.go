package policy

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// step is a kind of thing a refusal's fix asks its user to write in the
// migration tool.
type step int

const (
	// stepOutside: a statement alone, outside any transaction
	// (CONCURRENTLY, ALTER TYPE ... ADD VALUE, VACUUM).
	stepOutside step = iota
	// stepSeparate: a step in a transaction of its own, after the steps
	// before it committed (VALIDATE CONSTRAINT after ADD ... NOT VALID).
	stepSeparate
	// stepBackfill: a batch repeated until it changes 0 rows, each batch
	// committed on its own.
	stepBackfill
	// stepLater: deprecate, then drop (or rename, truncate, ...) in a later
	// migration with a pgguard:allow annotation in the tool's form.
	stepLater
)

var stepNames = [...]string{"outside a transaction", "a transaction of its own", "a batched backfill", "deprecate, then drop later"}

// ruleSteps is what each rule's fix asks for. Every rule is here or in
// sqlOnlyFixes, so that a new rule cannot refuse with a fix nobody checked.
var ruleSteps = map[string][]step{
	"add-check-constraint":                 {stepSeparate},
	"add-column-not-null-without-default":  {stepBackfill, stepSeparate},
	"add-column-serial-identity-generated": {stepBackfill, stepSeparate},
	"add-column-volatile-default":          {stepBackfill},
	"add-exclude-constraint":               {stepLater},
	"add-foreign-key":                      {stepSeparate},
	"add-primary-key":                      {stepOutside},
	"add-unique-constraint":                {stepOutside},
	"alter-column-type":                    {stepBackfill},
	"alter-domain-constraint":              {stepSeparate}, // an enum's: stepOutside (ADD VALUE), see stepsOf
	"attach-partition":                     {stepSeparate},
	"concurrently-in-transaction":          {stepOutside},
	"create-index":                         {stepOutside},
	"detach-partition":                     {stepOutside},
	"drop-column":                          {stepLater},
	"drop-index":                           {stepOutside},
	"drop-table":                           {stepLater},
	"invalid-index":                        {stepOutside},
	"large-dml":                            {stepBackfill},
	"refresh-materialized-view":            {stepOutside},
	"reindex":                              {stepOutside},
	"rename-column":                        {stepBackfill, stepLater},
	"rename-table":                         {stepLater},
	"set-access-method":                    {stepBackfill},
	"set-logged":                           {stepBackfill},
	"set-not-null":                         {stepSeparate},
	"truncate":                             {stepBackfill, stepLater},
	"validate-in-same-transaction":         {stepSeparate},
	"vacuum-full":                          {stepOutside},
}

// sqlOnlyFixes are the rules whose fix is a change to the statement
// itself, written the same in every tool's raw SQL (and checked only for
// naming no other tool), with why.
var sqlOnlyFixes = map[string]string{
	"cluster":                  "pg_repack from a shell, or a maintenance window",
	"lock-timeout":             "a setting's value",
	"require-if-exists":        "a clause of the statement",
	"require-named-constraint": "a clause of the statement",
	"require-named-index":      "a clause of the statement",
	"set-tablespace":           "pg_repack from a shell, or a maintenance window",
}

// typeFixes are the rules whose fix is a column type: said as SQL, and,
// for a tool with a schema builder or models, as that tool declares the
// column (the words of typeWords).
var typeFixes = map[string]string{
	"prefer-bigint": "bigint", "prefer-jsonb": "jsonb", "prefer-text": "text", "prefer-timestamptz": "timestamptz",
}

// typeWords are the words a type's fix must say in each tool that declares
// columns in code, from each tool's documentation: sequelize's DataTypes,
// knex's schema builder, TypeORM's @Column, node-pg-migrate's column
// definitions, Django's model fields, Rails' table definitions, Prisma's
// schema. A tool not here (SQL files) gets the SQL type alone.
var typeWords = map[Tool]map[string]string{
	ToolSequelize:     {"jsonb": "DataTypes.JSONB", "text": "DataTypes.TEXT", "bigint": "DataTypes.BIGINT", "timestamptz": "DataTypes.DATE"},
	ToolKnex:          {"jsonb": "table.jsonb(", "text": "table.text(", "bigint": "table.bigInteger(", "timestamptz": "useTz: true"},
	ToolTypeORM:       {"jsonb": `type: "jsonb"`, "text": `type: "text"`, "bigint": `type: "bigint"`, "timestamptz": `type: "timestamptz"`},
	ToolNodePgMigrate: {"jsonb": "'jsonb'", "text": "'text'", "bigint": "'bigint'", "timestamptz": "'timestamptz'"},
	ToolDjango:        {"jsonb": "models.JSONField", "text": "models.TextField", "bigint": "models.BigIntegerField", "timestamptz": "models.DateTimeField"},
	ToolRails:         {"jsonb": "t.jsonb", "text": "t.text", "bigint": "t.bigint", "timestamptz": "t.timestamptz"},
	ToolPrisma:        {"jsonb": "Json", "text": "String", "bigint": "BigInt", "timestamptz": "@db.Timestamptz"},
}

// stepsOf is what a finding's fix asks for.
func stepsOf(rule, message string) []step {
	if rule == "alter-column-type" && strings.Contains(message, "ADD VALUE") {
		return []step{stepOutside}
	}
	return ruleSteps[rule]
}

// stepWords are the words each step must be said with, in the message's
// fix and in the recipe, for each tool: all of them must appear. They are
// written here, apart from the code, from each tool's documentation and
// the tool suite's runs.
var stepWords = map[Tool]map[step][]string{
	ToolUnknown: {
		stepOutside:  {"outside any transaction block"},
		stepSeparate: {"transaction of its own", "BEGIN;", "COMMIT;"},
		stepBackfill: {"outside any transaction block", "until it changes 0 rows"},
		stepLater:    {"/* pgguard:allow"},
	},
	ToolSequelize: {
		stepOutside:  {"transaction: null"},
		stepSeparate: {"not inside queryInterface.sequelize.transaction()"},
		stepBackfill: {"queryInterface.sequelize.query", "until it changes 0 rows"},
		stepLater:    {"-- pgguard:allow", "queryInterface.sequelize.query"},
	},
	ToolKnex: {
		stepOutside:  {"exports.config = { transaction: false }"},
		stepSeparate: {"migration file of its own", "exports.config = { transaction: false }"},
		stepBackfill: {"exports.config = { transaction: false }", "knex.raw", "until it changes 0 rows"},
		stepLater:    {"-- pgguard:allow", "knex.raw"},
	},
	ToolTypeORM: {
		stepOutside:  {"transaction = false", "-t each"},
		stepSeparate: {"migration of its own", "-t each"},
		stepBackfill: {"transaction = false", "queryRunner.query", "until it changes 0 rows"},
		stepLater:    {"-- pgguard:allow", "queryRunner.query"},
	},
	ToolNodePgMigrate: {
		stepOutside:  {"pgm.noTransaction()"},
		stepSeparate: {"migration of its own", "pgm.noTransaction()"},
		stepBackfill: {"pgm.noTransaction()", "pgm.db.query", "until it changes 0 rows"},
		stepLater:    {"-- pgguard:allow", "pgm.sql"},
	},
	ToolGolangMigrate: {
		stepOutside:  {"migration file of its own", "without BEGIN/COMMIT"},
		stepSeparate: {"migration file of its own"},
		stepBackfill: {"migration file of its own", "COMMIT"},
		stepLater:    {"-- pgguard:allow"},
	},
	ToolDjango: {
		stepOutside:  {"atomic = False"},
		stepSeparate: {"migration of its own"},
		stepBackfill: {"atomic = False", "RunPython"},
		stepLater:    {"/* pgguard:allow", "RunSQL(["},
	},
	ToolRails: {
		stepOutside:  {"disable_ddl_transaction!"},
		stepSeparate: {"migration of its own"},
		stepBackfill: {"disable_ddl_transaction!", "execute"},
		stepLater:    {"-- pgguard:allow", "execute"},
	},
	ToolFlyway: {
		stepOutside:  {"executeInTransaction=false"},
		stepSeparate: {"versioned migration of its own"},
		stepBackfill: {"executeInTransaction=false", "COMMIT"},
		stepLater:    {"/* pgguard:allow"},
	},
	ToolLiquibase: {
		stepOutside:  {"runInTransaction:false"},
		stepSeparate: {"changeset of its own"},
		stepBackfill: {"runInTransaction:false", "COMMIT"},
		stepLater:    {"/* pgguard:allow"},
	},
	ToolPrisma: {
		stepOutside:  {"migration of its own"},
		stepSeparate: {"migration of its own"},
		stepBackfill: {"migration.sql", "COMMIT"},
		stepLater:    {"-- pgguard:allow"},
	},
}

// fixWords are the words of a step that a fix, one sentence, need not
// repeat: the recipe spells the transaction's BEGIN; and COMMIT;.
func fixWords(tool Tool, s step) []string {
	w := stepWords[tool][s]
	if tool == ToolUnknown && s == stepSeparate {
		return w[:1]
	}
	return w
}

// recipeHas reports which steps a recipe holds, by its statements: a
// VALIDATE after an ADD ... NOT VALID, a statement that runs outside a
// transaction, a batch.
func recipeHas(hint string) map[step]bool {
	has := map[step]bool{}
	for _, line := range strings.Split(hint, "\n") {
		if strings.HasPrefix(line, "--") {
			continue
		}
		switch {
		case strings.Contains(line, "VALIDATE CONSTRAINT"):
			has[stepSeparate] = true
		case strings.Contains(line, "INDEX CONCURRENTLY"), strings.Contains(line, "REINDEX") && strings.Contains(line, "CONCURRENTLY"),
			strings.Contains(line, "PARTITION") && strings.Contains(line, "CONCURRENTLY"), strings.Contains(line, "ADD VALUE"):
			has[stepOutside] = true
		case strings.Contains(line, "LIMIT 10000"):
			has[stepBackfill] = true
		}
	}
	return has
}

// matrixFinding is one finding of a rule's fixture, for one tool.
type matrixFinding struct {
	rule, label       string
	message, fix      string
	detail, hint      string
	tool              Tool
	statementFixtures int
}

// toolMatrix runs every rule's bad.sql fixtures for tool, in fixture order.
func toolMatrix(t *testing.T, tool Tool) []matrixFinding {
	t.Helper()
	var out []matrixFinding
	for _, rule := range Rules() {
		e := fixtureEngine(t, rule)
		for _, s := range readFixture(t, filepath.Join("testdata", rule.ID, "bad.sql")) {
			sc := fixtureContext(t, s.Text)
			sc.Tool = tool
			d := e.Decide(context.Background(), s, sc)
			for _, f := range d.Findings {
				if f.RuleID != rule.ID {
					continue
				}
				_, fix, _ := strings.Cut(f.Message, "Fix: ")
				out = append(out, matrixFinding{rule: rule.ID, label: rule.ID + " bad.sql:" + itoa(s.Line), message: f.Message,
					fix: fix, detail: f.Detail, hint: f.Hint, tool: tool})
			}
		}
	}
	return out
}

func toolName(tool Tool) string {
	if tool == ToolUnknown {
		return "no tool known"
	}
	return toolNames[tool]
}

// TestFixMatrix: for every rule that can refuse and every tool pgguard
// recognises (and none), each finding's message ends with a fix that
// says, in that tool's terms, how to write each step it asks for (run
// outside a transaction, in a transaction of its own, a batched backfill,
// deprecate then drop), and its recipe says so before each such step;
// nothing names another tool, a known tool's fix is never the generic
// one, and a known tool's recipe has no BEGIN;/COMMIT; of its own (the
// tool runs the migration's transaction). With no tool known, a recipe
// spells each transaction: BEGIN; ... COMMIT; around a step that must be a
// transaction of its own.
func TestFixMatrix(t *testing.T) {
	t.Parallel()
	for _, r := range Rules() {
		_, steps := ruleSteps[r.ID]
		_, sqlOnly := sqlOnlyFixes[r.ID]
		_, typed := typeFixes[r.ID]
		if n := btoi(steps) + btoi(sqlOnly) + btoi(typed); n != 1 {
			t.Errorf("rule %s must be in exactly one of ruleSteps, sqlOnlyFixes and typeFixes (is in %d)", r.ID, n)
		}
	}
	tools := append([]Tool{ToolUnknown}, Tools...)
	if len(stepWords) != len(tools) {
		t.Errorf("stepWords has %d tools, pgguard knows %d (and none)", len(stepWords), len(tools)-1)
	}
	cells, findings := 0, 0
	for _, tool := range tools {
		seen := map[string]bool{}
		for _, f := range toolMatrix(t, tool) {
			findings++
			if !seen[f.rule] {
				seen[f.rule] = true
				cells++
			}
			where := f.label + ", " + toolName(tool)
			if f.fix == "" {
				t.Errorf("%s: the message carries no fix: %s", where, f.message)
				continue
			}
			for _, s := range stepsOf(f.rule, f.message) {
				for _, w := range fixWords(tool, s) {
					if !strings.Contains(f.fix, w) {
						t.Errorf("%s: the fix asks for %s without %q:\n  Fix: %s", where, stepNames[s], w, f.fix)
					}
				}
			}
			if typ, ok := typeFixes[f.rule]; ok {
				if !strings.Contains(f.fix, typ) {
					t.Errorf("%s: the fix does not name the type %s:\n  Fix: %s", where, typ, f.fix)
				}
				w, code := typeWords[tool][typ]
				switch {
				case code && !strings.Contains(f.fix, w):
					t.Errorf("%s: the fix does not say %q, how %s declares a %s column:\n  Fix: %s", where, w, toolName(tool), typ, f.fix)
				case !code && strings.Contains(f.fix, "(in "):
					t.Errorf("%s: the fix speaks of a schema builder the tool has not:\n  Fix: %s", where, f.fix)
				}
			}
			has := recipeHas(f.hint)
			for _, s := range stepsOf(f.rule, f.message) {
				if !has[s] || s == stepLater {
					continue
				}
				for _, w := range stepWords[tool][s] {
					if !strings.Contains(f.hint, w) {
						t.Errorf("%s: the recipe holds %s without %q:\n%s", where, stepNames[s], w, f.hint)
					}
				}
			}
			text := f.message + "\n" + f.detail + "\n" + f.hint
			for other, words := range toolMarkers {
				if other == tool {
					continue
				}
				for _, w := range words {
					if containsWord(text, w) {
						t.Errorf("%s: names %q, of %s:\n%s", where, w, toolName(other), text)
					}
				}
			}
			if tool == ToolUnknown {
				continue
			}
			for _, generic := range []string{"your tool", "a migration tool", "in a transaction of its own (COMMIT"} {
				if strings.Contains(f.fix, generic) {
					t.Errorf("%s: a generic fix (%q) where the tool is known:\n  Fix: %s", where, generic, f.fix)
				}
			}
			for _, line := range strings.Split(f.hint, "\n") {
				if line == "BEGIN;" || line == "COMMIT;" {
					t.Errorf("%s: the recipe has a %s line of its own, inside a migration the tool runs:\n%s", where, line, f.hint)
				}
			}
		}
		for _, r := range Rules() {
			if !seen[r.ID] {
				t.Errorf("rule %s: no fixture refused for %s", r.ID, toolName(tool))
			}
		}
	}
	t.Logf("%d rules x %d tools (and none) = %d cells, %d findings checked", len(Rules()), len(Tools), cells, findings)
}

// TestToolFixesDoc: docs/tools/fixes.md is the fix each tool's user reads
// in the message of each rule's refusal (the first finding of the rule's
// fixtures), generated from TestFixMatrix's runs; -update rewrites it.
func TestToolFixesDoc(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("# What each tool's user reads when pgguard refuses\n\n" +
		"Generated by `go test ./policy -run TestToolFixesDoc -update` from the same runs as `TestFixMatrix`\n" +
		"(every rule's first refused fixture, `policy/testdata/<rule>/bad.sql`, with the session's tool set to\n" +
		"each tool pgguard recognises, and to none); the test fails when this page is out of date. Each cell\n" +
		"is the `Fix:` that ends the refusal's message, the one part every tool prints (knex's migrator,\n" +
		"TypeORM's CLI and Prisma print nothing else); the recipe in the detail and the hint says the same\n" +
		"step by step. What each tool prints around it, from the tools' own runs, is on the tool's page.\n\n")
	fixes := toolFixes(t)
	var ids []string
	for _, r := range Rules() {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	b.WriteString("Rules: ")
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("[" + id + "](#" + id + ")")
	}
	b.WriteString(".\n")
	for _, id := range ids {
		b.WriteString("\n## " + id + "\n\n")
		if why, ok := sqlOnlyFixes[id]; ok {
			b.WriteString("The fix is " + why + ": the same words for every tool.\n\n")
		}
		b.WriteString(fixTable(fixes, id))
	}
	path := filepath.Join("..", "docs", "tools", "fixes.md")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./policy -run TestToolFixesDoc -update)", err)
	}
	if string(want) != b.String() {
		t.Errorf("%s is out of date (run go test ./policy -run TestToolFixesDoc -update and review the diff):\n%s", path, lineDiff(string(want), b.String()))
	}
}

// toolFixes is the fix of each rule's first refused fixture for each tool
// pgguard recognises, and none: what TestToolFixesDoc and
// TestRuleDocsInYourTool write.
func toolFixes(t *testing.T) map[Tool]map[string]string {
	t.Helper()
	fixes := map[Tool]map[string]string{}
	for _, tool := range append([]Tool{ToolUnknown}, Tools...) {
		fixes[tool] = map[string]string{}
		for _, f := range toolMatrix(t, tool) {
			if _, ok := fixes[tool][f.rule]; !ok {
				fixes[tool][f.rule] = f.fix
			}
		}
	}
	return fixes
}

// fixTable is rule id's row of fixes, one line a tool.
func fixTable(fixes map[Tool]map[string]string, id string) string {
	var b strings.Builder
	b.WriteString("| tool | the message ends with |\n|---|---|\n")
	for _, tool := range append([]Tool{ToolUnknown}, Tools...) {
		b.WriteString("| " + toolName(tool) + " | Fix: " + strings.ReplaceAll(fixes[tool][id], "|", `\|`) + " |\n")
	}
	return b.String()
}

const (
	beginInYourTool = "<!-- BEGIN generated by go test ./policy -run TestRuleDocsInYourTool -update -->"
	endInYourTool   = "<!-- END generated -->"
)

// TestRuleDocsInYourTool: each docs/rules page has a section "In your
// tool", after its hand-written recipe (plain SQL, "in a separate
// transaction"), that says what the refusal's fix says in each migration
// tool: the same fixes as docs/tools/fixes.md, from the same runs; the
// test fails when a page's section is out of date, and -update rewrites
// it (or adds it before "## rules.yaml").
func TestRuleDocsInYourTool(t *testing.T) {
	t.Parallel()
	fixes := toolFixes(t)
	for _, r := range Rules() {
		id := r.ID
		var b strings.Builder
		b.WriteString(beginInYourTool + "\n\n")
		if why, ok := sqlOnlyFixes[id]; ok {
			b.WriteString("The fix is " + why + ", the same in every migration tool: the refusal's message ends with\n\n" +
				"> Fix: " + fixes[ToolUnknown][id] + "\n\n")
		} else {
			b.WriteString("The recipe above is plain SQL. When pgguard knows the migration tool behind the session\n" +
				"(see [docs/tools](../tools/README.md)), the refusal's fix and recipe say each step in that tool's terms;\n" +
				"the message ends with:\n\n")
			b.WriteString(fixTable(fixes, id) + "\n")
		}
		b.WriteString("Every rule's row: [docs/tools/fixes.md](../tools/fixes.md#" + id + ").\n\n" + endInYourTool)
		section := b.String()
		path := filepath.Join("..", "docs", "rules", id+".md")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		page := string(data)
		i, j := strings.Index(page, beginInYourTool), strings.Index(page, endInYourTool)
		var now string
		switch {
		case i >= 0 && j > i:
			now = page[:i] + section + page[j+len(endInYourTool):]
		case *update && strings.Contains(page, "\n## rules.yaml"):
			k := strings.Index(page, "\n## rules.yaml")
			now = page[:k] + "\n## In your tool\n\n" + section + "\n" + page[k:]
		default:
			t.Errorf("%s has no generated section \"In your tool\" (run go test ./policy -run TestRuleDocsInYourTool -update)", path)
			continue
		}
		if now == page {
			continue
		}
		if *update {
			if err := os.WriteFile(path, []byte(now), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s is out of date (run go test ./policy -run TestRuleDocsInYourTool -update and review the diff):\n%s", path, lineDiff(page, now))
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
