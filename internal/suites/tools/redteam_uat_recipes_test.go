package tools

import (
	"strings"
	"testing"

	"github.com/pgguard/pgguard/policy"
)

// TestRedteamRecipesInSmallUAT: the backfill recipes pgguard gives
// (large-dml's batch, and the backfill step of add-column-volatile-default,
// alter-column-type and add-column-not-null-without-default), run by each
// tool's rig on a 10-row UAT judged with production's sizes (guardtest's
// UAT target: big's 300,000 rows). The statement is refused there as in
// production, naming production's size; the recipe must then run there as
// it runs in production. Before the batch bound (pgcatalog.BatchBound)
// every batch, which touches all 10 of UAT's rows, was scaled to
// production's 300,000 and refused, in every tool: the fix of a UAT
// refusal could not be followed in UAT.
func TestRedteamRecipesInSmallUAT(t *testing.T) {
	t.Parallel()
	needPG(t)
	backfills := map[string]bool{"large-dml": true, "add-column-volatile-default": true, "alter-column-type": true, "add-column-not-null-without-default": true}
	tools := []recipeTool{psqlTool(), fileTool("golang-migrate"), migrateCLI(), prismaDeployRig(), jvmTool("flyway"), flywayCLI(), liquibaseCLI(), plainTool("none-do", true)}
	for _, tl := range tools {
		t.Run(tl.name, func(t *testing.T) {
			t.Parallel()
			switch tl.name {
			case "psql":
				lookPath(t, "psql", "apt-get install postgresql-client")
			case "flyway", "flyway-cli", "liquibase-cli":
				jvm(t)
			}
			for _, c := range recipeCases {
				if !backfills[c.rule] {
					continue
				}
				t.Run(c.rule, func(t *testing.T) {
					db := smallUAT(t, "recipe_"+tl.name)
					pe := refusal(t, db, tl.app, c.sql)
					if sizeDependent(c.rule) && !strings.Contains(pe.Detail, "in production (sizes as of ") {
						t.Errorf("the UAT refusal does not say the size is production's: %s", pe.Detail)
					}
					runRecipe(t, tl, c, db, 10)
				})
			}
		})
	}
}

// sizeDependent reports whether rule id decides by the table's size.
func sizeDependent(id string) bool {
	for _, r := range policy.Rules() {
		if r.ID == id {
			return r.SizeDependent
		}
	}
	return false
}
