package server

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/push"
	"github.com/mockmdm/mockmdm/push/mockapns"
	"github.com/mockmdm/mockmdm/store"
)

// Where pushes go: the in-process mock APNs (the default), Apple, or a URL.
const (
	PushToMock        = "mock"
	PushToProduction  = "production"
	PushToDevelopment = "development"
)

// PathAPNs is where the mock APNs is mounted on the main listener: providers
// POST to PathAPNs+"/3/device/<token>", devices stream from
// PathAPNs+"/mock/v1/stream".
const PathAPNs = "/apns"

// expiringSoon is when a push certificate starts to warn.
const expiringSoon = 30 * 24 * time.Hour

// pushConfig is what the server's options say about push.
type pushConfig struct {
	target     string // mock, production, development or a URL
	roots      *x509.CertPool
	expiration time.Duration
	policy     *mockapns.ExpiryPolicy
	issuers    []*x509.Certificate // extra accepted issuers for uploads (Apple's)
}

// WithPushTarget sends pushes to target: "mock" (the in-process mock APNs,
// the default), "production" or "development" (Apple), or the base URL of
// an APNs such as another mockmdm's /apns, trusted through roots (nil:
// the system roots and the test CA).
func WithPushTarget(target string, roots *x509.CertPool) Option {
	return func(s *Server) { s.pushCfg.target, s.pushCfg.roots = target, roots }
}

// WithPushExpiration sets the apns-expiration the provider sends: d > 0 is
// now+d, 0 is "deliver once, do not store", d < 0 (the default) omits it.
func WithPushExpiration(d time.Duration) Option {
	return func(s *Server) { s.pushCfg.expiration = d }
}

// WithAPNsExpiryPolicy sets what the mock APNs does with a push that has no
// apns-expiration header.
func WithAPNsExpiryPolicy(p mockapns.ExpiryPolicy) Option {
	return func(s *Server) { s.pushCfg.policy = &p }
}

// WithPushIssuers adds issuers an uploaded push certificate may chain to
// (Apple's push CA, for a real certificate); the mock push CA always is one.
func WithPushIssuers(issuers ...*x509.Certificate) Option {
	return func(s *Server) { s.pushCfg.issuers = append(s.pushCfg.issuers, issuers...) }
}

// pushService owns the push certificate, the provider that uses it, the
// mock APNs and the mock Push Certificates Portal. It implements the API's
// Pusher, PushCerts and APNsAdmin.
type pushService struct {
	store  pushStore
	pki    *PKI
	mock   *mockapns.Server
	cfg    pushConfig
	log    *slog.Logger
	now    func() time.Time
	target string // the resolved base URL, for status
	// observe counts each push result by outcome (metrics); nil: not counted.
	observe func(outcome string)

	mu       sync.RWMutex
	cert     *x509.Certificate
	key      *rsa.PrivateKey
	chain    []*x509.Certificate
	topic    string
	source   string
	provider *push.Provider
	// unusable is why there is no provider (the certificate expired).
	unusable error
	// portalTopics are the topics the mock portal issued (or the current
	// one): a renewal must name one of them, as on Apple's portal.
	portalTopics map[string]bool
}

// pushStore is what the push service reads and writes: enrollments (for
// their tokens) and the transcript (each push is an exchange too).
type pushStore interface {
	store.Enrollments
	store.Transcripts
}

func newPushService(st pushStore, pki *PKI, cfg pushConfig, log *slog.Logger, now func() time.Time) (*pushService, error) {
	opts := []mockapns.Option{mockapns.WithLogger(log), mockapns.WithClock(now)}
	if cfg.policy != nil {
		opts = append(opts, mockapns.WithExpiryPolicy(*cfg.policy))
	}
	p := &pushService{
		store: st, pki: pki, cfg: cfg, log: log, now: now,
		mock:         mockapns.New([]*x509.Certificate{pki.PushCA.Cert}, opts...),
		portalTopics: map[string]bool{pki.Topic: true},
	}
	switch cfg.target {
	case "", PushToMock:
		p.target = "in-process mock APNs"
	case PushToProduction:
		p.target = push.ProductionURL
	case PushToDevelopment:
		p.target = push.DevelopmentURL
	default:
		p.target = cfg.target
	}
	source := "uploaded"
	if issuedBy(pki.PushCert, pki.PushCA.Cert) {
		source = "mock"
	}
	if err := p.use(pki.PushCert, pki.PushKey, pki.PushChain, source); err != nil {
		return nil, err
	}
	return p, nil
}

