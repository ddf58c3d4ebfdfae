package proxy

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

func TestLoginEveryMethod(t *testing.T) {
	_, addr := startProxy(t, nil)
	ctx := context.Background()
	for _, user := range []string{pgtest.SuperUser, pgtest.TrustUser, pgtest.CleartextUser, pgtest.MD5User, pgtest.SCRAMUser} {
		for _, mode := range []string{"simple_protocol", "cache_statement"} {
			t.Run(user+"/"+mode, func(t *testing.T) {
				conn, err := pgx.Connect(ctx, dsn(addr, user, "default_query_exec_mode="+mode))
				if err != nil {
					t.Fatalf("login through pgguard: %v", err)
				}
				defer conn.Close(ctx)
				var who string
				if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil {
					t.Fatal(err)
				}
				if who != user {
					t.Fatalf("current_user = %q, want %q", who, user)
				}
			})
		}
	}
	t.Run("wrong password", func(t *testing.T) {
		_, err := pgx.Connect(ctx, strings.Replace(dsn(addr, pgtest.SCRAMUser, ""), pgtest.Password, "wrong", 1))
		if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
			t.Fatalf("err = %v, want the server's password authentication failure", err)
		}
	})
}
