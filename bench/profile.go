package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// profileSeconds is how long the CPU profile samples.
const profileSeconds = 10

// profile writes a CPU profile of pgguard, taken from its /debug/pprof/
// endpoint on admin, while pgbench -S -M simple -c 8 runs through it.
func profile(ctx context.Context, b *bencher, guard *target, admin, path string) error {
	w := workload{script: "select-only", mode: "simple", clients: 8}
	done := make(chan error, 1)
	go func() {
		// pgbench outlasts the profile by a second at each end.
		_, err := b.runFor(ctx, guard, w, (profileSeconds+2)*time.Second)
		done <- err
	}()
	time.Sleep(time.Second)
	perr := fetchProfile(ctx, admin, path)
	if err := <-done; err != nil {
		return fmt.Errorf("profiling run: %w", err)
	}
	return perr
}

// fetchProfile saves /debug/pprof/profile from the admin server to path.
func fetchProfile(ctx context.Context, admin, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, profileSeconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching pgguard's CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching pgguard's CPU profile: %s (does this pgguard have --pprof?)", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the CPU profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("writing the CPU profile: %w", err)
	}
	return f.Close()
}
