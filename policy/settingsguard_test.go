package policy

import (
	"github.com/pgguard/pgguard/policy/sqltext"
	"testing"
	"time"
)

func TestMayChangeLockTimeout(t *testing.T) {
	t.Parallel()
	for sql, want := range map[string]bool{
		"SET lock_timeout = '2s'":                         false,
		"SET LOCAL lock_timeout TO 5000":                  false,
		"set lock_timeout = '250 ms'":                     false,
		"SET application_name = 'x'":                      false,
		"RESET ALL":                                       true, // back to the server's default, off unless set
		"SELECT 1":                                        false,
		"ALTER TABLE t ADD COLUMN a int":                  false,
		"SET lock_timeout = 0":                            true,
		"SET lock_timeout = '100us'":                      true,
		"SET lock_timeout = 0.4":                          true,
		"SET lock_timeout = '0x0'":                        true,
		"SET lock_timeout = 1e7":                          true,
		`SET "LOCK_TIMEOUT" = 0`:                          true,
		`SET U&"lock\005ftimeout" = 0`:                    true,
		`SET U&"lock!005ftimeout" UESCAPE '!' = 0`:        true,
		"SET LOCAL statement_timeout = '5s'":              false,
		"set search_path = public":                        false,
		"SET lock_timeout TO DEFAULT":                     true,
		"RESET lock_timeout":                              true,
		"SELECT set_config($1, $2, false)":                true,
		"UPDATE pg_settings SET setting = '0' WHERE true": true,
		"DO $$ BEGIN PERFORM 1; END $$":                   true,
		"CALL p()":                                        true,
		"SET lock_timeout = '2s'; nonsense":               true,
		"ROLLBACK TO SAVEPOINT s":                         true,
		"EXECUTE p":                                       true,
	} {
		if got := MayChangeLockTimeout(sql); got != want {
			t.Errorf("MayChangeLockTimeout(%q) = %v, want %v", sql, got, want)
		}
	}
}

// SessionEffects agrees with the two functions it stands for.
func TestSessionEffects(t *testing.T) {
	for _, sql := range []string{
		"SELECT 1", "SET lock_timeout = 0", "SET lock_timeout = '2s'", "select pg_advisory_lock(1)",
		"SELECT pg_try_advisory_lock(1)", "SELECT set_config($1, $2, false)", "UPDATE pg_settings SET setting = '0'",
		"DO $$ BEGIN END $$", "CALL p()", "INSERT INTO users (s_id, p_id) VALUES ($1, $2)", "reset lock_timeout",
		"SELECT PG_ADVISORY_XACT_LOCK(7)", "SET search_path = x", "SET LOCAL statement_timeout = '5s'",
		`update "knex_migrations_lock" set "is_locked" = $1 where "is_locked" = $2`,
		"SELECT set_config('a', 'b', false); UPDATE knex_migrations_lock SET is_locked = 1",
		"UPDATE databasechangeloglock SET LOCKED = TRUE WHERE ID = 1", "SELECT * FROM knex_migrations_lock",
	} {
		changes, waits := SessionEffects(sql)
		if changes != MayChangeLockTimeout(sql) || waits != WaitsForToolLock(sql) {
			t.Errorf("SessionEffects(%q) = %v, %v", sql, changes, waits)
		}
		// Only a SET or RESET that may name lock_timeout, or a statement
		// naming a tool's lock table, is parsed (and so allocates).
		setsIt := (sqltext.FirstWordIs(sql, "set") || sqltext.FirstWordIs(sql, "reset")) && (sqltext.ContainsFold(sql, "lock_timeout") || sqltext.ContainsFold(sql, "u&"))
		plain := !setsIt && !sqltext.ContainsFold(sql, "migrations_lock") && !sqltext.ContainsFold(sql, "changeloglock")
		if n := testing.AllocsPerRun(10, func() { SessionEffects(sql) }); n != 0 && plain {
			t.Errorf("SessionEffects(%q) allocates", sql)
		}
	}
}

func TestPlainLockTimeout(t *testing.T) {
	t.Parallel()
	for sql, want := range map[string]time.Duration{
		"SET lock_timeout = '2s'":        2 * time.Second,
		"set lock_timeout to 5000":       5 * time.Second,
		"SET LOCAL lock_timeout = '1h'":  time.Hour,
		"SET lock_timeout = '250 ms'":    250 * time.Millisecond,
		"SET lock_timeout = 0":           -1,
		"SET lock_timeout = '0x0'":       -1,
		"SET statement_timeout = '1h'":   -1,
		"RESET lock_timeout":             -1,
		"SELECT 'SET lock_timeout = 1h'": -1,
	} {
		d, ok := PlainLockTimeout(sql)
		if (want < 0) == ok || ok && d != want {
			t.Errorf("PlainLockTimeout(%q) = %v, %v; want %v", sql, d, ok, want)
		}
	}
}
