package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runnableInfo is the info string of a fenced block that this test runs:
//
//	```sh runnable
//	bin/pgguard version
//	```
//
// Mark only blocks that work offline on a machine with the repository built
// (`make build`): no server, no network, no Docker. Each block runs with
// bash -euo pipefail in its own copy of the repository (every top-level
// entry symlinked, bin/pgguard built by `make build`), so files it writes
// land in that copy. Plain ```sh blocks are shown, not run.
const runnableInfo = "sh runnable"

// docBlock is one runnable block of a Markdown file.
type docBlock struct {
	file   string
	line   int // of the opening fence
	script string
}

var fence = regexp.MustCompile("^(\\s*)(```+)\\s*(.*)$")

func runnableBlocks(t *testing.T, file string) (blocks []docBlock) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cur *docBlock
	var open string
	for i, line := range strings.Split(string(data), "\n") {
		m := fence.FindStringSubmatch(line)
		switch {
		case cur == nil && open == "" && m != nil:
			open = m[2]
			if strings.TrimSpace(m[3]) == runnableInfo {
				cur = &docBlock{file: file, line: i + 1}
			}
		case open != "" && m != nil && m[2] == open && m[3] == "":
			if cur != nil {
				blocks = append(blocks, *cur)
			}
			cur, open = nil, ""
		case cur != nil:
			cur.script += line + "\n"
		}
	}
	if open != "" {
		t.Errorf("%s: a fenced block is not closed", file)
	}
	return blocks
}

// Every runnable block of README.md and docs/*.md exits 0.
func TestDocsRunnableBlocks(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	var blocks []docBlock
	for _, f := range files {
		blocks = append(blocks, runnableBlocks(t, f)...)
	}
	// A marker renamed by mistake would make this test pass by running nothing.
	if len(blocks) < 8 {
		t.Fatalf("only %d runnable blocks in README.md and docs/*.md; has the %q marker changed?", len(blocks), runnableInfo)
	}
	bin := madeBinary(t)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		rel, _ := filepath.Rel(root, b.file)
		t.Run(fmt.Sprintf("%s:%d", strings.ReplaceAll(rel, "/", "_"), b.line), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, e := range entries {
				if e.Name() != "bin" {
					if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())); err != nil {
						t.Fatal(err)
					}
				}
			}
			os.Mkdir(filepath.Join(dir, "bin"), 0o755)
			if err := os.Symlink(bin, filepath.Join(dir, "bin", "pgguard")); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", b.script)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s:%d: %v\n--- script\n%s--- output\n%s", rel, b.line, err, b.script, out)
			}
		})
	}
}

// The block parser finds only blocks marked runnable, with their text.
func TestRunnableBlocksParser(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "x.md")
	os.WriteFile(f, []byte("text\n```sh\nnot run\n```\n\n```sh runnable\necho one\necho two\n```\n````md\n```sh runnable\nnested, not run\n```\n````\n"), 0o644)
	got := runnableBlocks(t, f)
	if len(got) != 1 || got[0].line != 6 || got[0].script != "echo one\necho two\n" {
		t.Errorf("got %+v", got)
	}
}
