package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// holdConnector is a tiny database/sql driver: a write holds its connection for the configured
// time (± jitter), as a round trip plus COMMIT to a real database does, and touches nothing
// else. The pool in front of it is database/sql's own, so db.Stats() (WaitCount, WaitDuration,
// InUse) is exactly what a service on a real driver reports.
type holdConnector struct {
	hold   time.Duration
	jitter float64
	lastID atomic.Int64
}

func openDB(cfg config) *sql.DB {
	db := sql.OpenDB(&holdConnector{hold: cfg.hold, jitter: cfg.holdJitter})
	db.SetMaxOpenConns(cfg.pool)
	db.SetMaxIdleConns(cfg.pool)
	return db
}

func (c *holdConnector) Connect(context.Context) (driver.Conn, error) { return &holdConn{c: c}, nil }
func (c *holdConnector) Driver() driver.Driver                        { return holdDriver{} }

type holdDriver struct{}

func (holdDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("hold driver: use sql.OpenDB with a connector")
}

type holdConn struct{ c *holdConnector }

func (*holdConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("hold driver: Prepare is not supported; Exec directly")
}
func (*holdConn) Close() error              { return nil }
func (*holdConn) Begin() (driver.Tx, error) { return holdTx{}, nil }

// ExecContext makes database/sql call Exec without preparing a statement first.
func (h *holdConn) ExecContext(ctx context.Context, _ string, _ []driver.NamedValue) (driver.Result, error) {
	d := h.c.hold
	if h.c.jitter > 0 {
		d = time.Duration(float64(d) * (1 + h.c.jitter*(2*rand.Float64()-1)))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return holdResult(h.c.lastID.Add(1)), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type holdTx struct{}

func (holdTx) Commit() error   { return nil }
func (holdTx) Rollback() error { return nil }

type holdResult int64

func (r holdResult) LastInsertId() (int64, error) { return int64(r), nil }
func (holdResult) RowsAffected() (int64, error)   { return 1, nil }