// issuedBy reports whether ca signed c: the mock push CA's certificates
// are "mock", any other "uploaded".
func issuedBy(c, ca *x509.Certificate) bool {
	return c != nil && c.CheckSignatureFrom(ca) == nil
}

// use makes cert and key the push certificate, with a provider for it.
func (p *pushService) use(cert *x509.Certificate, key *rsa.PrivateKey, chain []*x509.Certificate, source string) error {
	topic, err := certs.TopicFromCert(cert)
	if err != nil {
		return err
	}
	pair := tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	for _, c := range chain {
		pair.Certificate = append(pair.Certificate, c.Raw)
	}
	opts := []push.ProviderOption{push.WithLogger(p.log), push.WithClock(p.now), push.WithExpiration(p.cfg.expiration)}
	switch p.cfg.target {
	case "", PushToMock:
		opts = append(opts, push.WithBaseURL("https://mock-apns.in-process"), push.WithTransport(p.mock.InProcessTransport(append([]*x509.Certificate{cert}, chain...)...)))
	case PushToProduction:
		opts = append(opts, push.WithBaseURL(push.ProductionURL))
	case PushToDevelopment:
		opts = append(opts, push.WithBaseURL(push.DevelopmentURL))
	default:
		roots := p.cfg.roots
		if roots == nil {
			if roots, err = x509.SystemCertPool(); err != nil || roots == nil {
				roots = x509.NewCertPool()
			}
			roots.AddCert(p.pki.CA.Cert)
		}
		opts = append(opts, push.WithBaseURL(p.cfg.target), push.WithRootCAs(roots))
	}
	prov, err := push.NewProvider(pair, opts...)
	var unusable error
	if errors.Is(err, push.ErrCertificateExpired) {
		// An expired certificate must not stop the server: the status says
		// so, and every push answers why it cannot be sent.
		unusable, prov = err, nil
	} else if err != nil {
		return err
	}
	p.mu.Lock()
	old := p.provider
	p.cert, p.key, p.chain, p.topic, p.source, p.provider, p.unusable = cert, key, chain, topic, source, prov, unusable
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// isPushCert reports whether c is the push certificate in use.
func (p *pushService) isPushCert(c *x509.Certificate) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cert != nil && p.cert.Equal(c)
}

// Topic is the current push topic: what enrollment profiles carry.
func (p *pushService) Topic() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.topic
}

// Push implements handlers.Pusher.
//
// Each result is counted by outcome for the metrics: sent (APNs took it),
// rejected (APNs answered an error status), error (no answer: the
// transport failed) or skipped (never sent: no such enrollment, checked
// out, or no usable push certificate).
func (p *pushService) Push(ctx context.Context, ids []string) ([]api.PushResult, error) {
	outcomes := make([]string, len(ids))
	for i := range outcomes {
		outcomes[i] = "skipped"
	}
	defer func() {
		if p.observe != nil {
			for _, o := range outcomes {
				p.observe(o)
			}
		}
	}()
	out := make([]api.PushResult, len(ids))
	var targets []push.Target
	var at []int
	for i, id := range ids {
		out[i].EnrollmentID = id
		e, err := p.store.GetEnrollment(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			out[i].Error = fmt.Sprintf("no enrollment %q (GET /v1/enrollments lists them)", id)
			continue
		case err != nil:
			return nil, err
		case e.CheckedOut:
			out[i].Error = fmt.Sprintf("enrollment %q checked out: it no longer listens for pushes", id)
			continue
		}
		targets = append(targets, push.Target{EnrollmentID: id, Token: e.PushToken, PushMagic: e.PushMagic})
		at = append(at, i)
	}
	p.mu.RLock()
	prov, unusable := p.provider, p.unusable
	p.mu.RUnlock()
	if prov == nil {
		for _, i := range at {
			out[i].Error = fmt.Sprintf("not pushed: %v; upload a renewed push certificate (PUT /v1/push/certificate)", unusable)
		}
		return out, nil
	}
	results := prov.Push(ctx, targets...)
	record := make([]*store.TranscriptEntry, 0, len(results))
	for j, r := range results {
		o := &out[at[j]]
		o.Pushed = r.Err == nil && r.Status == http.StatusOK
		o.APNsStatus, o.APNsID, o.Reason = r.Status, r.APNsID, r.Reason
		if r.Err != nil {
			o.Error = r.Err.Error()
		}
		switch {
		case o.Pushed:
			outcomes[at[j]] = "sent"
		case r.Err != nil && r.Status == 0:
			outcomes[at[j]] = "error"
		default:
			outcomes[at[j]] = "rejected"
		}
		record = append(record, p.pushEntry(targets[j], r, o))
	}
	// The pushes are in the transcript with the device's own exchanges; a
	// failure to record them does not undo them.
	if err := p.store.AppendTranscript(context.WithoutCancel(ctx), record...); err != nil {
		p.log.WarnContext(ctx, "recording pushes in the transcript", "err", err)
	}
	return out, nil
}

