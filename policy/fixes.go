package policy

import "strings"

// ruleFixes is each rule's essential fix in one sentence. It ends the
// message of every finding of the rule, because some migration tools print
// only the message of an error (knex, TypeORM's CLI): the detail and the
// hint, with the full recipe, never reach their users. Rules whose fix
// depends on the session (create-index and concurrently-in-transaction say
// how to run a statement outside a transaction in the terms of the tool
// behind it) put a "Fix:" sentence in their own messages; this one is then
// not added.
var ruleFixes = map[string]string{
	"add-check-constraint":                 "add it NOT VALID, then VALIDATE CONSTRAINT {separate}{notvalid:check}.",
	"add-column-not-null-without-default":  "add the column nullable (or with a constant DEFAULT), backfill it in batches {backfill}, then add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it {separate} and SET NOT NULL.",
	"add-column-serial-identity-generated": "add a plain nullable column whose default fills new rows, backfill the existing rows in batches of 10000 {backfill}, then add NOT NULL with a CHECK NOT VALID validated {separate}.",
	"add-column-volatile-default":          "add the column without the default, set the default in a second statement, then backfill existing rows in batches {backfill}.",
	"add-exclude-constraint":               "there is no online way: add it when the table is new or empty, or in a maintenance window with {allow:add-exclude-constraint}.",
	"add-foreign-key":                      "add it NOT VALID, then VALIDATE CONSTRAINT {separate}{notvalid:fk}.",
	"add-primary-key":                      "build a unique index CONCURRENTLY, {outside-index}, then ADD PRIMARY KEY USING INDEX.",
	"add-unique-constraint":                "build a unique index CONCURRENTLY, {outside-index}, then ADD CONSTRAINT ... UNIQUE USING INDEX.",
	"alter-domain-constraint":              "keep the domain's constraint NOT VALID (ADD CONSTRAINT ... NOT VALID) and check the existing rows with a CHECK NOT VALID on each table's column, VALIDATEd {separate}: the domain's own VALIDATE CONSTRAINT blocks writes as it scans.",
	"alter-column-type":                    "add a column of the new type, keep it in step with a trigger, backfill it in batches of 10000 {backfill}, then swap it in for the old one in one short transaction.",
	"attach-partition":                     "add a CHECK constraint matching the partition bounds NOT VALID, VALIDATE it {separate}, then ATTACH.",
	"cluster":                              "use pg_repack, which reorders the table online, or run CLUSTER in a maintenance window.",
	"concurrently-in-transaction":          "run it {outside}.",
	"create-index":                         "use CREATE INDEX CONCURRENTLY, {outside-index}.",
	"detach-partition":                     "use DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+), {outside}.",
	"drop-column":                          "deploy code that no longer uses the column first, then drop it with {allow:drop-column}.",
	"drop-index":                           "use DROP INDEX CONCURRENTLY, {outside}.",
	"drop-table":                           "deploy code that no longer uses it first, then drop it with {allow:drop-table}.",
	"invalid-index":                        "drop the INVALID index with DROP INDEX CONCURRENTLY, then create it again CONCURRENTLY, each {outside}.",
	"large-dml":                            "change the rows in batches of at most 10000 (WHERE ... LIMIT 10000) {backfill}.",
	"lock-timeout":                         "keep lock_timeout above 0 and at most max_lock_timeout.",
	"prefer-bigint":                        "use bigint (bigserial, or GENERATED ... AS IDENTITY on bigint){type:bigint}.",
	"prefer-jsonb":                         "use jsonb{type:jsonb}.",
	"prefer-text":                          "use text{type:text}, with a CHECK on its length if one is needed.",
	"prefer-timestamptz":                   "use timestamptz{type:timestamptz}.",
	"refresh-materialized-view":            "create a unique index on the view (CREATE UNIQUE INDEX CONCURRENTLY, {outside-index}) and use REFRESH MATERIALIZED VIEW CONCURRENTLY.",
	"reindex":                              "use REINDEX ... CONCURRENTLY (PostgreSQL 12+), {outside}.",
	"rename-column":                        "over three deployments: add the new column and write both; backfill it in batches {backfill}, then read the new one; then stop using the old one and drop it with {allow:drop-column}.",
	"rename-table":                         "rename it with {allow:rename-table} and create a view under the old name (CREATE VIEW old AS SELECT * FROM new) in the same transaction, and drop the view once the code has moved.",
	"require-if-exists":                    "add IF NOT EXISTS or IF EXISTS, so that a re-run after a partial failure passes.",
	"require-named-constraint":             "name it: CONSTRAINT <name> ....",
	"require-named-index":                  "name the index: CREATE INDEX <name> ON ....",
	"set-access-method":                    "copy the data into a new table with that access method in batches {backfill}, or run it in a maintenance window.",
	"set-logged":                           "run it in a maintenance window, or copy the data into a new table in batches {backfill}.",
	"set-not-null":                         "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it {separate}, then SET NOT NULL, which then needs no scan (PostgreSQL 12+).",
	"set-tablespace":                       "use pg_repack --tablespace, which moves the table online, or run it in a maintenance window.",
	"truncate":                             "DELETE in batches {backfill}, or, when emptying the table is intended, run it with {allow:truncate}.",
	"vacuum-full":                          "use pg_repack, which compacts the table online, or a plain VACUUM, {outside}.",
	"validate-in-same-transaction":         "commit the ADD ... NOT VALID first, then VALIDATE CONSTRAINT {separate}.",
}

// withFix ends a finding's message with its rule's fix, unless the message
// already gives one. The fix names no other part of the error: some tools
// print only the message. {allow:RULE} in a fix becomes the annotation that
// allows RULE, in the form that reaches pgguard from the session's tool.
func withFix(id, message string, tool Tool) string {
	fix, ok := ruleFixes[id]
	if !ok || strings.Contains(message, "Fix:") {
		return message
	}
	return message + " Fix: " + expandFix(fix, tool)
}

// expandAllow replaces each {allow:RULE} of a fix.
func expandAllow(fix string, tool Tool) string {
	return expandEach(fix, "allow", func(rule string) string {
		a := AllowAnnotation(tool, rule, "...")
		if strings.HasPrefix(a, "--") {
			a = "the line " + a + " before the statement"
		} else {
			a += " before the statement"
		}
		if i, ok := toolIdioms[tool]; ok && i.raw != "" {
			a += ", sent with " + i.raw
		}
		return a
	})
}

// expandEach replaces each {name:ARG} of a fix, left to right, with what
// with returns for ARG; a placeholder left open ends the replacing.
func expandEach(fix, name string, with func(arg string) string) string {
	open := "{" + name + ":"
	for {
		i := strings.Index(fix, open)
		if i < 0 {
			return fix
		}
		j := strings.IndexByte(fix[i:], '}')
		if j < 0 {
			return fix
		}
		fix = fix[:i] + with(fix[i+len(open):i+j]) + fix[i+j+1:]
	}
}
