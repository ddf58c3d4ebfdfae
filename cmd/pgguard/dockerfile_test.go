package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerStage is one FROM ... stage of the Dockerfile.
type dockerStage struct {
	from         string
	instructions []string // "RUN make build ...", continuation lines joined
}

func parseDockerfile(t *testing.T, path string) []dockerStage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if cur == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		cur += line
		if f := strings.Fields(cur); len(f) > 1 && strings.EqualFold(f[0], "FROM") {
			stages = append(stages, dockerStage{from: f[1]})
		} else if len(stages) > 0 {
			stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, cur)
		}
		cur = ""
	}
	return stages
}

func (s dockerStage) find(keyword string) []string {
	var out []string
	for _, in := range s.instructions {
		if f := strings.Fields(in); len(f) > 0 && strings.EqualFold(f[0], keyword) {
			out = append(out, strings.TrimSpace(in[len(f[0]):]))
		}
	}
	return out
}

// There is no Docker engine here: this checks what can be checked offline.
// The image builds the binary with `make build` (so with the Makefile's
// flags and stamps), runs it as a non-root user on a runtime image of the
// same Debian release as the build image, and the binary links against
// nothing that image lacks.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t, "../../Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, runtime := stages[0], stages[len(stages)-1]

	// Build: golang on bookworm (gcc for cgo), via make build with the stamps.
	if !regexp.MustCompile(`^golang:1\.\d+(\.\d+)?-bookworm$`).MatchString(build.from) {
		t.Errorf("build stage FROM %s, want golang:<version>-bookworm (Debian 12, the runtime's glibc)", build.from)
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil || !strings.HasPrefix(build.from, "golang:"+string(goVersion[1])) {
		t.Errorf("build stage FROM %s does not match go.mod's go %s", build.from, goVersion[1])
	}
	var makeBuild string
	for _, r := range build.find("RUN") {
		if strings.Contains(r, "go build") {
			t.Errorf("the Dockerfile runs go build itself (%q): use make build so the flags cannot drift from the Makefile's", r)
		}
		if strings.Contains(r, "make build") {
			makeBuild = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=1", `VERSION="$VERSION"`, `COMMIT="$COMMIT"`, "BIN=/out/pgguard"} {
		if !strings.Contains(makeBuild, want) {
			t.Errorf("build RUN %q lacks %s", makeBuild, want)
		}
	}
	for _, arg := range []string{"VERSION", "COMMIT"} {
		if !slices.ContainsFunc(build.find("ARG"), func(a string) bool { return strings.HasPrefix(a, arg) }) {
			t.Errorf("build stage has no ARG %s", arg)
		}
	}
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(makefile), "--build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT)") {
		t.Error("make image does not pass VERSION and COMMIT as build arguments")
	}
	image := regexp.MustCompile(`(?m)^IMAGE\s*\?=\s*(\S+)`).FindSubmatch(makefile)
	if image == nil {
		t.Fatal("the Makefile defines no IMAGE")
	}
	dockerfile, _ := os.ReadFile("../../Dockerfile")
	if !strings.Contains(string(dockerfile), string(image[1])) {
		t.Errorf("the Dockerfile does not document the image name %s", image[1])
	}

	// Runtime: Debian 12 with glibc, a non-root user, the binary as entry point.
	if !strings.HasPrefix(runtime.from, "gcr.io/distroless/base-debian12") && !strings.HasPrefix(runtime.from, "debian:12") && !strings.HasPrefix(runtime.from, "debian:bookworm") {
		t.Errorf("runtime stage FROM %s, want distroless/base-debian12 or debian:12", runtime.from)
	}
	users := runtime.find("USER")
	if len(users) == 0 {
		t.Error("the runtime stage sets no USER: the image would run as root")
	}
	for _, u := range users {
		if name := strings.SplitN(u, ":", 2)[0]; name == "root" || name == "0" {
			t.Errorf("runtime USER %s is root", u)
		}
	}
	if e := runtime.find("ENTRYPOINT"); len(e) != 1 || e[0] != `["/pgguard"]` {
		t.Errorf("ENTRYPOINT %v, want [\"/pgguard\"]", e)
	}
	if c := runtime.find("COPY"); len(c) != 1 || c[0] != "--from=build /out/pgguard /pgguard" {
		t.Errorf("runtime COPY %v, want the binary make build wrote", c)
	}
	// The ports it exposes are the ones it listens on.
	exposed := strings.Fields(strings.Join(runtime.find("EXPOSE"), " "))
	env := strings.Join(runtime.find("ENV"), " ")
	for _, name := range []string{"PGGUARD_LISTEN", "PGGUARD_ADMIN"} {
		m := regexp.MustCompile(name + `=(\S+)`).FindStringSubmatch(env)
		if m == nil {
			t.Errorf("runtime stage sets no %s", name)
			continue
		}
		_, port, err := net.SplitHostPort(m[1])
		if err != nil || !slices.Contains(exposed, port) {
			t.Errorf("%s=%s: port not in EXPOSE %v", name, m[1], exposed)
		}
	}

	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "bin/", "**/node_modules/"} {
		if !slices.Contains(strings.Split(string(ignore), "\n"), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// The binary make build writes needs only glibc's libraries, which the
// runtime image (distroless/base-debian12) provides: pg_query is linked in
// statically.
func TestBinaryDynamicDependencies(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("no ldd here")
	}
	out, err := exec.Command("ldd", madeBinary(t)).Output()
	if err != nil {
		t.Fatalf("ldd: %v", err)
	}
	allowed := regexp.MustCompile(`^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|libresolv\.so\.2|ld-linux[-\w.]*\.so\.\d)$`)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		lib := filepath.Base(strings.Fields(line)[0])
		if !allowed.MatchString(lib) {
			t.Errorf("the binary needs %s, which the runtime image lacks:\n%s", lib, out)
		}
	}
}
