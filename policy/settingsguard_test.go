package policy

import "testing"

func TestMayChangeLockTimeout(t *testing.T) {
	t.Parallel()
	for sql, want := range map[string]bool{
		"SET lock_timeout = '2s'":                         false,
		"SET LOCAL lock_timeout TO 5000":                  false,
		"set lock_timeout = '250 ms'":                     false,
		"SET application_name = 'x'":                      false,
		"RESET ALL":                                       false,
		"SELECT 1":                                        false,
		"ALTER TABLE t ADD COLUMN a int":                  false,
		"SET lock_timeout = 0":                            true,
		"SET lock_timeout = '100us'":                      true,
		"SET lock_timeout = 0.4":                          true,
		"SET lock_timeout = '0x0'":                        true,
		"SET lock_timeout = 1e7":                          true,
		`SET "LOCK_TIMEOUT" = 0`:                          true,
		`SET U&"lock\005ftimeout" = 0`:                    true,
		"SET lock_timeout TO DEFAULT":                     true,
		"RESET lock_timeout":                              true,
		"SELECT set_config($1, $2, false)":                true,
		"UPDATE pg_settings SET setting = '0' WHERE true": true,
		"DO $$ BEGIN PERFORM 1; END $$":                   true,
		"CALL p()":                                        true,
		"SET lock_timeout = '2s'; nonsense":               true,
	} {
		if got := MayChangeLockTimeout(sql); got != want {
			t.Errorf("MayChangeLockTimeout(%q) = %v, want %v", sql, got, want)
		}
	}
}