// pushEntry is one push as a transcript exchange: the request APNs got
// (its path and body) and what it answered.
func (p *pushService) pushEntry(t push.Target, r push.Result, o *api.PushResult) *store.TranscriptEntry {
	e := &store.TranscriptEntry{
		Time: p.now().UTC(), EnrollmentID: t.EnrollmentID, Kind: "apns", MessageType: "push",
		Method: http.MethodPost, Path: push.PathPrefix + push.TokenHex(t.Token), Status: r.Status,
		Request: push.EncodeMDMPayload(t.PushMagic),
	}
	switch {
	case o.Pushed:
		e.Note = "apns-id " + r.APNsID + " via " + p.target
	case r.Reason != "":
		e.Response, _ = json.Marshal(push.ErrorBody{Reason: r.Reason, Timestamp: r.Timestamp})
		e.Note = o.Error
	default:
		e.Note = o.Error
	}
	return e
}

// PushCertStatus implements handlers.PushCerts.
func (p *pushService) PushCertStatus(ctx context.Context) (api.PushCertStatus, error) {
	p.mu.RLock()
	cert, source := p.cert, p.source
	p.mu.RUnlock()
	st := p.status(cert, source)
	warn, err := p.topicWarning(ctx, st.Topic)
	if err != nil {
		return st, err
	}
	if warn != "" {
		st.Warnings = append(st.Warnings, warn)
	}
	return st, nil
}

func (p *pushService) status(cert *x509.Certificate, source string) api.PushCertStatus {
	cs := certs.StatusOfPushCert(cert, p.now(), expiringSoon)
	st := api.PushCertStatus{
		Topic: cs.Topic, Subject: cs.Subject, Issuer: cs.Issuer,
		NotBefore: cs.NotBefore, NotAfter: cs.NotAfter, DaysLeft: cs.DaysLeft, State: cs.State,
		Source: source, PushURL: p.target,
	}
	switch st.State {
	case certs.PushStateExpired:
		st.Warnings = append(st.Warnings, fmt.Sprintf("the push certificate expired on %s: no push reaches any device; renew it in the Push Certificates Portal (Renew keeps the topic) and upload it", st.NotAfter.UTC().Format(time.DateOnly)))
	case certs.PushStateExpiringSoon:
		st.Warnings = append(st.Warnings, fmt.Sprintf("the push certificate expires in %d days (%s): renew it, keeping topic %s", st.DaysLeft, st.NotAfter.UTC().Format(time.DateOnly), st.Topic))
	}
	return st
}

// topicWarning says how many enrollments were made under a topic other
// than topic: those devices never receive pushes from its certificate.
func (p *pushService) topicWarning(ctx context.Context, topic string) (string, error) {
	all, err := p.store.ListEnrollments(ctx)
	if err != nil {
		return "", err
	}
	byTopic := map[string]int{}
	for _, e := range all {
		if e.Topic != "" && e.Topic != topic && !e.CheckedOut {
			byTopic[e.Topic]++
		}
	}
	if len(byTopic) == 0 {
		return "", nil
	}
	var parts []string
	n := 0
	for t, c := range byTopic {
		parts = append(parts, fmt.Sprintf("%d under %s", c, t))
		n += c
	}
	slices.Sort(parts)
	return fmt.Sprintf("%d enrollment(s) were made under another push topic (%s): they will never receive pushes from this certificate (topic %s) and must enroll again", n, strings.Join(parts, ", "), topic), nil
}

