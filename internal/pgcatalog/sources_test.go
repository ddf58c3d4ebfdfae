package pgcatalog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeSizes(t *testing.T, path string, at time.Time, rows int64) {
	t.Helper()
	f := &SizeFile{Format: SizesFormat, Database: "production", ExportedAt: at,
		Relations: []SizeRelation{{Schema: "public", Name: "accounts", Kind: "table", Rows: rows}}}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFileSizesReload: a sizes file replaced is read again; one that
// cannot be read any more leaves the sizes read before in use, counted as
// a failure and reported.
func TestFileSizesReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sizes.json")
	first := time.Date(2026, 12, 7, 10, 42, 0, 0, time.UTC)
	writeSizes(t, path, first, 100)
	f, err := NewFileSizes(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows := func() int64 {
		s, err := f.Sizes()
		if err != nil {
			t.Fatal(err)
		}
		size, _ := s.TableSize("public", "accounts")
		return size.Rows
	}
	if rows() != 100 || !f.State().AsOf.Equal(first) {
		t.Fatalf("first read: %d rows, %+v", rows(), f.State())
	}
	writeSizes(t, path, first.Add(time.Hour), 2000000)
	f.reload()
	if rows() != 2000000 || !f.State().AsOf.Equal(first.Add(time.Hour)) {
		t.Errorf("after the file changed: %d rows, %+v", rows(), f.State())
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.reload()
	st := f.State()
	if rows() != 2000000 || st.Err == nil || st.Failures != 1 || st.AsOf.IsZero() {
		t.Errorf("after the file broke: %d rows, %+v; want the sizes read before, and the error", rows(), st)
	}
	if _, err := NewFileSizes(filepath.Join(t.TempDir(), "missing.json"), nil); err == nil {
		t.Error("a missing file at startup is accepted")
	}
}

// TestLiveSizesMaxAge: a live source's sizes stay in use while reads fail,
// for three refreshes; then Sizes reports why, and the sessions use their
// own database's sizes.
func TestLiveSizesMaxAge(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	l := NewLiveSizes("production", ConnSpec{}, time.Minute, nil)
	l.now = func() time.Time { return now }
	if _, err := l.Sizes(); err == nil {
		t.Fatal("sizes before any read")
	}
	l.done(NewSizes(&SizeFile{Format: 1, ExportedAt: now}, "production"), nil)
	now = now.Add(time.Minute)
	l.done(nil, errors.New("connection refused"))
	if _, err := l.Sizes(); err != nil {
		t.Errorf("one failed refresh: %v; want the sizes read before", err)
	}
	now = now.Add(2*time.Minute + time.Second)
	if _, err := l.Sizes(); err == nil || l.State().AsOf != (time.Time{}) || l.State().Failures != 1 {
		t.Errorf("past three refreshes: %v, %+v; want no sizes in use", err, l.State())
	}
	l.done(NewSizes(&SizeFile{Format: 1, ExportedAt: now}, "production"), nil)
	if _, err := l.Sizes(); err != nil || l.State().Err != nil {
		t.Errorf("read again: %v, %+v", err, l.State())
	}
}
