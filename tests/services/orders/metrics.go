package main

import (
	"bytes"
	"database/sql"
	"expvar"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The standard library has no Prometheus client, so /metrics is written by hand in the text
// exposition format 0.0.4, under the names prometheus/client_golang's Go, process and DBStats
// collectors use (what a dashboard or perflab recognises without a mapping), plus the
// service's own orders_* series. expvar publishes the same counters on /debug/vars.

// prometheus.DefBuckets: client_golang's default histogram buckets, in seconds.
var defBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

var routes = []string{"/login", "/orders", "/report"}

// Error kinds published from the start, so a rate over a run has a first sample at zero.
var errorKinds = []string{"bad_request", "canceled", "db", "dependency", "internal", "timeout"}

var processStart = time.Now()

type histogram struct {
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

type routeCode struct {
	route string
	code  int
}

type metrics struct {
	db *sql.DB

	mu        sync.Mutex
	requests  map[routeCode]uint64
	durations map[string]*histogram
	errors    map[string]uint64

	inFlight           atomic.Int64
	dependencyCalls    atomic.Int64
	dependencyTimeouts atomic.Int64
	retries            atomic.Int64

	// expvar's view of the same numbers.
	varRequests *expvar.Int
	varErrors   *expvar.Map
}

func newMetrics() *metrics {
	m := &metrics{
		requests:  map[routeCode]uint64{},
		durations: map[string]*histogram{},
		errors:    map[string]uint64{},
	}
	for _, r := range routes {
		m.durations[r] = &histogram{counts: make([]uint64, len(defBuckets)+1)}
	}
	for _, k := range errorKinds {
		m.errors[k] = 0
	}
	return m
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	s := d.Seconds()
	m.mu.Lock()
	m.requests[routeCode{route, code}]++
	h := m.durations[route]
	h.counts[sort.SearchFloat64s(defBuckets, s)]++
	h.sum += s
	h.count++
	m.mu.Unlock()
	m.varRequests.Add(1)
}

func (m *metrics) countError(kind string) {
	m.mu.Lock()
	m.errors[kind]++
	m.mu.Unlock()
	m.varErrors.Add(kind, 1)
}

func publishExpvar(m *metrics, cfg config) {
	m.varRequests = expvar.NewInt("requests")
	m.varErrors = expvar.NewMap("errors")
	for _, k := range errorKinds {
		m.varErrors.Add(k, 0)
	}
	expvar.Publish("in_flight", expvar.Func(func() any { return m.inFlight.Load() }))
	expvar.Publish("dependency_calls", expvar.Func(func() any { return m.dependencyCalls.Load() }))
	expvar.Publish("dependency_timeouts", expvar.Func(func() any { return m.dependencyTimeouts.Load() }))
	expvar.Publish("retries", expvar.Func(func() any { return m.retries.Load() }))
	expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
	expvar.Publish("db", expvar.Func(func() any {
		s := m.db.Stats()
		return map[string]any{
			"max_open_connections": s.MaxOpenConnections, "open_connections": s.OpenConnections,
			"in_use": s.InUse, "idle": s.Idle, "wait_count": s.WaitCount,
			"wait_duration_seconds": s.WaitDuration.Seconds(),
		}
	}))
	expvar.Publish("config", expvar.Func(func() any { return cfg.asMap() }))
}

// promWriter writes one metric family at a time: # HELP, # TYPE, then its samples.
type promWriter struct{ b bytes.Buffer }

func (p *promWriter) family(name, typ, help string) {
	fmt.Fprintf(&p.b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (p *promWriter) sample(name string, labels [][2]string, v float64) {
	p.b.WriteString(name)
	if len(labels) > 0 {
		p.b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				p.b.WriteByte(',')
			}
			fmt.Fprintf(&p.b, "%s=%s", l[0], strconv.Quote(l[1]))
		}
		p.b.WriteByte('}')
	}
	p.b.WriteByte(' ')
	p.b.WriteString(formatFloat(v))
	p.b.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func (p *promWriter) gauge(name, help string, v float64, labels ...[2]string) {
	p.family(name, "gauge", help)
	p.sample(name, labels, v)
}

func (p *promWriter) counter(name, help string, v float64, labels ...[2]string) {
	p.family(name, "counter", help)
	p.sample(name, labels, v)
}

func lbl(k, v string) [2]string { return [2]string{k, v} }

func (m *metrics) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	var p promWriter
	m.writeGoCollector(&p)
	m.writeProcessCollector(&p)
	m.writeDBStats(&p, "orders")
	m.writeOwn(&p)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(p.b.Bytes())
}

func (m *metrics) writeGoCollector(p *promWriter) {
	gc := debug.GCStats{PauseQuantiles: make([]time.Duration, 5)}
	debug.ReadGCStats(&gc)
	p.family("go_gc_duration_seconds", "summary", "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.")
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		p.sample("go_gc_duration_seconds", [][2]string{lbl("quantile", q)}, gc.PauseQuantiles[i].Seconds())
	}
	p.sample("go_gc_duration_seconds_sum", nil, gc.PauseTotal.Seconds())
	p.sample("go_gc_duration_seconds_count", nil, float64(gc.NumGC))

	p.gauge("go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	threads, _ := runtime.ThreadCreateProfile(nil)
	p.gauge("go_threads", "Number of OS threads created.", float64(threads))
	p.gauge("go_info", "Information about the Go environment.", 1, lbl("version", runtime.Version()))

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.gauge("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", float64(ms.Alloc))
	p.counter("go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already.", float64(ms.TotalAlloc))
	p.gauge("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", float64(ms.HeapAlloc))
	p.gauge("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", float64(ms.HeapInuse))
	p.gauge("go_memstats_heap_objects", "Number of currently allocated objects.", float64(ms.HeapObjects))
	p.gauge("go_memstats_sys_bytes", "Number of bytes obtained from system.", float64(ms.Sys))
	p.gauge("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", float64(ms.NextGC))
}

func (m *metrics) writeProcessCollector(p *promWriter) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		p.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", cpu)
	}
	// /proc/self/statm: size resident shared text lib data dt, in pages.
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 2 {
			if pages, err := strconv.ParseFloat(f[1], 64); err == nil {
				p.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", pages*float64(os.Getpagesize()))
			}
			if pages, err := strconv.ParseFloat(f[0], 64); err == nil {
				p.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", pages*float64(os.Getpagesize()))
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		p.gauge("process_open_fds", "Number of open file descriptors.", float64(len(fds)))
	}
	p.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
		float64(processStart.UnixNano())/1e9)
}

