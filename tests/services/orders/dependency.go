package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// The dependency is a second HTTP server in this binary (its own port, uninstrumented, as a
// downstream service would be). For DEP_TIMEOUT_FRAC of users, chosen by a hash of the user
// id, it takes DEP_SLOW_MS, far beyond the caller's DEP_TIMEOUT_MS: like a query missing an
// index for some tenants, every attempt of such a request times out. Retrying it at once only
// multiplies the calls (the retry storm); backoff with a budget bounds them.
func dependencyHandler(cfg config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		d := cfg.depFast
		if slowUser(user, cfg.depTimeoutFrac) {
			d = cfg.depSlow
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"user": user, "orders": len(user) * 3, "total": 42.5})
	})
	return mux
}

func slowUser(user string, frac float64) bool {
	h := fnv.New32a()
	_, _ = h.Write([]byte(user))
	return float64(h.Sum32()%10000) < frac*10000
}

var errDependencyTimeout = errors.New("dependency timeout")

type dependencyClient struct {
	cfg    config
	base   string
	client *http.Client
	m      *metrics
	budget *retryBudget
}

func newDependencyClient(cfg config, base string, m *metrics) *dependencyClient {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	return &dependencyClient{
		cfg: cfg, base: base, m: m, client: &http.Client{Transport: tr},
		// Up to 10 retries saved up: a short burst may retry, a sustained failure may not.
		budget: &retryBudget{ratio: cfg.retryBudget, max: 10, tokens: 1},
	}
}

func (d *dependencyClient) attempts() int {
	switch d.cfg.retry {
	case "immediate":
		return 1 + d.cfg.retries
	case "backoff":
		return d.cfg.backoffMax
	}
	return 1
}

// fetch calls the dependency under the retry policy; every attempt is a dependency call, every
// attempt after the first a retry.
func (d *dependencyClient) fetch(ctx context.Context, user string) ([]byte, error) {
	if d.cfg.retry == "backoff" {
		d.budget.deposit()
	}
	var err error
	for attempt := 0; attempt < d.attempts(); attempt++ {
		if attempt > 0 {
			if d.cfg.retry == "backoff" {
				if !d.budget.spend() {
					return nil, err
				}
				// Full jitter: a pause drawn from [0, base·2^(attempt-1)).
				window := d.cfg.backoffBase << (attempt - 1)
				if werr := sleepCtx(ctx, time.Duration(rand.Int64N(int64(window)+1))); werr != nil {
					return nil, werr
				}
			}
			d.m.retries.Add(1)
		}
		var body []byte
		body, err = d.once(ctx, user)
		if err == nil || !errors.Is(err, errDependencyTimeout) {
			return body, err
		}
	}
	return nil, err
}

func (d *dependencyClient) once(ctx context.Context, user string) ([]byte, error) {
	d.m.dependencyCalls.Add(1)
	actx, cancel := context.WithTimeout(ctx, d.cfg.depTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, d.base+"/report?user="+user, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.client.Do(req)
	if err == nil {
		defer resp.Body.Close()
		var body []byte
		body, err = io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("dependency answered %d", resp.StatusCode)
		}
		if err == nil && !json.Valid(body) {
			err = errors.New("dependency answered invalid JSON")
		}
		if err == nil {
			return body, nil
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		d.m.dependencyTimeouts.Add(1)
		return nil, errDependencyTimeout
	}
	return nil, err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryBudget is a token bucket: each request deposits ratio tokens (up to max), each retry
// spends one, so retries stay under ~ratio of requests however many calls fail.
type retryBudget struct {
	mu     sync.Mutex
	ratio  float64
	max    float64
	tokens float64
}

func (b *retryBudget) deposit() {
	b.mu.Lock()
	b.tokens = min(b.max, b.tokens+b.ratio)
	b.mu.Unlock()
}

func (b *retryBudget) spend() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Ten deposits of 0.1 add up to 0.9999999999999999 in floats; that is one token.
	if b.tokens >= 1-1e-9 {
		b.tokens = max(0, b.tokens-1)
		return true
	}
	return false
}
