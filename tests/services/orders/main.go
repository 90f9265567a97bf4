// orders: a small Go service that is not perflab's sample service, for perflab's tests.
//
// It reproduces the three bottleneck signatures with the standard library only, each behind
// one knob, so a default and a fixed run differ in exactly one setting:
//
//	POST /login   PBKDF2-SHA256 (crypto/pbkdf2), PBKDF2_ITER iterations: CPU-bound (login storm)
//	POST /orders  one write through a database/sql pool of POOL_SIZE connections over an
//	              in-process driver that holds its connection HOLD_MS ± HOLD_JITTER (false idle)
//	GET  /report  calls a dependency (a second listener in this binary) that never answers in
//	              time for DEP_TIMEOUT_FRAC of users; RETRY_POLICY immediate|backoff|none (retry storm)
//
// Observability as a Go service owner would have it: net/http/pprof on /debug/pprof/ (block and
// mutex profiles switched on, CPU samples labelled with the route), expvar on /debug/vars and
// /metrics in Prometheus text format with prometheus/client_golang's collector names.
//
// Every setting is an environment variable (what `perflab run --set KEY=VALUE` sets) and a flag
// of the same meaning; a flag wins over the variable.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

type config struct {
	addr           string
	depAddr        string
	pbkdf2Iter     int
	pool           int
	hold           time.Duration
	holdJitter     float64
	depTimeoutFrac float64
	depTimeout     time.Duration
	depSlow        time.Duration
	depFast        time.Duration
	retry          string
	retries        int
	backoffMax     int
	backoffBase    time.Duration
	retryBudget    float64
	blockRate      int
	mutexFraction  int
}

// envOr reads a setting's default from the environment; a malformed value stops the service
// with one line rather than running with a setting nobody asked for.
type envOr struct{ bad []string }

func (e *envOr) str(name, dflt string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return dflt
}

func (e *envOr) int(name string, dflt int) int {
	v := e.str(name, "")
	if v == "" {
		return dflt
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.bad = append(e.bad, fmt.Sprintf("%s=%q: not an integer", name, v))
	}
	return n
}

func (e *envOr) float(name string, dflt float64) float64 {
	v := e.str(name, "")
	if v == "" {
		return dflt
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		e.bad = append(e.bad, fmt.Sprintf("%s=%q: not a number", name, v))
	}
	return f
}

func (e *envOr) ms(name string, dflt time.Duration) time.Duration {
	v := e.str(name, "")
	if v == "" {
		return dflt
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		e.bad = append(e.bad, fmt.Sprintf("%s=%q: not a number of milliseconds", name, v))
	}
	return time.Duration(f * float64(time.Millisecond))
}

