package tools

import (
	"strings"
	"testing"
)

// Rails and Django have their own way to add a constraint NOT VALID and
// validate it later: add_foreign_key / add_check_constraint with
// validate: false, then validate_foreign_key / validate_check_constraint
// (Rails 6.1+); AddConstraintNotValid, then ValidateConstraint
// (django.contrib.postgres.operations, Django 4.0+, CHECK constraints). A
// Rails user whose add_foreign_key was refused read only "Fix: add it NOT
// VALID, then VALIDATE CONSTRAINT in a migration of its own", and the
// recipe was SQL alone: nothing said what to write in Rails.
func TestRedteamNotValidInToolTerms(t *testing.T) {
	t.Parallel()
	needPG(t)
	db := database(t, "redteam_notvalid")
	for _, c := range []struct {
		app, sql string
		want     []string
	}{
		{"rails", "ALTER TABLE big ADD CONSTRAINT big_account_fk FOREIGN KEY (account) REFERENCES big (id)", []string{"validate: false", "validate_foreign_key"}},
		{"rails", "ALTER TABLE big ADD CONSTRAINT big_account_positive CHECK (account > 0)", []string{"validate: false", "validate_check_constraint"}},
		{"django", "ALTER TABLE big ADD CONSTRAINT big_account_positive CHECK (account > 0)", []string{"AddConstraintNotValid", "ValidateConstraint"}},
	} {
		pe := refusal(t, db, c.app, c.sql)
		_, fix, _ := strings.Cut(pe.Message, " Fix: ")
		for _, w := range c.want {
			if !strings.Contains(fix, w) {
				t.Errorf("%s as %s: the fix does not say %q:\n  Fix: %s", c.sql, c.app, w, fix)
			}
		}
	}
}
