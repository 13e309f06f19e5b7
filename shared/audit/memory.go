package audit

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Memory is a Sink that keeps events in memory, for tests of packages that record audit events.
// The zero value is ready to use and it is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	events []Event
	err    error
}

// Publish keeps the events, or returns the error set by FailWith and keeps none of them.
func (m *Memory) Publish(ctx context.Context, events ...Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish %d audit events: %w", len(events), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.events = append(m.events, events...)
	return nil
}

// Events returns a copy of every event published so far, in order.
func (m *Memory) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// FailWith makes every later Publish return err (nil restores success), so tests can prove that
// audit fails closed.
func (m *Memory) FailWith(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}
