package tools

import (
	"testing"

	"github.com/pgguard/pgguard/policy"
)

// Django (Debian's python3-django with psycopg2, run by Debian's python3):
// each migration in a transaction of its own unless it says atomic = False.
// manage.py migrate prints a traceback ending with psycopg2's error, which
// carries the message, the detail and the hint.
func TestDjango(t *testing.T) {
	t.Parallel()
	needPG(t)
	python := "/usr/bin/python3"
	if r := runTool(t, ".", baseEnv(), python, "-c", "import django, psycopg2"); r.code != 0 {
		missing(t, "Django", nil, "apt-get install python3-django python3-psycopg2")
	}
	project := need(t, "testdata/django", "the Django project", "testdata")
	runScenarios(t, tool{
		name:         "django",
		sense:        policy.ToolDjango,
		ledger:       "SELECT name FROM django_migrations WHERE app = 'shop' ORDER BY id",
		idiom:        "AddIndexConcurrently",
		printsDetail: true,
		migrate: func(t *testing.T, db, sc string) result {
			env := baseEnv("DATABASE_URL="+url(db), "SCENARIO="+sc, "PYTHONPATH="+project, "DJANGO_SETTINGS_MODULE=settings")
			return runTool(t, project, env, python, "-m", "django", "migrate", "shop", "--no-input")
		},
	}, scenarios())
}
