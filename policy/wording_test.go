package policy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// toolMarkers are the words by which a refusal's text speaks of a
// migration tool: its name and its idioms. ToolUnknown's are psql's, the
// client of plain SQL.
var toolMarkers = map[Tool][]string{
	ToolUnknown:       {"psql", "--single-transaction"},
	ToolSequelize:     {"sequelize", "queryInterface"},
	ToolKnex:          {"knex", "exports.config"},
	ToolTypeORM:       {"TypeORM", "queryRunner", "migration:run"},
	ToolNodePgMigrate: {"node-pg-migrate", "pgm.noTransaction", "pgm.sql"},
	ToolGolangMigrate: {"golang-migrate", ".up.sql"},
	ToolDjango:        {"Django", "atomic = False", "RunSQL", "AddIndexConcurrently"},
	ToolRails:         {"Rails", "ActiveRecord", "disable_ddl_transaction", "algorithm: :concurrently"},
	ToolFlyway:        {"Flyway", "executeInTransaction", ".sql.conf"},
	ToolLiquibase:     {"Liquibase", "changeset", "runInTransaction"},
	ToolPrisma:        {"Prisma", "migration.sql"},
}

// containsWord reports whether text contains w, ignoring case, not as
// part of a longer word.
func containsWord(text, w string) bool {
	lt, lw := strings.ToLower(text), strings.ToLower(w)
	for i := 0; ; {
		j := strings.Index(lt[i:], lw)
		if j < 0 {
			return false
		}
		at := i + j
		end := at + len(lw)
		before := at == 0 || !isWordByte(lt[at-1]) || !isWordByte(lw[0])
		after := end == len(lt) || !isWordByte(lt[end]) || !isWordByte(lw[len(lw)-1])
		if before && after {
			return true
		}
		i = at + 1
	}
}

func isWordByte(b byte) bool {
	return b == '_' || b == '-' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z'
}

// refusalsFor runs every rule's bad.sql fixtures with the session's tool
// set to tool and returns the findings' texts, each labelled.
func refusalsFor(t *testing.T, tool Tool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, rule := range Rules() {
		e := fixtureEngine(t, rule)
		for _, s := range readFixture(t, filepath.Join("testdata", rule.ID, "bad.sql")) {
			sc := fixtureContext(t, s.Text)
			sc.Tool = tool
			d := e.Decide(context.Background(), s, sc)
			for _, f := range d.Findings {
				label := rule.ID + " bad.sql:" + itoa(s.Line) + " " + f.RuleID
				out[label] = f.Message + "\n" + f.Detail + "\n" + f.Hint
			}
		}
	}
	return out
}

func itoa(n int) string {
	var b []byte
	for n >= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(append([]byte{byte('0' + n)}, b...))
}

// TestRefusalsNameOnlyTheirTool: for every rule and every tool (and none),
// no refusal's message, detail or hint names another tool or uses another
// tool's idioms; with no tool known, no tool is named at all.
func TestRefusalsNameOnlyTheirTool(t *testing.T) {
	t.Parallel()
	for _, tool := range append([]Tool{ToolUnknown}, Tools...) {
		name := string(tool)
		if name == "" {
			name = "unknown"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			texts := refusalsFor(t, tool)
			if len(texts) == 0 {
				t.Fatal("no refusals")
			}
			for label, text := range texts {
				for other, words := range toolMarkers {
					if other == tool {
						continue
					}
					for _, w := range words {
						if containsWord(text, w) {
							t.Errorf("%s: the refusal for %s names %q (of %q):\n%s", label, name, w, other, text)
						}
					}
				}
			}
		})
	}
}

// TestRefusalsShowTheirToolsAnnotation: every pgguard:allow annotation a
// refusal shows is in the comment form that reaches pgguard from the tool
// ("/* */" for psql and an unknown tool), and no message's fix points at
// another part of the error, which some tools do not print.
func TestRefusalsShowTheirToolsAnnotation(t *testing.T) {
	t.Parallel()
	for _, tool := range append([]Tool{ToolUnknown}, Tools...) {
		for label, text := range refusalsFor(t, tool) {
			if !toolIdioms[tool].lineComments && strings.Contains(text, "-- "+annotationPrefix) {
				t.Errorf("%s, tool %q: a -- annotation, which does not reach pgguard from it; want /* pgguard:allow ... */:\n%s", label, tool, text)
			}
			msg, _, _ := strings.Cut(text, "\n")
			for _, p := range []string{"see the hint", "see the detail", "in the hint", "in the detail"} {
				if strings.Contains(msg, p) {
					t.Errorf("%s, tool %q: the message points at a part some tools do not print (%q): %s", label, tool, p, msg)
				}
			}
		}
	}
}