// UploadPushCert implements handlers.PushCerts: validate, then replace.
func (p *pushService) UploadPushCert(ctx context.Context, up *api.PushCertUpload) (api.PushCertStatus, error) {
	certData, keyData := []byte(up.CertificatePEM), []byte(up.KeyPEM)
	if len(up.PKCS12) > 0 {
		certData = up.PKCS12
	}
	cred, err := certs.ParsePushCredentials(certData, keyData, up.Password)
	if err != nil {
		return api.PushCertStatus{}, err
	}
	issuers := append([]*x509.Certificate{p.pki.PushCA.Cert}, p.cfg.issuers...)
	if err := certs.CheckPushCredentials(cred, issuers, p.now()); err != nil {
		return api.PushCertStatus{}, err
	}
	if !up.Force {
		warn, err := p.topicWarning(ctx, cred.Topic)
		if err != nil {
			return api.PushCertStatus{}, err
		}
		if warn != "" {
			return api.PushCertStatus{}, httperr.New(http.StatusConflict, "refused: the certificate's topic %s is not the topic devices enrolled under — %s. Renew the certificate of the current topic in the portal (Renew keeps it), or send \"force\": true to switch topics anyway", cred.Topic, warn)
		}
	}
	source := "uploaded"
	if issuedBy(cred.Cert, p.pki.PushCA.Cert) {
		source = "mock"
	}
	if err := p.use(cred.Cert, cred.Key, cred.Chain, source); err != nil {
		return api.PushCertStatus{}, httperr.Wrap(http.StatusBadRequest, err, "the push certificate cannot be used")
	}
	p.mu.Lock()
	err = p.pki.savePush(cred.Cert, cred.Key, cred.Chain)
	p.portalTopics[cred.Topic] = true
	p.mu.Unlock()
	if err != nil {
		return api.PushCertStatus{}, err
	}
	return p.PushCertStatus(ctx)
}

// IssuePushCert implements handlers.PushCerts: the mock portal.
func (p *pushService) IssuePushCert(_ context.Context, req *api.PortalRequest) (api.PortalResponse, error) {
	r, err := certs.ParsePushCertRequest([]byte(req.Request))
	if err != nil {
		return api.PortalResponse{}, err
	}
	if err := r.VerifyVendor([]*x509.Certificate{p.pki.PushCA.Cert}, p.now()); err != nil {
		return api.PortalResponse{}, err
	}
	topic := certs.NewTopic()
	renewed := false
	if req.RenewTopic != "" {
		p.mu.RLock()
		known := p.portalTopics[req.RenewTopic]
		p.mu.RUnlock()
		if !known {
			return api.PortalResponse{}, httperr.New(http.StatusNotFound, "the portal has no certificate with topic %q to renew; leave renew_topic empty to create a new one (a new topic means every device enrolls again)", req.RenewTopic)
		}
		topic, renewed = req.RenewTopic, true
	}
	cert, err := certs.IssuePushCert(p.pki.PushCA, r.CSR, topic, 365*24*time.Hour)
	if err != nil {
		return api.PortalResponse{}, err
	}
	p.mu.Lock()
	p.portalTopics[topic] = true
	p.mu.Unlock()
	return api.PortalResponse{
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		Topic:          topic, Renewed: renewed, NotAfter: cert.NotAfter,
	}, nil
}

// IssueVendorCert implements handlers.PushCerts.
func (p *pushService) IssueVendorCert(_ context.Context, name string) (api.VendorCertResponse, error) {
	cert, key, err := certs.NewMockVendorCert(p.pki.PushCA, name, 365*24*time.Hour)
	if err != nil {
		return api.VendorCertResponse{}, err
	}
	return api.VendorCertResponse{
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		KeyPEM:         string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
	}, nil
}

// APNsStats implements handlers.APNsAdmin.
func (p *pushService) APNsStats(context.Context) api.APNsStats {
	s := p.mock.Stats()
	return api.APNsStats{
		Registered: s.Registered, Connected: s.Connected, Pending: s.Pending,
		Accepted: s.Accepted, Delivered: s.Delivered, Acknowledged: s.Acknowledged,
		Coalesced: s.Coalesced, Expired: s.Expired, Dropped: s.Dropped, Refused: s.Refused,
	}
}

