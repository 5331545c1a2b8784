package device

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/mockmdm/mockmdm/certs"
)

// Content types of the MDM protocol (PROTOCOL.md §1.1, §2.1).
const (
	checkinContentType = "application/x-apple-aspen-mdm-checkin"
	connectContentType = "application/x-apple-aspen-mdm"
	userAgent          = "mockmdm-device/1 (virtual Apple device)"
)

// Exchange is one HTTP request the device made and what came back.
// Transcript returns them; their byte slices and headers must not be
// modified.
type Exchange struct {
	// Time is when the request was sent, on the device clock.
	Time time.Time
	// Step names the protocol step: "profile download", "SCEP",
	// "Authenticate", "TokenUpdate", "CheckOut", "connect".
	Step           string
	Method         string
	URL            string
	RequestHeader  http.Header
	Request        []byte
	StatusCode     int
	ResponseHeader http.Header
	Response       []byte
	// Duration is the wall-clock time the exchange took.
	Duration time.Duration
	// Err is set when no complete response arrived.
	Err string
}

// Transcript returns the device's exchanges, oldest first (at most the
// WithTranscriptLimit most recent).
func (d *Device) Transcript() []Exchange {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Clone(d.transcript)
}

func (d *Device) record(ex Exchange) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.transcriptLimit == 0 {
		return
	}
	if len(d.transcript) >= d.transcriptLimit {
		// Drop the oldest; copy down so the backing array does not grow forever.
		n := copy(d.transcript, d.transcript[len(d.transcript)-d.transcriptLimit+1:])
		d.transcript = d.transcript[:n]
	}
	d.transcript = append(d.transcript, ex)
}

type stepKey struct{}

func withStep(ctx context.Context, step string) context.Context {
	return context.WithValue(ctx, stepKey{}, step)
}

// recorder is the Doer every exchange of the device goes through, the
// device's own and those certs.SCEPEnroll makes: it bounds each exchange in
// time (when the caller's context does not) and its response in size,
// always reads and closes the response body, and records the exchange.
type recorder struct{ d *Device }

func (r recorder) Do(req *http.Request) (*http.Response, error) {
	d := r.d
	ctx := req.Context()
	if d.isOffline() {
		step, _ := ctx.Value(stepKey{}).(string)
		return nil, offlineError(step, req.URL.String())
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.requestTimeout)
		defer cancel()
		req = req.WithContext(ctx)
	}
	step, _ := ctx.Value(stepKey{}).(string)
	ex := Exchange{Time: d.now(), Step: step, Method: req.Method, URL: req.URL.String(), RequestHeader: req.Header.Clone()}
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody != nil {
			if rc, err := req.GetBody(); err == nil {
				ex.Request, _ = io.ReadAll(io.LimitReader(rc, maxResponse))
				rc.Close()
			}
		} else {
			b, err := io.ReadAll(io.LimitReader(req.Body, maxResponse+1))
			req.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("device: reading the request body: %w", err)
			}
			ex.Request = b
			req.Body = io.NopCloser(bytes.NewReader(b))
		}
	}
	start := time.Now()
	resp, err := d.doer.Do(req)
	if err != nil {
		ex.Duration, ex.Err = time.Since(start), err.Error()
		d.record(ex)
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	resp.Body.Close()
	if err == nil && len(body) > maxResponse {
		body = body[:maxResponse]
		err = fmt.Errorf("the response body is larger than %d bytes", maxResponse)
	}
	ex.Duration = time.Since(start)
	ex.StatusCode, ex.ResponseHeader, ex.Response = resp.StatusCode, resp.Header.Clone(), body
	if err != nil {
		ex.Err = err.Error()
	}
	d.record(ex)
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// reply is a complete response.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// send makes one exchange of the MDM protocol: a request with body and
// content type, signed by signer (nil: unsigned) with Mdm-Signature over
// the exact body bytes. A failure to exchange is an *ExchangeError; the
// HTTP status is the caller's to judge.
func (d *Device) send(ctx context.Context, step, method, url, ctype string, body []byte, signer *identity) (*reply, error) {
	return d.sendWith(ctx, step, method, url, ctype, body, signer, nil)
}

// sendWith is send with extra request headers.
func (d *Device) sendWith(ctx context.Context, step, method, url, ctype string, body []byte, signer *identity, header http.Header) (*reply, error) {
	ctx = withStep(ctx, step)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, &ExchangeError{Step: step, URL: url, Reason: "the URL cannot be requested", Err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", userAgent)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if signer != nil {
		sig, err := d.sign(body, signer)
		if err != nil {
			return nil, &ExchangeError{Step: step, URL: url, Reason: "signing the message", Err: err}
		}
		req.Header.Set("Mdm-Signature", sig)
	}
	resp, err := recorder{d}.Do(req)
	if err != nil {
		return nil, &ExchangeError{Step: step, URL: url, Err: err}
	}
	b, _ := io.ReadAll(resp.Body) // already buffered by the recorder
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// sign computes Mdm-Signature over body with the identity. See WithClock
// for why a device on a fake clock leaves out the signing time.
func (d *Device) sign(body []byte, id *identity) (string, error) {
	if sig, ok := d.presignedFor(body, id); ok {
		return sig, nil
	}
	return d.signNow(body, id)
}

// signNow signs body with the identity at this moment.
func (d *Device) signNow(body []byte, id *identity) (string, error) {
	if d.fakeClock {
		return certs.SignMdmSignatureWithoutAttributes(body, id.cert, id.key)
	}
	return certs.SignMdmSignature(body, id.cert, id.key)
}

// serverError builds the *ServerError for a reply that failed step.
func serverError(step, method, url string, r *reply, reason string) *ServerError {
	body := r.body
	if len(body) > 4096 {
		body = body[:4096]
	}
	return &ServerError{Step: step, Method: method, URL: url, StatusCode: r.status, Body: slices.Clone(body), Reason: reason}
}
