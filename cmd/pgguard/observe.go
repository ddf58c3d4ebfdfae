package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pgguard/pgguard/proxy"

	"github.com/pgguard/pgguard/internal/observe"
)

// observability is the metrics registry and the audit log of one serve run.
type observability struct {
	registry *prometheus.Registry
	metrics  *observe.Metrics
	audit    *auditFile // nil when the audit log goes to stderr or nowhere
	observer observe.Observer
}

// newObservability builds the metrics and opens the audit log: stderr when
// path is "", none when it is "off", else the file, appended to.
func newObservability(path string, stderr io.Writer, targets []proxy.Target) (*observability, error) {
	o := &observability{registry: prometheus.NewRegistry()}
	o.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o.metrics = observe.NewMetrics(o.registry)
	for _, t := range targets {
		o.metrics.AddTargets(t.Name)
	}
	observers := observe.Observers{o.metrics}
	switch path {
	case "off":
	case "":
		observers = append(observers, observe.NewAuditLog(stderr))
	default:
		f, err := openAuditFile(path)
		if err != nil {
			return nil, err
		}
		o.audit = f
		observers = append(observers, observe.NewAuditLog(f))
	}
	o.observer = observers
	return o, nil
}

// handler serves the registry at /metrics.
func (o *observability) handler() http.Handler {
	return promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{Registry: o.registry})
}

// reopen reopens the audit log file, for log rotation (on SIGHUP).
func (o *observability) reopen() error {
	if o.audit == nil {
		return nil
	}
	return o.audit.reopen()
}

func (o *observability) close() {
	if o.audit != nil {
		o.audit.close()
	}
}

// auditFile is the audit log file, reopened by path on SIGHUP so that
// logrotate can move it away.
type auditFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openAuditFile(path string) (*auditFile, error) {
	a := &auditFile{path: path}
	if err := a.reopen(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *auditFile) reopen() error {
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("opening audit log: %w", err)
	}
	a.mu.Lock()
	old := a.f
	a.f = f
	a.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (a *auditFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Write(p)
}

func (a *auditFile) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.f.Close()
}
