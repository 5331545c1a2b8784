package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits on what the client reads, so a misbehaving server cannot make it
// allocate without bound.
const (
	maxErrorBody    = 64 << 10
	maxResponseBody = 256 << 20
)

// Error is a non-2xx answer from the API.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Message is the server's reason (the "error" field of its JSON body,
	// or the body itself when it is not JSON).
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("mockmdm API: %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("mockmdm API: %d: %s", e.Status, e.Message)
}

// HTTPStatus is the status the server answered with.
func (e *Error) HTTPStatus() int { return e.Status }

// IsStatus reports whether err is an *Error with the given status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// Client calls the mockmdm REST API.
type Client struct {
	base string
	key  string
	hc   *http.Client
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (for a custom TLS config, a
// transport, or an in-process handler). Its Timeout should exceed the
// longest wait given to GetCommand.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// NewClient returns a client for the server at baseURL (e.g.
// "https://mdm.example.test:8443"; a trailing slash or /v1 is ignored) that
// sends apiKey as a bearer token. The default HTTP client times out after
// 150 s, longer than the server's longest long-poll.
func NewClient(baseURL, apiKey string, opts ...ClientOption) *Client {
	base := strings.TrimRight(baseURL, "/")
	base = strings.TrimSuffix(base, "/v1")
	c := &Client{base: base, key: apiKey, hc: &http.Client{Timeout: 150 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Info returns the server's static description.
func (c *Client) Info(ctx context.Context) (*ServerInfo, error) {
	var out ServerInfo
	if err := c.do(ctx, http.MethodGet, "/v1/info", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListEnrollments returns every enrollment channel, ordered by ID.
func (c *Client) ListEnrollments(ctx context.Context) ([]Enrollment, error) {
	var out EnrollmentList
	if err := c.do(ctx, http.MethodGet, "/v1/enrollments", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Enrollments, nil
}

// GetEnrollment returns one enrollment channel.
func (c *Client) GetEnrollment(ctx context.Context, id string) (*Enrollment, error) {
	var out Enrollment
	if err := c.do(ctx, http.MethodGet, "/v1/enrollments/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Enqueue queues a command for one or more enrollments.
func (c *Client) Enqueue(ctx context.Context, req EnqueueRequest) (*EnqueueResponse, error) {
	var out EnqueueResponse
	if err := c.do(ctx, http.MethodPost, "/v1/commands", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetCommand returns where a command stands. With wait > 0 the server
// holds the request until every target answered or wait passed (at most
// 120 s); check Done to tell which.
func (c *Client) GetCommand(ctx context.Context, commandUUID string, wait time.Duration) (*CommandStatus, error) {
	q := url.Values{}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	var out CommandStatus
	if err := c.do(ctx, http.MethodGet, "/v1/commands/"+url.PathEscape(commandUUID), q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Queue returns an enrollment's unanswered commands, oldest first.
func (c *Client) Queue(ctx context.Context, enrollmentID string) (*Queue, error) {
	var out Queue
	if err := c.do(ctx, http.MethodGet, "/v1/enrollments/"+url.PathEscape(enrollmentID)+"/queue", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Transcript returns recorded exchanges with Seq > after, oldest first, at
// most limit (0: the server's default of 500). The empty enrollmentID means
// every enrollment's entries. Page by passing the last Seq as after.
func (c *Client) Transcript(ctx context.Context, enrollmentID string, after int64, limit int) ([]TranscriptEntry, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/transcript"
	if enrollmentID != "" {
		path = "/v1/enrollments/" + url.PathEscape(enrollmentID) + "/transcript"
	}
	var out Transcript
	if err := c.do(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, err
	}
	return out.Entries, nil
}

// MintChallenge creates a one-time SCEP challenge valid for ttl (0: the
// server's default of one hour).
func (c *Client) MintChallenge(ctx context.Context, ttl time.Duration) (*Challenge, error) {
	var body any
	if ttl > 0 {
		body = MintChallengeRequest{TTL: ttl.String()}
	}
	var out Challenge
	if err := c.do(ctx, http.MethodPost, "/v1/scep/challenges", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Reset deletes all of the server's state except its PKI.
func (c *Client) Reset(ctx context.Context) error {
	var out ResetResponse
	return c.do(ctx, http.MethodPost, "/v1/reset", nil, nil, &out)
}

// Push wakes enrollments through APNs now.
func (c *Client) Push(ctx context.Context, ids ...string) ([]PushResult, error) {
	var out PushResponse
	if err := c.do(ctx, http.MethodPost, "/v1/push", nil, PushRequest{EnrollmentIDs: ids}, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// PushCertificate returns the push certificate's status.
func (c *Client) PushCertificate(ctx context.Context) (*PushCertStatus, error) {
	var out PushCertStatus
	if err := c.do(ctx, http.MethodGet, "/v1/push/certificate", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ADETokenStatus returns the uploaded ADE server token's status, or nil
// when no token was uploaded.
func (c *Client) ADETokenStatus(ctx context.Context) (*ADETokenStatus, error) {
	var out ADETokenStatus
	if err := c.do(ctx, http.MethodGet, "/v1/ade/token", nil, nil, &out); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusNotFound {
			return nil, nil
		}
		return nil, err
	}
	return &out, nil
}

// UploadPushCertificate replaces the push certificate after checking it.
func (c *Client) UploadPushCertificate(ctx context.Context, up PushCertUpload) (*PushCertStatus, error) {
	var out PushCertStatus
	if err := c.do(ctx, http.MethodPut, "/v1/push/certificate", nil, up, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// APNsStats returns what the mock APNs did; withRuntime adds the server
// process's live memory (after a garbage collection).
func (c *Client) APNsStats(ctx context.Context, withRuntime bool) (*APNsStats, error) {
	var out APNsStats
	var q url.Values
	if withRuntime {
		q = url.Values{"runtime": {"true"}}
	}
	if err := c.do(ctx, http.MethodGet, "/v1/apns", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// InjectAPNsFault makes the mock APNs refuse pushes.
func (c *Client) InjectAPNsFault(ctx context.Context, f APNsFault) error {
	var out APNsFault
	return c.do(ctx, http.MethodPost, "/v1/apns/faults", nil, f, &out)
}

// PutDeclaration defines or replaces a declaration (its Identifier names
// it) and returns it with its ServerToken.
func (c *Client) PutDeclaration(ctx context.Context, d Declaration) (*Declaration, error) {
	var out Declaration
	if err := c.do(ctx, http.MethodPut, "/v1/declarations/"+url.PathEscape(d.Identifier), nil, d, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteDeclaration deletes a declaration.
func (c *Client) DeleteDeclaration(ctx context.Context, identifier string) error {
	return c.do(ctx, http.MethodDelete, "/v1/declarations/"+url.PathEscape(identifier), nil, nil, nil)
}

// SetDeclarations gives an enrollment exactly these declarations.
func (c *Client) SetDeclarations(ctx context.Context, enrollmentID string, identifiers ...string) (*EnrollmentDeclarations, error) {
	if identifiers == nil {
		identifiers = []string{}
	}
	var out EnrollmentDeclarations
	in := map[string][]string{"identifiers": identifiers}
	if err := c.do(ctx, http.MethodPut, "/v1/enrollments/"+url.PathEscape(enrollmentID)+"/declarations", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AssignDeclarations gives every enrollment in enrollmentIDs exactly these
// declarations, or none of them when one is unknown.
func (c *Client) AssignDeclarations(ctx context.Context, enrollmentIDs []string, identifiers ...string) (*DeclarationAssignment, error) {
	if identifiers == nil {
		identifiers = []string{}
	}
	var out DeclarationAssignment
	in := map[string][]string{"enrollment_ids": enrollmentIDs, "identifiers": identifiers}
	if err := c.do(ctx, http.MethodPost, "/v1/declaration-assignments", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EnrollmentDeclarations returns an enrollment's declarations and the
// status its device last reported.
func (c *Client) EnrollmentDeclarations(ctx context.Context, enrollmentID string) (*EnrollmentDeclarations, error) {
	var out EnrollmentDeclarations
	if err := c.do(ctx, http.MethodGet, "/v1/enrollments/"+url.PathEscape(enrollmentID)+"/declarations", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// HostProfile hosts a profile under name (PUT /v1/hosted-profiles/{name}),
// for a declarative legacy configuration's ProfileURL.
func (c *Client) HostProfile(ctx context.Context, name string, profile []byte) (*HostedFile, error) {
	return c.host(ctx, "/v1/hosted-profiles/"+url.PathEscape(name), "application/x-apple-aspen-config", profile)
}

// HostData hosts asset data under name (PUT /v1/hosted-data/{name}), for
// a declarative asset's Reference.DataURL; devices get contentType.
func (c *Client) HostData(ctx context.Context, name, contentType string, data []byte) (*HostedFile, error) {
	return c.host(ctx, "/v1/hosted-data/"+url.PathEscape(name), contentType, data)
}

func (c *Client) host(ctx context.Context, path, contentType string, data []byte) (*HostedFile, error) {
	var out HostedFile
	if err := c.send(ctx, http.MethodPut, path, nil, contentType, data, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteHostedProfile stops hosting a profile.
func (c *Client) DeleteHostedProfile(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/hosted-profiles/"+url.PathEscape(name), nil, nil, nil)
}

// DeleteHostedData stops hosting asset data.
func (c *Client) DeleteHostedData(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/hosted-data/"+url.PathEscape(name), nil, nil, nil)
}

// do sends one request and decodes a 2xx JSON answer into out, or turns
// any other answer into an *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	if in == nil {
		return c.send(ctx, method, path, q, "", nil, out)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("mockmdm API: encoding request: %w", err)
	}
	return c.send(ctx, method, path, q, "application/json", b, out)
}

// send is do with a body already encoded as contentType ("" and nil: none).
func (c *Client) send(ctx context.Context, method, path string, q url.Values, contentType string, in []byte, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("mockmdm API: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("mockmdm API: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errorFrom(resp)
	}
	if out == nil {
		return nil // 204, or an answer the caller does not need
	}
	lr := &io.LimitedReader{R: resp.Body, N: maxResponseBody + 1}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("mockmdm API: %s %s: answer is larger than %d MiB", method, path, maxResponseBody>>20)
		}
		return fmt.Errorf("mockmdm API: %s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

func errorFrom(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Status: resp.StatusCode}
	var body ErrorBody
	if json.Unmarshal(raw, &body) == nil && body.Error != "" {
		e.Message = body.Error
	} else {
		e.Message = strings.TrimSpace(string(raw))
	}
	return e
}
