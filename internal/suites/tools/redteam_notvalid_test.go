package tools

import (
	"context"
	"path/filepath"
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

// The Rails fix followed literally (testdata/rails/check-not-valid:
// add_check_constraint ... validate: false, then validate_check_constraint
// in a migration of its own), run by ActiveRecord through pgguard: pgguard
// refuses neither, and the constraint ends VALID.
func TestRedteamRailsNotValidFollowed(t *testing.T) {
	t.Parallel()
	needPG(t)
	ruby := lookPath(t, "ruby", "apt-get install ruby-activerecord ruby-pg")
	project := need(t, "testdata/rails", "the Rails project", "testdata")
	db := database(t, "redteam_rails_notvalid")
	r := runTool(t, project, baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+filepath.Join(project, "check-not-valid")), ruby, "migrate.rb")
	if r.code != 0 {
		t.Fatalf("the fix, followed, was refused or failed: %s", r)
	}
	var valid bool
	if err := direct(t, db).QueryRow(context.Background(), "SELECT convalidated FROM pg_constraint WHERE conname = 'big_account_nonnegative'").Scan(&valid); err != nil || !valid {
		t.Fatalf("the constraint is not VALID (%v, %v): %s", valid, err, r)
	}
}