func parseConfig(args []string) (config, error) {
	var c config
	var e envOr
	fs := flag.NewFlagSet("orders", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", e.str("ADDR", "127.0.0.1:8080"), "listen address (ADDR)")
	fs.StringVar(&c.depAddr, "dep-addr", e.str("DEP_ADDR", "127.0.0.1:0"), "the dependency's listen address (DEP_ADDR)")
	// 600,000: OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
	fs.IntVar(&c.pbkdf2Iter, "pbkdf2-iter", e.int("PBKDF2_ITER", 600000), "PBKDF2-SHA256 iterations per login (PBKDF2_ITER)")
	fs.IntVar(&c.pool, "pool", e.int("POOL_SIZE", 2), "database/sql max open connections (POOL_SIZE)")
	fs.DurationVar(&c.hold, "hold", e.ms("HOLD_MS", 50*time.Millisecond), "how long a write holds its connection (HOLD_MS)")
	fs.Float64Var(&c.holdJitter, "hold-jitter", e.float("HOLD_JITTER", 1.0), "hold ± this fraction, uniform (HOLD_JITTER)")
	fs.Float64Var(&c.depTimeoutFrac, "dep-timeout-frac", e.float("DEP_TIMEOUT_FRAC", 0.3), "fraction of users the dependency never answers in time (DEP_TIMEOUT_FRAC)")
	fs.DurationVar(&c.depTimeout, "dep-timeout", e.ms("DEP_TIMEOUT_MS", 100*time.Millisecond), "timeout of one dependency call (DEP_TIMEOUT_MS)")
	fs.DurationVar(&c.depSlow, "dep-slow", e.ms("DEP_SLOW_MS", time.Second), "the dependency's time for a slow user (DEP_SLOW_MS)")
	fs.DurationVar(&c.depFast, "dep-fast", e.ms("DEP_FAST_MS", 10*time.Millisecond), "the dependency's time otherwise (DEP_FAST_MS)")
	fs.StringVar(&c.retry, "retry", e.str("RETRY_POLICY", "immediate"), "after a dependency timeout: immediate|backoff|none (RETRY_POLICY)")
	fs.IntVar(&c.retries, "retries", e.int("RETRIES", 5), "retries of the immediate policy (RETRIES)")
	fs.IntVar(&c.backoffMax, "backoff-max-attempts", e.int("BACKOFF_MAX_ATTEMPTS", 3), "attempts of the backoff policy, the first included (BACKOFF_MAX_ATTEMPTS)")
	fs.DurationVar(&c.backoffBase, "backoff-base", e.ms("BACKOFF_BASE_MS", 50*time.Millisecond), "first backoff window; doubles per retry, full jitter (BACKOFF_BASE_MS)")
	fs.Float64Var(&c.retryBudget, "retry-budget", e.float("RETRY_BUDGET_RATIO", 0.1), "backoff: retries allowed per request, a token bucket (RETRY_BUDGET_RATIO)")
	// 10 µs: every pool wait (milliseconds) is recorded, short channel hand-offs are sampled.
	fs.IntVar(&c.blockRate, "block-profile-rate", e.int("BLOCK_PROFILE_RATE", 10000), "runtime.SetBlockProfileRate, ns (BLOCK_PROFILE_RATE)")
	fs.IntVar(&c.mutexFraction, "mutex-profile-fraction", e.int("MUTEX_PROFILE_FRACTION", 5), "runtime.SetMutexProfileFraction (MUTEX_PROFILE_FRACTION)")
	if len(e.bad) > 0 {
		return c, errors.New(e.bad[0])
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.retry != "immediate" && c.retry != "backoff" && c.retry != "none":
		return c, fmt.Errorf("RETRY_POLICY=%q: one of immediate, backoff, none", c.retry)
	case c.pool < 1:
		return c, fmt.Errorf("POOL_SIZE=%d: at least 1", c.pool)
	case c.pbkdf2Iter < 1:
		return c, fmt.Errorf("PBKDF2_ITER=%d: at least 1", c.pbkdf2Iter)
	case c.depTimeoutFrac < 0 || c.depTimeoutFrac > 1:
		return c, fmt.Errorf("DEP_TIMEOUT_FRAC=%g: between 0 and 1", c.depTimeoutFrac)
	case c.backoffMax < 1:
		return c, fmt.Errorf("BACKOFF_MAX_ATTEMPTS=%d: at least 1", c.backoffMax)
	}
	return c, nil
}

func (c config) asMap() map[string]any {
	return map[string]any{
		"PBKDF2_ITER": c.pbkdf2Iter, "POOL_SIZE": c.pool, "HOLD_MS": c.hold.Seconds() * 1000,
		"HOLD_JITTER": c.holdJitter, "DEP_TIMEOUT_FRAC": c.depTimeoutFrac,
		"DEP_TIMEOUT_MS": c.depTimeout.Seconds() * 1000, "DEP_SLOW_MS": c.depSlow.Seconds() * 1000,
		"DEP_FAST_MS": c.depFast.Seconds() * 1000, "RETRY_POLICY": c.retry, "RETRIES": c.retries,
		"BACKOFF_MAX_ATTEMPTS": c.backoffMax, "BACKOFF_BASE_MS": c.backoffBase.Seconds() * 1000,
		"RETRY_BUDGET_RATIO": c.retryBudget, "BLOCK_PROFILE_RATE": c.blockRate,
		"MUTEX_PROFILE_FRACTION": c.mutexFraction, "GOMAXPROCS": runtime.GOMAXPROCS(0),
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	cfg, err := parseConfig(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(2)
	}
	runtime.SetBlockProfileRate(cfg.blockRate)
	runtime.SetMutexProfileFraction(cfg.mutexFraction)

	depLn, err := net.Listen("tcp", cfg.depAddr)
	if err != nil {
		log.Fatalf("dependency listen %s: %v", cfg.depAddr, err)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		log.Fatalf("listen %s: %v", cfg.addr, err)
	}

	m := newMetrics()
	db := openDB(cfg)
	defer db.Close()
	m.db = db
	publishExpvar(m, cfg)

	app := &app{cfg: cfg, m: m, db: db, dep: newDependencyClient(cfg, "http://"+depLn.Addr().String(), m)}
	srv := &http.Server{Handler: app.routes(), ReadHeaderTimeout: 10 * time.Second}
	depSrv := &http.Server{Handler: dependencyHandler(cfg), ReadHeaderTimeout: 10 * time.Second}

	go func() { _ = depSrv.Serve(depLn) }()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("serve: %v", err)
		}
	}()
	log.Printf("orders listening on %s (dependency on %s) %v", ln.Addr(), depLn.Addr(), cfg.asMap())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = depSrv.Shutdown(ctx)
	log.Printf("orders stopped")
}
