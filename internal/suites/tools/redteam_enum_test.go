package tools

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

// TypeORM's migration:generate changes an enum column's labels by renaming
// the old type, creating the new one under the old name and moving the
// column to it, all in the migration's transaction. pgguard refuses the
// ALTER COLUMN ... TYPE and tells the user to give the enum the new label
// with ALTER TYPE ... ADD VALUE instead, but names the type as the
// refused transaction renamed it ("big_mood_enum_old"), which exists only
// in that transaction: followed literally, once it has rolled back, the
// fix fails with "type big_mood_enum_old does not exist". The fix must
// name the type as it is outside the transaction (big_mood_enum).
func TestRedteamTypeORMEnumChangeFix(t *testing.T) {
	t.Parallel()
	needPG(t)
	db := database(t, "redteam_enum")
	ctx := context.Background()
	if _, err := direct(t, db).Exec(ctx, `CREATE TYPE "public"."big_mood_enum" AS ENUM ('calm', 'busy'); ALTER TABLE big ADD COLUMN mood big_mood_enum`); err != nil {
		t.Fatal(err)
	}
	conn := recipeConn(t, db, "typeorm")
	defer conn.Close(ctx)
	var refusal error
	for _, q := range []string{
		"START TRANSACTION",
		`ALTER TYPE "public"."big_mood_enum" RENAME TO "big_mood_enum_old"`,
		`CREATE TYPE "public"."big_mood_enum" AS ENUM('calm', 'busy', 'angry')`,
		`ALTER TABLE "big" ALTER COLUMN "mood" TYPE "public"."big_mood_enum" USING "mood"::"text"::"public"."big_mood_enum"`,
	} {
		if _, err := conn.Exec(ctx, q).ReadAll(); err != nil {
			refusal = err
			break
		}
	}
	if refusal == nil || !strings.Contains(refusal.Error(), "pgguard: alter-column-type:") {
		t.Fatalf("the column's move to the new enum was not refused: %v", refusal)
	}
	if _, err := conn.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`run (ALTER TYPE \S+ ADD VALUE IF NOT EXISTS )'<new label>'`).FindStringSubmatch(refusal.Error())
	if m == nil {
		t.Fatalf("no ALTER TYPE ... ADD VALUE in the fix: %v", refusal)
	}
	// The fix, followed: outside a transaction, with the new label.
	if _, err := conn.Exec(ctx, m[1]+"'angry'").ReadAll(); err != nil {
		t.Errorf("the fix's %q fails once the migration rolled back: %v\n%v", m[1]+"'angry'", err, refusal)
	}
}
