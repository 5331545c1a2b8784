package mockapns

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mockmdm/mockmdm/certs"
)

// The device side. A connected device costs the mock its socket (with TLS
// state) and a small record — no goroutine and no buffer of its own: what
// a device writes (acknowledgements) waits in the kernel until the mock
// next touches the stream — to deliver a push, for Pending, Connected or
// Stats, or on the heartbeat — and reads it then without blocking.

// subscriber is one device stream.
type subscriber struct {
	conn net.Conn
	// ready reports whether the device's socket has bytes (or its end) waiting.
	ready func() bool
	// mu serialises reads and writes on conn and guards partial.
	mu sync.Mutex
	// partial is an unfinished line the device wrote (rarely not nil).
	partial []byte
	once    sync.Once
}

func (sub *subscriber) close() { sub.once.Do(func() { _ = sub.conn.Close() }) }

// frame is what a device reads: one notification per line. An empty line
// is a heartbeat.
type frame struct {
	ID      string          `json:"id"`
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
}

// ackFrame is what a device writes back for each notification it got.
type ackFrame struct {
	Ack string `json:"ack"`
}

// maxAckLine bounds a line from a device.
const maxAckLine = 256

// drain reads, without blocking, everything the device wrote and returns
// the acknowledged IDs; alive is false when the device closed the stream or
// wrote something that is not an acknowledgement. sub.mu must be held.
//
// Whether the socket has bytes is asked of the kernel (ready); then one
// read with a short deadline pulls them. A read with a deadline already
// past touches no socket but still returns what TLS holds decrypted or
// buffered, which is how the loop empties it.
func (sub *subscriber) drain() (acks []string, alive bool) {
	var buf [maxAckLine]byte
	defer func() { _ = sub.conn.SetReadDeadline(time.Time{}) }()
	for range 1024 {
		_ = sub.conn.SetReadDeadline(time.Time{})
		waiting := sub.ready()
		if waiting {
			_ = sub.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		} else {
			_ = sub.conn.SetReadDeadline(longAgo)
		}
		n, err := sub.conn.Read(buf[:])
		data := buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				sub.partial = append(sub.partial, data...)
				if len(sub.partial) > maxAckLine {
					return acks, false
				}
				break
			}
			line := data[:i]
			if len(sub.partial) > 0 {
				line = append(sub.partial, line...)
				sub.partial = nil
			}
			data = data[i+1:]
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var a ackFrame
			if json.Unmarshal(line, &a) != nil || a.Ack == "" {
				return acks, false
			}
			acks = append(acks, a.Ack)
		}
		if err != nil {
			return acks, errors.Is(err, os.ErrDeadlineExceeded)
		}
	}
	return acks, true
}

// longAgo is a read deadline that has passed: the read returns buffered
// data or times out without waiting.
var longAgo = time.Unix(1, 0)

// write sends b with the write timeout. sub.mu must be held.
func (sub *subscriber) write(b []byte, timeout time.Duration) error {
	_ = sub.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := sub.conn.Write(b)
	return err
}

// checkStream reads what the token's device wrote and applies it: acks
// clear the pending push; a closed or broken stream is dropped.
func (s *Server) checkStream(hexTok string) {
	s.mu.Lock()
	t := s.tokens[hexTok]
	var sub *subscriber
	if t != nil {
		sub = t.sub
	}
	s.mu.Unlock()
	if sub != nil {
		s.check(t, sub, nil)
	}
}

// check drains sub and, with beat, writes a heartbeat line; then it
// applies the acknowledgements and drops the stream if it is dead.
func (s *Server) check(t *token, sub *subscriber, beat []byte) {
	sub.mu.Lock()
	acks, alive := sub.drain()
	if alive && beat != nil {
		alive = sub.write(beat, s.writeTO) == nil
	}
	sub.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyAcksLocked(t, acks)
	if !alive {
		s.dropLocked(t, sub)
	}
}

