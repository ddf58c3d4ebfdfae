package peers

import "testing"

// The names of subtests that name a file in t.TempDir differ from run to
// run; the comparison must see one test, and leave other digits alone.
func TestTempDirsInTestNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"TestParseConfigSSLCertMode/servicefile='/tmp/TestParseConfigSSLCertMode841023208/001/pg_service.conf'_service=test",
			"TestParseConfigSSLCertMode/servicefile='/tmp/TestParseConfigSSLCertModeTMP/pg_service.conf'_service=test"},
		{"TestCodec/int8/16/x", "TestCodec/int8/16/x"},
		{"TestConnect/Unix_socket", "TestConnect/Unix_socket"},
	} {
		if got := tempDirs.ReplaceAllString(tc.in, "${1}TMP/"); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A divergent subtest is run again through its top-level test, once per
// name, in the packages where they diverged.
func TestRerunArgs(t *testing.T) {
	t.Parallel()
	pkgs, run := rerunArgs([]divergence{
		{pkg: "example.com/a", test: "TestX/sub"},
		{pkg: "example.com/a", test: "TestX/other"},
		{pkg: "example.com/b", test: "TestY.Z"},
	})
	if len(pkgs) != 2 || pkgs[0] != "example.com/a" || pkgs[1] != "example.com/b" {
		t.Errorf("packages %q", pkgs)
	}
	if want := `^(TestX|TestY\.Z)$`; run != want {
		t.Errorf("-run %q, want %q", run, want)
	}
}
