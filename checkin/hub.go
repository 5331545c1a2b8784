package checkin

import "sync"

// ResultHub announces that a command got a final answer, so that an API
// call can wait for a device instead of polling the store in a tight loop.
// Announcements are hints: a waiter re-reads the store after each one.
type ResultHub struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

// NewResultHub returns an empty hub.
func NewResultHub() *ResultHub {
	return &ResultHub{waiters: make(map[string]map[chan struct{}]struct{})}
}

// Subscribe returns a channel that receives a value after each Publish of
// commandUUID, and a cancel func that must be called when done.
func (h *ResultHub) Subscribe(commandUUID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	set := h.waiters[commandUUID]
	if set == nil {
		set = make(map[chan struct{}]struct{})
		h.waiters[commandUUID] = set
	}
	set[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if set := h.waiters[commandUUID]; set != nil {
			delete(set, ch)
			if len(set) == 0 {
				delete(h.waiters, commandUUID)
			}
		}
	}
}

// Publish wakes every subscriber of commandUUID without blocking.
func (h *ResultHub) Publish(commandUUID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.waiters[commandUUID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
