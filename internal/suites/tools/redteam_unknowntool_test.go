package tools

import (
	"context"
	"strings"
	"testing"
)

// Tools pgguard does not know keep their ledger in a table called
// schema_migrations too: Ecto (Phoenix) and dbmate. A session that reads
// it, without golang-migrate's dirty column, was taken for Rails, and
// its refusals told an Ecto or dbmate user to write
// disable_ddl_transaction! and algorithm: :concurrently. With no tool
// known, the fix must be plain SQL, naming no tool. The statements are
// what Ecto 3 and dbmate send before their first migration.
func TestRedteamSchemaMigrationsOfUnknownTools(t *testing.T) {
	t.Parallel()
	needPG(t)
	ctx := context.Background()
	for name, ledger := range map[string][]string{
		"ecto": {
			`CREATE TABLE IF NOT EXISTS "schema_migrations" ("version" bigint, "inserted_at" timestamp(0), PRIMARY KEY ("version"))`,
			`SELECT s0."version"::bigint FROM "schema_migrations" AS s0`,
		},
		"dbmate": {
			`create table if not exists public.schema_migrations (version varchar(128) primary key)`,
			`select version from public.schema_migrations order by version desc`,
		},
	} {
		db := database(t, "redteam_"+name)
		conn := recipeConn(t, db, "")
		for _, q := range ledger {
			if _, err := conn.Exec(ctx, q).ReadAll(); err != nil {
				t.Fatalf("%s: %s: %v", name, q, err)
			}
		}
		_, err := conn.Exec(ctx, "BEGIN; CREATE INDEX big_note_idx ON big (note)").ReadAll()
		conn.Close(ctx)
		if err == nil || !strings.Contains(err.Error(), "pgguard: create-index:") {
			t.Fatalf("%s: CREATE INDEX in a transaction was not refused: %v", name, err)
		}
		for _, other := range otherToolNames {
			if other != "psql" && strings.Contains(err.Error(), other) {
				t.Errorf("%s: the refusal names %s, a tool the session is not: %v", name, other, err)
			}
		}
		if !strings.Contains(err.Error(), "outside any transaction block") {
			t.Errorf("%s: the fix is not plain SQL's: %v", name, err)
		}
	}
}
