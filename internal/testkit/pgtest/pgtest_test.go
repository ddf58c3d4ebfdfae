package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestStartLoginsAndRestart(t *testing.T) {
	s := Must(t, Options{TLS: true})
	ctx := context.Background()
	for _, u := range []string{SuperUser, TrustUser, CleartextUser, MD5User, SCRAMUser} {
		conn, err := pgx.Connect(ctx, s.DSN(u, "postgres"))
		if err != nil {
			t.Fatalf("login as %s: %v", u, err)
		}
		conn.Close(ctx)
	}
	if _, err := pgx.Connect(ctx, "postgres://scram_user:wrong@"+s.Addr()+"/postgres?sslmode=disable"); err == nil {
		t.Fatal("scram_user logged in with a wrong password")
	}
	conn, err := pgx.Connect(ctx, "postgres://postgres@"+s.Addr()+"/postgres?sslmode=verify-full&sslrootcert="+s.CAFile)
	if err != nil {
		t.Fatalf("TLS login: %v", err)
	}
	conn.Close(ctx)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, s.DSN(SuperUser, "postgres")); err == nil {
		t.Fatal("connected to a stopped server")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if s.Version < 110000 {
		t.Fatalf("server_version_num = %d", s.Version)
	}
	if _, err := os.Stat(s.DataDir); err != nil {
		t.Fatal(err)
	}
}
