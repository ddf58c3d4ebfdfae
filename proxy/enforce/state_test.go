package enforce

import "testing"

func TestParseServerVersion(t *testing.T) {
	for in, want := range map[string]int{"15.18 (Debian 15.18-0+deb12u1)": 150018, "17.0": 170000, "18beta1": 180000, "9.6.24": 90624, "": 0, "x": 0} {
		if got := parseServerVersion(in); got != want {
			t.Errorf("parseServerVersion(%q) = %d, want %d", in, got, want)
		}
	}
}

// ParameterStatus bodies are recorded, and the few the policy asks for per
// statement are kept parsed.
func TestSetParameter(t *testing.T) {
	var s State
	for _, p := range []string{
		"server_version\x0015.18 (Debian 15.18-0+deb12u1)\x00",
		"TimeZone\x00Europe/Berlin\x00",
		"standard_conforming_strings\x00off\x00",
		"application_name\x00psql\x00",
		"truncated\x00", // no value: ignored
	} {
		s.SetParameter([]byte(p))
	}
	if v, tz := s.versionAndTimeZone(); v != 150018 || tz != "Europe/Berlin" {
		t.Errorf("versionAndTimeZone() = %d, %q", v, tz)
	}
	if !s.BackslashQuote() {
		t.Error("BackslashQuote() = false after standard_conforming_strings=off")
	}
	if got := s.Parameter("application_name"); got != "psql" {
		t.Errorf("Parameter(application_name) = %q", got)
	}
	if got := s.Parameter("truncated"); got != "" {
		t.Errorf("Parameter(truncated) = %q, want none", got)
	}
	s.SetParameter([]byte("standard_conforming_strings\x00on\x00"))
	if s.BackslashQuote() {
		t.Error("BackslashQuote() = true after standard_conforming_strings=on")
	}
}

// CurrentApplicationName is the startup packet's until the server reports
// one, then the last one reported; the relay's two loops read and write it
// at once.
func TestCurrentApplicationName(t *testing.T) {
	s := State{ApplicationName: "from-startup"}
	if got := s.CurrentApplicationName(); got != "from-startup" {
		t.Fatalf("before any report: %q", got)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			s.SetParameter([]byte("application_name\x00PostgreSQL JDBC Driver\x00"))
		}
	}()
	for i := 0; i < 1000; i++ {
		if got := s.CurrentApplicationName(); got != "from-startup" && got != "PostgreSQL JDBC Driver" {
			t.Fatalf("while reported: %q", got)
		}
	}
	<-done
	s.SetParameter([]byte("application_name\x00flyway\x00"))
	if got := s.CurrentApplicationName(); got != "flyway" || s.ApplicationName != "from-startup" {
		t.Fatalf("after SET: current %q, startup %q", got, s.ApplicationName)
	}
	s.SetParameter([]byte("application_name\x00\x00"))
	if got := s.CurrentApplicationName(); got != "" {
		t.Fatalf("after RESET to empty: %q", got)
	}
}
