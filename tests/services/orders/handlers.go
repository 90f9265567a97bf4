package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"expvar"
	"net/http"
	httppprof "net/http/pprof"
	"runtime/pprof"
	"strconv"
	"time"
)

type app struct {
	cfg config
	m   *metrics
	db  *sql.DB
	dep *dependencyClient
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("POST /login", a.instrument("/login", a.login))
	mux.Handle("POST /orders", a.instrument("/orders", a.createOrder))
	mux.Handle("GET /report", a.instrument("/report", a.report))
	mux.HandleFunc("GET /metrics", a.m.serveMetrics)
	mux.Handle("GET /debug/vars", expvar.Handler())
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	return mux
}

// statusWriter remembers the status code for the request counter.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// instrument counts and times a route and runs it under the pprof label route=..., so the CPU
// profile says which route burnt the cycles.
func (a *app) instrument(route string, h func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		a.m.inFlight.Add(1)
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		pprof.Do(r.Context(), pprof.Labels("route", route), func(ctx context.Context) {
			h(sw, r.WithContext(ctx))
		})
		a.m.inFlight.Add(-1)
		a.m.observe(route, sw.code, time.Since(start))
	})
}

func (a *app) fail(w http.ResponseWriter, code int, kind string) {
	a.m.countError(kind)
	writeJSON(w, code, map[string]string{"error": kind})
}

type loginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.User == "" {
		a.fail(w, http.StatusBadRequest, "bad_request")
		return
	}
	// A per-user salt; what matters here is the cost of deriving the key, as on a real login.
	key, err := pbkdf2.Key(sha256.New, req.Password, []byte("orders:"+req.User), a.cfg.pbkdf2Iter, 32)
	if err != nil {
		a.fail(w, http.StatusInternalServerError, "internal")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": req.User, "token": hex.EncodeToString(key[:16])})
}

type orderRequest struct {
	User     string `json:"user"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

func (a *app) createOrder(w http.ResponseWriter, r *http.Request) {
	var req orderRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.User == "" || req.Quantity < 1 {
		a.fail(w, http.StatusBadRequest, "bad_request")
		return
	}
	// One INSERT per request, each holding a pooled connection for the hold time: the pool's
	// capacity is POOL_SIZE / HOLD_MS; past it requests queue in database/sql (WaitCount).
	res, err := a.db.ExecContext(r.Context(),
		"INSERT INTO orders (user_id, item, quantity) VALUES (?, ?, ?)", req.User, req.Item, int64(req.Quantity))
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			a.fail(w, http.StatusServiceUnavailable, "canceled")
		} else {
			a.fail(w, http.StatusInternalServerError, "db")
		}
		return
	}
	id, _ := res.LastInsertId()
	writeJSON(w, http.StatusCreated, map[string]any{"id": id})
}

func (a *app) report(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if user == "" {
		a.fail(w, http.StatusBadRequest, "bad_request")
		return
	}
	body, err := a.dep.fetch(r.Context(), user)
	switch {
	case errors.Is(err, errDependencyTimeout):
		a.fail(w, http.StatusGatewayTimeout, "timeout")
	case errors.Is(err, context.Canceled):
		a.fail(w, http.StatusServiceUnavailable, "canceled")
	case err != nil:
		a.fail(w, http.StatusBadGateway, "dependency")
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}
}