// applyAcksLocked clears the pending push a device acknowledged; an ack
// for a push that a newer one already replaced changes nothing. s.mu must
// be held.
func (s *Server) applyAcksLocked(t *token, acks []string) {
	for _, id := range acks {
		if t.pending != nil && t.pending.ID == id {
			t.pending = nil
			s.acked.Add(1)
		}
	}
}

// dropLocked forgets a dead stream. A delivered "once" push goes with it:
// APNs keeps only what it may store. s.mu must be held.
func (s *Server) dropLocked(t *token, sub *subscriber) {
	sub.close()
	if t.sub != sub {
		return
	}
	t.sub = nil
	if t.pending != nil && t.pending.Once {
		t.pending = nil
		s.dropped.Add(1)
	}
	s.log.Debug("device stream closed", "token", t.hex)
}

// sweep checks every stream (and, with beat, writes a heartbeat to each).
func (s *Server) sweep(beat bool) {
	type pair struct {
		t   *token
		sub *subscriber
	}
	s.mu.Lock()
	subs := make([]pair, 0, len(s.tokens))
	for _, t := range s.tokens {
		if t.sub != nil {
			subs = append(subs, pair{t, t.sub})
		}
	}
	s.mu.Unlock()
	var line []byte
	if beat {
		line = []byte("\n")
	}
	for _, p := range subs {
		s.check(p.t, p.sub, line)
	}
}

// heartbeat sweeps every s.beat until Close.
func (s *Server) heartbeat(stop <-chan struct{}) {
	tick := time.NewTicker(s.beat)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			s.sweep(true)
		}
	}
}

func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	hj, ok := w.(http.Hijacker)
	if !ok || r.ProtoMajor != 1 {
		s.refuseStream(w, fmt.Errorf("the stream needs HTTP/1.1 (it is an Upgrade to %s); this connection is HTTP/%d", StreamProtocol, r.ProtoMajor))
		return
	}
	hexTok, topic, err := checkSubscribe(r)
	if err != nil {
		s.refuseStream(w, err)
		return
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		s.refuseStream(w, errShutdown)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	if rw.Reader.Buffered() > 0 {
		// The device must wait for 101 before it speaks.
		_ = conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	s.subscribe(conn, hexTok, topic)
}

var errShutdown = errors.New("the mock APNs is shutting down")

// checkSubscribe validates a subscription request.
func checkSubscribe(r *http.Request) (hexTok, topic string, err error) {
	if r.Method != http.MethodGet {
		return "", "", fmt.Errorf("%s is not allowed on %s: a device subscribes with GET and Upgrade: %s", r.Method, StreamPath, StreamProtocol)
	}
	if !headerHasToken(r.Header.Get("Connection"), "upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), StreamProtocol) {
		return "", "", fmt.Errorf("%s is a stream: send Connection: Upgrade and Upgrade: %s", StreamPath, StreamProtocol)
	}
	q := r.URL.Query()
	hexTok = strings.ToLower(q.Get("token"))
	if _, err := parseToken(hexTok); err != nil {
		return "", "", err
	}
	topic = q.Get("topic")
	if !strings.HasPrefix(topic, certs.TopicPrefix) || len(topic) == len(certs.TopicPrefix) || len(topic) > 256 {
		return "", "", fmt.Errorf("topic %q must be the MDM push topic the device enrolled under (it starts with %s)", truncate(topic, 80), certs.TopicPrefix)
	}
	return strings.Clone(hexTok), strings.Clone(topic), nil
}

func headerHasToken(v, tok string) bool {
	for _, p := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(p), tok) {
			return true
		}
	}
	return false
}

func (s *Server) refuseStream(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, errShutdown) {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, err.Error())
}

// DialInProcess returns the device end of a stream served by s with no
// network: the mock serves the other end of a pipe as it serves a TCP
// connection to StreamPath. Dial uses it through DialOptions.Conn.
func (s *Server) DialInProcess(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.conns.Add(3)
	}
	s.mu.Unlock()
	if closed {
		return nil, errShutdown
	}
	device, mine := net.Pipe()
	bc := newBufferedConn(mine)
	go func() {
		defer s.conns.Done()
		bc.pump()
	}()
	go func() {
		defer s.conns.Done()
		bc.fill()
	}()
	go func() {
		defer s.conns.Done()
		s.serveRawUpgrade(bc)
	}()
	return device, nil
}

