package pgtest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Writer runs one write statement in a loop on its own connection, to show
// that a migration running meanwhile never blocked writes: Stop reports the
// longest any single write waited.
type Writer struct {
	stop    chan struct{}
	done    chan struct{}
	maxWait atomic.Int64
	writes  atomic.Int64
	err     error
}

// StartWriter runs sql with the argument arg(i) for i = 0, 1, 2, ... on conn
// until Stop.
func StartWriter(conn *pgx.Conn, sql string, arg func(i int) any) *Writer {
	w := &Writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			start := time.Now()
			if _, err := conn.Exec(context.Background(), sql, arg(i)); err != nil {
				w.err = err
				return
			}
			w.writes.Add(1)
			if d := int64(time.Since(start)); d > w.maxWait.Load() {
				w.maxWait.Store(d)
			}
		}
	}()
	return w
}

// Stop ends the loop and reports the longest wait, the number of writes,
// and the error that ended the loop early, if any.
func (w *Writer) Stop() (maxWait time.Duration, writes int64, err error) {
	close(w.stop)
	<-w.done
	return time.Duration(w.maxWait.Load()), w.writes.Load(), w.err
}
