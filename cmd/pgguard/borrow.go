package main

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/internal/pgcatalog"
)

// sizesFileCheck is how often a sizes_file is looked at for a new version.
const sizesFileCheck = 10 * time.Second

// sizeReporter is a source of borrowed sizes that reports its state.
type sizeReporter interface {
	pgcatalog.SizeSource
	State() pgcatalog.SizeState
}

// borrowing is the running sources of the targets that borrow sizes: one
// per file and one per source target, however many targets share it.
type borrowing struct {
	entries []borrowEntry
	stops   []func()
}

type borrowEntry struct {
	target string
	src    sizeReporter
}

// startBorrowing starts the sources of o.borrow and gives each borrowing
// target its source.
func startBorrowing(o *serveOptions, log *slog.Logger) (*borrowing, error) {
	b := &borrowing{}
	live := map[string]*pgcatalog.LiveSizes{}
	files := map[string]*pgcatalog.FileSizes{}
	for _, spec := range o.borrow {
		var src sizeReporter
		switch {
		case spec.file != "":
			f := files[spec.file]
			if f == nil {
				var err error
				if f, err = pgcatalog.NewFileSizes(spec.file, log); err != nil {
					b.stop()
					return nil, fmt.Errorf("target %s: sizes_file: %w", spec.target, err)
				}
				files[spec.file] = f
				b.stops = append(b.stops, f.Watch(sizesFileCheck))
			}
			src = f
		default:
			l := live[spec.from]
			if l == nil {
				l = pgcatalog.NewLiveSizes(spec.from, spec.conn, spec.refresh, log)
				live[spec.from] = l
				b.stops = append(b.stops, l.Start())
			}
			src = l
		}
		for i := range o.proxy.Targets {
			if o.proxy.Targets[i].Name == spec.target {
				o.proxy.Targets[i].Sizes = src
			}
		}
		b.entries = append(b.entries, borrowEntry{target: spec.target, src: src})
		log.Info("borrowed sizes: target judged with another database's table sizes", "target", spec.target, "source", src.State().Source)
	}
	return b, nil
}

func (b *borrowing) stop() {
	for _, s := range b.stops {
		s()
	}
	b.stops = nil
}

// metrics lists the state of every borrowing target for /metrics.
func (b *borrowing) metrics() []observe.BorrowedSizes {
	now := time.Now()
	out := make([]observe.BorrowedSizes, 0, len(b.entries))
	for _, e := range b.entries {
		st := e.src.State()
		m := observe.BorrowedSizes{Target: e.target, Source: st.Source, Failures: st.Failures, Age: -1}
		if !st.AsOf.IsZero() {
			m.Age, m.InUse = now.Sub(st.AsOf).Seconds(), true
		}
		out = append(out, m)
	}
	return out
}

// report writes a line per borrowing target for /readiness. Like the
// upstreams, a source that cannot be read is detail, not unreadiness: the
// sessions are judged with their own database's sizes meanwhile.
func (b *borrowing) report(w io.Writer) {
	now := time.Now()
	for _, e := range b.entries {
		st := e.src.State()
		switch {
		case !st.AsOf.IsZero() && st.Err == nil:
			fmt.Fprintf(w, "sizes %s: from %s, as of %s (%s old)\n", e.target, st.Source, st.AsOf.UTC().Format(time.RFC3339), ago(now, st.AsOf))
		case !st.AsOf.IsZero():
			fmt.Fprintf(w, "sizes %s: from %s, as of %s (%s old); reading them again failed: %v\n", e.target, st.Source, st.AsOf.UTC().Format(time.RFC3339), ago(now, st.AsOf), st.Err)
		case st.Err != nil:
			fmt.Fprintf(w, "sizes %s: %s cannot be read, the target's own sizes are used: %v\n", e.target, st.Source, st.Err)
		default:
			fmt.Fprintf(w, "sizes %s: %s not read yet, the target's own sizes are used\n", e.target, st.Source)
		}
	}
}