// bufferedConn gives the mock's end of an in-process pipe what a TCP
// socket has: buffering both ways. A net.Pipe write blocks until the device
// reads, which would hold the provider's request until the device's next
// read; and the mock must see whether the device wrote something without
// blocking. One goroutine feeds queued writes to the pipe, one reads the
// pipe into a bounded buffer.
type bufferedConn struct {
	pipe     net.Conn
	mu       sync.Mutex
	cond     *sync.Cond
	out      []byte // queued for the device
	in       []byte // read from the device, not yet consumed
	eof      error  // why the device side ended
	closed   bool
	deadline time.Time // for Read
}

const maxQueued = 1 << 20

func newBufferedConn(c net.Conn) *bufferedConn {
	b := &bufferedConn{pipe: c}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *bufferedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, net.ErrClosed
	}
	if len(b.out)+len(p) > maxQueued {
		return 0, errors.New("in-process stream: the device is not reading")
	}
	b.out = append(b.out, p...)
	b.cond.Broadcast()
	return len(p), nil
}

// Read returns what the device wrote, waiting until the read deadline.
func (b *bufferedConn) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(b.in) == 0 && b.eof == nil && !b.closed {
		if !b.deadline.IsZero() {
			wait := time.Until(b.deadline)
			if wait <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			if timer == nil {
				timer = time.AfterFunc(wait, func() { b.mu.Lock(); b.cond.Broadcast(); b.mu.Unlock() })
			}
		}
		b.cond.Wait()
	}
	if len(b.in) > 0 {
		n := copy(p, b.in)
		b.in = b.in[n:]
		return n, nil
	}
	if b.closed {
		return 0, net.ErrClosed
	}
	return 0, b.eof
}

// ready reports whether a Read would return at once (data or the end).
func (b *bufferedConn) ready() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.in) > 0 || b.eof != nil || b.closed
}

func (b *bufferedConn) SetDeadline(t time.Time) error { return b.SetReadDeadline(t) }
func (b *bufferedConn) SetReadDeadline(t time.Time) error {
	b.mu.Lock()
	b.deadline = t
	b.cond.Broadcast()
	b.mu.Unlock()
	return nil
}

// SetWriteDeadline is a no-op: writes only queue.
func (b *bufferedConn) SetWriteDeadline(time.Time) error { return nil }
func (b *bufferedConn) LocalAddr() net.Addr              { return b.pipe.LocalAddr() }
func (b *bufferedConn) RemoteAddr() net.Addr             { return b.pipe.RemoteAddr() }

func (b *bufferedConn) Close() error {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
	return b.pipe.Close()
}

// pump feeds queued bytes to the pipe until the connection closes.
func (b *bufferedConn) pump() {
	for {
		b.mu.Lock()
		for len(b.out) == 0 && !b.closed {
			b.cond.Wait()
		}
		if b.closed {
			b.mu.Unlock()
			return
		}
		out := b.out
		b.out = nil
		b.mu.Unlock()
		if _, err := b.pipe.Write(out); err != nil {
			_ = b.Close()
			return
		}
	}
}