// InjectAPNsFault implements handlers.APNsAdmin.
func (p *pushService) InjectAPNsFault(ctx context.Context, f *api.APNsFault) error {
	bad := func(format string, args ...any) error { return httperr.New(http.StatusBadRequest, format, args...) }
	if f.Reason == "" {
		return bad(`"reason" is missing: one of APNs's reasons, e.g. Unregistered, TooManyRequests, ServiceUnavailable`)
	}
	if f.Ratio != 0 {
		if f.EnrollmentID != "" || f.Token != "" || f.Times != 0 {
			return bad(`"ratio" applies to all pushes: give it without enrollment_id, token or times`)
		}
		if err := p.mock.SetErrorRatio(f.Ratio, f.Reason); err != nil {
			return bad("%v", err)
		}
		return nil
	}
	tok := strings.ToLower(f.Token)
	switch {
	case f.EnrollmentID != "" && f.Token != "":
		return bad(`give "enrollment_id" or "token", not both`)
	case f.EnrollmentID != "":
		e, err := p.store.GetEnrollment(ctx, f.EnrollmentID)
		if errors.Is(err, store.ErrNotFound) {
			return httperr.New(http.StatusNotFound, "no enrollment %q", f.EnrollmentID)
		} else if err != nil {
			return err
		}
		if len(e.PushToken) == 0 {
			return httperr.New(http.StatusConflict, "enrollment %q has no push token yet (no TokenUpdate)", f.EnrollmentID)
		}
		tok = push.TokenHex(e.PushToken)
	case f.Token == "":
		return bad(`say whose pushes fail: "enrollment_id", "token" (hex), or "ratio" for a share of all pushes`)
	}
	if err := p.mock.InjectError(tok, f.Reason, f.Times); err != nil {
		return bad("%v", err)
	}
	f.Token = tok
	return nil
}

// ClearAPNsFaults implements handlers.APNsAdmin.
func (p *pushService) ClearAPNsFaults(context.Context) { p.mock.ClearErrors() }

// ResetAPNs implements handlers.APNsAdmin.
func (p *pushService) ResetAPNs(context.Context) { p.mock.Reset() }

// registration mirrors what APNs knows: a device has its token for a topic
// before it sends TokenUpdate, and loses it when it removes its MDM
// profile (CheckOut) — after which APNs answers 410 Unregistered. So the
// mock holds pushes for a device that enrolled but is not listening yet.
func (p *pushService) registration(_ context.Context, e *store.Enrollment) {
	if len(e.PushToken) != push.TokenLen || e.Topic == "" {
		return
	}
	if e.CheckedOut {
		_ = p.mock.Unregister(e.PushToken)
		return
	}
	p.mock.Register(e.PushToken, e.Topic)
}

// close stops the provider and the mock's device streams.
func (p *pushService) close() {
	p.mock.Close()
	p.mu.Lock()
	if p.provider != nil {
		p.provider.Close()
	}
	p.mu.Unlock()
}

// savePush writes an uploaded push certificate (and its chain) and key to
// the data directory, so the next start uses it; a PKI made in memory
// keeps it in memory only.
func (p *PKI) savePush(cert *x509.Certificate, key *rsa.PrivateKey, chain []*x509.Certificate) error {
	p.PushCert, p.PushKey, p.PushChain = cert, key, chain
	if topic, err := certs.TopicFromCert(cert); err == nil {
		p.Topic = topic
	}
	if p.Dir == "" {
		return nil
	}
	tmpCert, tmpKey := filepath.Join(p.Dir, "push.pem.new"), filepath.Join(p.Dir, "push.key.new")
	if err := certs.WriteCertPEM(tmpCert, append([]*x509.Certificate{cert}, chain...)...); err != nil {
		return err
	}
	if err := certs.WriteKeyPEM(tmpKey, key); err != nil {
		return err
	}
	if err := os.Rename(tmpKey, filepath.Join(p.Dir, "push.key")); err != nil {
		return err
	}
	return os.Rename(tmpCert, filepath.Join(p.Dir, "push.pem"))
}