func (m *metrics) writeDBStats(p *promWriter, dbName string) {
	s := m.db.Stats()
	db := lbl("db_name", dbName)
	p.gauge("go_sql_max_open_connections", "Maximum number of open connections to the database.", float64(s.MaxOpenConnections), db)
	p.gauge("go_sql_open_connections", "The number of established connections both in use and idle.", float64(s.OpenConnections), db)
	p.gauge("go_sql_in_use_connections", "The number of connections currently in use.", float64(s.InUse), db)
	p.gauge("go_sql_idle_connections", "The number of idle connections.", float64(s.Idle), db)
	p.counter("go_sql_wait_count_total", "The total number of connections waited for.", float64(s.WaitCount), db)
	p.counter("go_sql_wait_duration_seconds_total", "The total time blocked waiting for a new connection.", s.WaitDuration.Seconds(), db)
	p.counter("go_sql_max_idle_closed_total", "The total number of connections closed due to SetMaxIdleConns.", float64(s.MaxIdleClosed), db)
	p.counter("go_sql_max_idle_time_closed_total", "The total number of connections closed due to SetConnMaxIdleTime.", float64(s.MaxIdleTimeClosed), db)
	p.counter("go_sql_max_lifetime_closed_total", "The total number of connections closed due to SetConnMaxLifetime.", float64(s.MaxLifetimeClosed), db)
}

func (m *metrics) writeOwn(p *promWriter) {
	m.mu.Lock()
	keys := make([]routeCode, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].route != keys[j].route {
			return keys[i].route < keys[j].route
		}
		return keys[i].code < keys[j].code
	})
	p.family("orders_http_requests_total", "counter", "HTTP requests answered, by route and status code.")
	for _, k := range keys {
		p.sample("orders_http_requests_total", [][2]string{lbl("route", k.route), lbl("code", strconv.Itoa(k.code))}, float64(m.requests[k]))
	}
	p.family("orders_http_request_duration_seconds", "histogram", "HTTP request latency, by route.")
	for _, r := range routes {
		h := m.durations[r]
		var cum uint64
		for i, le := range defBuckets {
			cum += h.counts[i]
			p.sample("orders_http_request_duration_seconds_bucket", [][2]string{lbl("route", r), lbl("le", formatFloat(le))}, float64(cum))
		}
		cum += h.counts[len(defBuckets)]
		p.sample("orders_http_request_duration_seconds_bucket", [][2]string{lbl("route", r), lbl("le", "+Inf")}, float64(cum))
		p.sample("orders_http_request_duration_seconds_sum", [][2]string{lbl("route", r)}, h.sum)
		p.sample("orders_http_request_duration_seconds_count", [][2]string{lbl("route", r)}, float64(h.count))
	}
	kinds := make([]string, 0, len(m.errors))
	for k := range m.errors {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	p.family("orders_errors_total", "counter", "Requests answered with an error, by kind.")
	for _, k := range kinds {
		p.sample("orders_errors_total", [][2]string{lbl("kind", k)}, float64(m.errors[k]))
	}
	m.mu.Unlock()

	p.gauge("orders_http_in_flight_requests", "Requests being served.", float64(m.inFlight.Load()))
	p.counter("orders_dependency_calls_total", "Calls to the report dependency, retries included.", float64(m.dependencyCalls.Load()))
	p.counter("orders_dependency_timeouts_total", "Calls to the report dependency that timed out.", float64(m.dependencyTimeouts.Load()))
	p.counter("orders_retries_total", "Retried dependency calls.", float64(m.retries.Load()))
}