// fill reads the pipe into the buffer until the device closes it.
func (b *bufferedConn) fill() {
	var buf [512]byte
	for {
		n, err := b.pipe.Read(buf[:])
		b.mu.Lock()
		b.in = append(b.in, buf[:n]...)
		if len(b.in) > maxQueued && err == nil {
			err = errors.New("in-process stream: the device wrote too much")
		}
		if err != nil && b.eof == nil {
			b.eof = err
		}
		b.cond.Broadcast()
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// serveRawUpgrade reads the Upgrade request from a raw connection and
// subscribes, as the HTTP handler does after hijacking.
func (s *Server) serveRawUpgrade(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	// One byte at a time: nothing the device writes after the request (its
	// acks) may be left in a reader the stream does not keep.
	br := bufio.NewReaderSize(oneByteReader{conn}, 16)
	req, err := http.ReadRequest(br)
	if err != nil {
		_ = conn.Close()
		return
	}
	req.Body.Close()
	// The device names the mock by its base URL, which may carry the prefix
	// the mock is mounted under (a server's /apns).
	if !strings.HasSuffix(req.URL.Path, StreamPath) {
		writeRawStatus(conn, http.StatusNotFound, fmt.Sprintf("no such path %q: devices stream from %s", req.URL.Path, StreamPath))
		return
	}
	hexTok, topic, err := checkSubscribe(req)
	if err != nil {
		writeRawStatus(conn, http.StatusBadRequest, err.Error())
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	s.subscribe(conn, hexTok, topic)
}

// oneByteReader reads at most one byte per call.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func writeRawStatus(conn net.Conn, status int, msg string) {
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n",
		status, http.StatusText(status), len(msg)+1, msg)
	_ = conn.Close()
}

const switchingProtocols = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + StreamProtocol + "\r\n\r\n"

// subscribe registers the device, answers 101 and sends what is pending.
// It returns at once: the connection is then only touched when there is
// something to do.
func (s *Server) subscribe(conn net.Conn, hexTok, topic string) {
	sub := &subscriber{conn: conn, ready: readiness(conn)}
	// Hold the stream's lock until 101 is out: the token is registered
	// first (so a push right after the device sees 101 finds it), and a push
	// that races in waits behind the 101 instead of writing before it.
	sub.mu.Lock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sub.mu.Unlock()
		sub.close()
		return
	}
	if s.stopBeat == nil {
		s.stopBeat = make(chan struct{})
		s.conns.Add(1)
		go func(stop <-chan struct{}) {
			defer s.conns.Done()
			s.heartbeat(stop)
		}(s.stopBeat)
	}
	t := s.registerLocked(hexTok, topic)
	if old := t.sub; old != nil {
		s.dropLocked(t, old) // the device reconnected: the old stream is dead
	}
	t.sub = sub
	s.expiredLocked(t)
	pending := t.pending
	s.mu.Unlock()
	err := sub.write([]byte(switchingProtocols), s.writeTO)
	sub.mu.Unlock()
	if err != nil {
		s.mu.Lock()
		s.dropLocked(t, sub)
		s.mu.Unlock()
		return
	}
	s.log.Debug("device stream connected", "token", hexTok, "topic", topic)
	if pending != nil {
		s.deliver(t, sub, pending)
	}
}

// deliver writes n to the device stream, after reading what the device
// wrote since (acks for earlier pushes). A failed write drops the stream;
// n stays pending (unless Once) until the device comes back.
func (s *Server) deliver(t *token, sub *subscriber, n *Notification) {
	b, err := json.Marshal(frame{ID: n.ID, Topic: n.Topic, Payload: n.Payload})
	if err != nil {
		return
	}
	b = append(b, '\n')
	sub.mu.Lock()
	acks, alive := sub.drain()
	if alive {
		err = sub.write(b, s.writeTO)
	}
	sub.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyAcksLocked(t, acks)
	if !alive || err != nil {
		s.log.Info("device stream gone; the push stays pending", "token", t.hex, "err", err)
		s.dropLocked(t, sub)
		return
	}
	s.delivered.Add(1)
}

// readiness returns how to ask whether conn has bytes waiting without
// reading them: the in-process buffer, or the kernel for a socket (under
// TLS, the socket beneath; what TLS already buffered drain reads anyway).
// Elsewhere it answers "yes", and a read with a short deadline finds out.
func readiness(conn net.Conn) func() bool {
	switch c := conn.(type) {
	case *bufferedConn:
		return c.ready
	case *tls.Conn:
		return readiness(c.NetConn())
	case syscall.Conn:
		if rc, err := c.SyscallConn(); err == nil {
			return func() bool { return socketReady(rc) }
		}
	}
	return func() bool { return true }
}
