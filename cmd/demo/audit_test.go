package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSummarizeAudit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	os.WriteFile(path, []byte(`{"statement":"CREATE INDEX i ON t (a)","decision":"rewrite","rules":["create-index"],"outcome":"success","sqlstate":"","rewritten_to":"CREATE INDEX CONCURRENTLY i ON t (a)"}
{"statement":"ALTER TABLE ledger ADD COLUMN reference uuid DEFAULT gen_random_uuid() -- a long statement","decision":"reject","rules":["add-column-volatile-default"],"outcome":"rejected","sqlstate":"42501"}
`), 0o644)
	var out strings.Builder
	if err := summarizeAudit(&out, path); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"2 JSON lines",
		"   rewrite  success        CREATE INDEX i ON t (a) [create-index]\n",
		"                           ran instead: CREATE INDEX CONCURRENTLY i ON t (a)\n",
		"   reject   rejected 42501 ALTER TABLE ledger ADD COLUMN reference uuid DEFAULT gen_ra… [add-column-volatile-default]\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	os.WriteFile(path, []byte("not json\n"), 0o644)
	if err := summarizeAudit(&out, path); err == nil {
		t.Error("no error for a line that is not JSON")
	}
}
