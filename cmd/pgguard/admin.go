package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/pgguard/pgguard/proxy"
)

// adminServer serves the health endpoints, following the Cloud SQL Auth
// Proxy's conventions: /startup turns 200 once listening, /liveness is 200
// while the process runs, /readiness is 503 while starting, draining after a
// signal, or when --max-connections are all in use. It also serves /metrics
// and, with --pprof, /debug/pprof/.
type adminServer struct {
	http    *http.Server
	started atomic.Bool
}

// adminOptions are what the admin server serves besides health.
type adminOptions struct {
	metrics   http.Handler     // /metrics; nil: not served
	pprof     bool             // /debug/pprof/
	upstreams *upstreamChecker // reported by /readiness; nil: not reported
	sizes     *borrowing       // borrowed sizes, reported by /readiness; nil: none
}

func startAdmin(addr string, srv *proxy.Server, log *slog.Logger, opts adminOptions) (*adminServer, error) {
	if addr == "" || addr == "off" {
		return nil, nil
	}
	a := &adminServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/startup", func(w http.ResponseWriter, r *http.Request) {
		if !a.started.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/liveness", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readiness", func(w http.ResponseWriter, r *http.Request) {
		status, state := http.StatusOK, "ok"
		switch {
		case !a.started.Load():
			status, state = http.StatusServiceUnavailable, "starting"
		case srv.Draining():
			status, state = http.StatusServiceUnavailable, "draining"
		case srv.Full():
			status, state = http.StatusServiceUnavailable, "max connections in use"
		}
		// The upstreams' state is detail only: an unreachable database does
		// not fail readiness (see upstreamChecker).
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		fmt.Fprintln(w, state)
		if opts.upstreams != nil {
			opts.upstreams.report(w)
		}
		if opts.sizes != nil {
			opts.sizes.report(w)
		}
	})
	if opts.metrics != nil {
		mux.Handle("/metrics", opts.metrics)
	}
	if opts.pprof {
		// Profiles expose internals: only on request, on the admin address.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	a.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go a.http.Serve(l)
	log.Info("admin server listening", "admin", l.Addr().String(), "pprof", opts.pprof)
	return a, nil
}

func (a *adminServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	a.http.Shutdown(ctx)
}
