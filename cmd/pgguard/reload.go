package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/proxy"
)

// reloadPollInterval is how often the rules file is checked for changes
// (fsnotify is not available; a stat every two seconds costs nothing).
const reloadPollInterval = 2 * time.Second

// reloader reloads the policy on SIGHUP and when the rules file changes.
// A new policy is parsed and validated first; only a valid one replaces
// the current engine, for statements that arrive from then on. Sessions
// are never cut. On failure the old policy stays and the reason is logged.
type reloader struct {
	path    string // "" for the built-in policy, which never changes
	policy  *proxy.Policy
	proxy   policy.ProxySettings // the proxy: section the process started with
	targets []proxy.Target
	obs     *observability
	log     *slog.Logger
	// sizes applies the borrowed sizes' settings of a reloaded proxy:
	// section (nil: they change at the next restart only).
	sizes func(*policy.ProxySettings) error
}

// start watches for SIGHUP and file changes until stop is called.
func (r *reloader) start() (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(reloadPollInterval)
		defer tick.Stop()
		last, _ := r.stat()
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := r.obs.reopen(); err != nil {
					r.log.Error("reopening the audit log failed", "err", err)
				}
				last, _ = r.stat()
				r.reload("SIGHUP")
			case <-tick.C:
				if r.path == "" {
					continue
				}
				cur, err := r.stat()
				if err != nil || cur == last {
					continue
				}
				last = cur
				r.reload("rules file changed")
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}

// fileStamp identifies a version of the rules file.
type fileStamp struct {
	mod  time.Time
	size int64
}

func (r *reloader) stat() (fileStamp, error) {
	if r.path == "" {
		return fileStamp{}, nil
	}
	fi, err := os.Stat(r.path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// reload loads, validates and installs the policy, or keeps the old one.
func (r *reloader) reload(trigger string) {
	rules := r.path
	if rules == "" {
		rules = "built-in"
	}
	eng, cfg, err := r.load()
	r.obs.metrics.ConfigLoaded(err)
	if err != nil {
		r.log.Error("policy reload failed: keeping the previous policy", "trigger", trigger, "rules", rules, "err", err)
		return
	}
	r.policy.Swap(eng)
	r.log.Info("policy reloaded: new statements are judged by it", "trigger", trigger, "rules", rules, "mode", cfg.Mode.String())
	if r.sizes != nil && !reflect.DeepEqual(borrowSettings(cfg.Proxy), borrowSettings(r.proxy)) || trigger == "SIGHUP" && r.sizes != nil {
		// On SIGHUP always: a monitor's password_env may have changed.
		if err := r.sizes(&cfg.Proxy); err != nil {
			r.log.Error("borrowed sizes: the new settings are not valid; the previous ones stay in use", "trigger", trigger, "rules", rules, "err", err)
		} else {
			r.log.Info("borrowed sizes: settings applied", "trigger", trigger, "rules", rules)
			r.proxy = withBorrowSettings(r.proxy, cfg.Proxy)
		}
	}
	if !reflect.DeepEqual(withoutBorrowSettings(cfg.Proxy), withoutBorrowSettings(r.proxy)) {
		r.log.Warn("the proxy: section of the rules file changed; those settings take effect at the next restart", "rules", rules)
	}
}

// borrowSettings is what of the proxy: section a reload applies: each
// target's sizes_file, sizes_from, sizes_refresh, sizes_databases and
// monitor: block.
func borrowSettings(p policy.ProxySettings) []policy.TargetSettings {
	out := make([]policy.TargetSettings, len(p.Targets))
	for i, t := range p.Targets {
		out[i] = policy.TargetSettings{Name: t.Name, SizesFile: t.SizesFile, SizesFrom: t.SizesFrom, SizesRefresh: t.SizesRefresh, SizesDatabases: t.SizesDatabases, Monitor: t.Monitor}
	}
	return out
}

// withoutBorrowSettings is p without them, for the restart warning.
func withoutBorrowSettings(p policy.ProxySettings) policy.ProxySettings {
	p.Targets = append([]policy.TargetSettings(nil), p.Targets...)
	for i := range p.Targets {
		t := &p.Targets[i]
		t.SizesFile, t.SizesFrom, t.SizesRefresh, t.SizesDatabases, t.Monitor = "", "", "", nil, nil
	}
	return p
}

// withBorrowSettings is p with next's borrowing settings for the targets
// both name: what runs after they were applied.
func withBorrowSettings(p, next policy.ProxySettings) policy.ProxySettings {
	p.Targets = append([]policy.TargetSettings(nil), p.Targets...)
	for i := range p.Targets {
		t := &p.Targets[i]
		for _, n := range next.Targets {
			if n.Name == t.Name {
				t.SizesFile, t.SizesFrom, t.SizesRefresh, t.SizesDatabases, t.Monitor = n.SizesFile, n.SizesFrom, n.SizesRefresh, n.SizesDatabases, n.Monitor
			}
		}
	}
	return p
}

func (r *reloader) load() (*policy.Engine, *policy.Config, error) {
	cfg, err := loadPolicy(r.path)
	if err != nil {
		return nil, nil, err
	}
	// Targets keep the profile they were started with: it must still exist.
	for _, t := range r.targets {
		if t.Profile == "" {
			continue
		}
		found := false
		for _, p := range cfg.Profiles {
			found = found || p.Name == t.Profile
		}
		if !found {
			return nil, nil, fmt.Errorf("target %s uses profile %q, which the new rules file does not define", t.Name, t.Profile)
		}
	}
	eng, err := policy.NewEngine(cfg)
	if err != nil {
		return nil, nil, err
	}
	return eng, cfg, nil
}
