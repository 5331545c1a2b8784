package certs

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	scepserver "github.com/micromdm/scep/v2/server"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/smallstep/scep"
	"go.mozilla.org/pkcs7"
)

const (
	// maxSCEPBody bounds a PKIOperation message. A PKCSReq is a CSR inside
	// an envelope inside a signature: 3–6 KiB even with a 4096-bit key.
	maxSCEPBody = 64 << 10

	// Bounds of WithIdentityValidity.
	minIdentityValidity     = time.Minute
	maxIdentityValidity     = 100 * 365 * 24 * time.Hour
	defaultIdentityValidity = 365 * 24 * time.Hour
)

// ChallengeConsumer redeems one-time SCEP challenges. ConsumeChallenge
// reports whether challenge was outstanding (and not expired at now), and
// makes sure it can never be used again.
type ChallengeConsumer interface {
	ConsumeChallenge(ctx context.Context, challenge string, now time.Time) (bool, error)
}

// SCEPOption configures NewSCEPHandler.
type SCEPOption func(*scepConfig)

type scepConfig struct {
	static   string
	store    ChallengeConsumer
	validity time.Duration
	logger   *slog.Logger
	clock    func() time.Time
	onIssue  func(context.Context, *x509.Certificate)
}

// WithStaticChallenge sets a challenge that every CSR may present (as the
// SCEP payload's Challenge). Empty means no static challenge.
func WithStaticChallenge(challenge string) SCEPOption {
	return func(c *scepConfig) { c.static = challenge }
}

// WithChallengeStore adds one-time challenges: a CSR whose challenge is not
// the static one passes if the store consumes it.
func WithChallengeStore(store ChallengeConsumer) SCEPOption {
	return func(c *scepConfig) { c.store = store }
}

// WithIdentityValidity sets how long issued identities are valid (1 minute
// to 100 years; default 1 year). Short validities let tests watch expiry.
func WithIdentityValidity(d time.Duration) SCEPOption {
	return func(c *scepConfig) { c.validity = d }
}

// WithSCEPLogger sets the logger (nil: discard).
func WithSCEPLogger(l *slog.Logger) SCEPOption {
	return func(c *scepConfig) { c.logger = l }
}

// WithSCEPClock sets the clock used to issue identities and to check
// challenges (default time.Now), so a server on a fake clock issues
// certificates valid at that clock.
func WithSCEPClock(now func() time.Time) SCEPOption {
	return func(c *scepConfig) { c.clock = now }
}

// WithOnIssue sets a hook called (synchronously, before the CertRep is sent)
// with every identity issued — the server records them with it.
func WithOnIssue(f func(ctx context.Context, cert *x509.Certificate)) SCEPOption {
	return func(c *scepConfig) { c.onIssue = f }
}

// scepHandler is the HTTP transport of the SCEP endpoint. The protocol work
// (PKIMessage parsing, envelope decryption, CertRep building) is done by
// micromdm's scepserver.Service; this transport exists because the one that
// ships with it answers bad input with 500s and panics on GetNextCACert.
type scepHandler struct {
	ca  *CA
	svc scepserver.Service
	cfg scepConfig
	log *slog.Logger
}

// NewSCEPHandler returns the SCEP endpoint of ca (RFC 8894 over HTTP,
// operation in the "operation" query parameter, any path):
//
//   - GetCACaps (GET or POST): the capabilities, text/plain.
//   - GetCACert: the CA certificate, DER, application/x-x509-ca-cert.
//   - PKIOperation: a PKIMessage in the POST body (or base64 in the GET
//     "message" parameter); answers a CertRep, application/x-pki-message.
//
// A PKCSReq passes if its challengePassword equals the static challenge or
// the challenge store consumes it; with neither configured, enrollment is
// open (any challenge passes — convenient for tests, logged as a warning).
// A RenewalReq signed by a valid identity of this CA passes without a
// challenge. A request that does not pass gets a CertRep with pkiStatus
// FAILURE and failInfo badRequest, with HTTP 200, as SCEP specifies. Input
// that is not a SCEP request at all gets a 4xx with a plain-text reason;
// nothing a client sends yields a 5xx.
func NewSCEPHandler(ca *CA, opts ...SCEPOption) (http.Handler, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("certs: NewSCEPHandler needs a CA with certificate and key")
	}
	h := &scepHandler{ca: ca, cfg: scepConfig{validity: defaultIdentityValidity, clock: time.Now}}
	for _, o := range opts {
		o(&h.cfg)
	}
	if h.cfg.validity < minIdentityValidity || h.cfg.validity > maxIdentityValidity {
		return nil, fmt.Errorf("certs: identity validity %s is outside %s–%s", h.cfg.validity, minIdentityValidity, maxIdentityValidity)
	}
	if h.cfg.clock == nil {
		h.cfg.clock = time.Now
	}
	h.log = h.cfg.logger
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "scep")
	svc, err := scepserver.NewService(ca.Cert, ca.Key, scepserver.CSRSignerContextFunc(h.signCSR))
	if err != nil {
		return nil, fmt.Errorf("certs: SCEP service: %w", err)
	}
	h.svc = svc
	if h.cfg.static == "" && h.cfg.store == nil {
		h.log.Warn("SCEP enrollment is open: no static challenge and no challenge store, any challenge is accepted")
	}
	return h, nil
}

func (h *scepHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		// Last line of defence: the PKCS#7 decoders underneath are third
		// party; if one panics on hostile input, that input is the client's
		// fault and the answer is a 400, not a crashed connection.
		if p := recover(); p != nil {
			h.log.Error("SCEP request panicked", "panic", p, "remote", r.RemoteAddr)
			httperr.WriteText(w, httperr.New(http.StatusBadRequest, "malformed SCEP message"))
		}
	}()
	body, ctype, err := h.serve(r)
	if err != nil {
		if httperr.StatusOf(err) >= 500 {
			h.log.Error("SCEP request failed", "err", err, "remote", r.RemoteAddr)
		} else {
			h.log.Info("SCEP request refused", "err", err, "remote", r.RemoteAddr)
		}
		if httperr.StatusOf(err) == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, POST")
		}
		httperr.WriteText(w, err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// serve answers r with a body and content type, or an error carrying the
// HTTP status.
func (h *scepHandler) serve(r *http.Request) ([]byte, string, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return nil, "", httperr.New(http.StatusMethodNotAllowed, "SCEP uses GET or POST, not %s", r.Method)
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, "", httperr.Wrap(http.StatusBadRequest, err, "malformed query string")
	}
	op := query.Get("operation")
	ctx := r.Context()
	switch op {
	case "GetCACaps":
		caps, err := h.svc.GetCACaps(ctx)
		if err != nil {
			return nil, "", err
		}
		return caps, "text/plain; charset=utf-8", nil
	case "GetCACert":
		der, n, err := h.svc.GetCACert(ctx, query.Get("message"))
		if err != nil {
			return nil, "", err
		}
		if n > 1 {
			return der, "application/x-x509-ca-ra-cert", nil
		}
		return der, "application/x-x509-ca-cert", nil
	case "PKIOperation":
		msg, err := readPKIMessage(r, query)
		if err != nil {
			return nil, "", err
		}
		rep, err := h.pkiOperation(ctx, msg, r.RemoteAddr)
		if err != nil {
			return nil, "", err
		}
		return rep, "application/x-pki-message", nil
	case "GetNextCACert":
		return nil, "", httperr.New(http.StatusBadRequest, "GetNextCACert is not supported: this CA has no successor (GetCACaps does not offer it)")
	case "":
		return nil, "", httperr.New(http.StatusBadRequest, "missing the operation query parameter: use operation=GetCACaps, GetCACert or PKIOperation")
	default:
		return nil, "", httperr.New(http.StatusBadRequest, "unknown SCEP operation %.64q: use GetCACaps, GetCACert or PKIOperation", op)
	}
}

// readPKIMessage takes the PKIMessage DER from a POST body or from the GET
// "message" parameter (base64, standard or URL alphabet, padding optional).
func readPKIMessage(r *http.Request, query url.Values) ([]byte, error) {
	if r.Method == http.MethodPost {
		data, err := io.ReadAll(io.LimitReader(r.Body, maxSCEPBody+1))
		if err != nil {
			return nil, httperr.Wrap(http.StatusBadRequest, err, "reading the PKIOperation body")
		}
		if len(data) > maxSCEPBody {
			return nil, httperr.New(http.StatusRequestEntityTooLarge, "the PKIOperation body is larger than %d KiB; a PKIMessage is a few KiB", maxSCEPBody>>10)
		}
		if len(data) == 0 {
			return nil, httperr.New(http.StatusBadRequest, "the PKIOperation body is empty; POST the DER PKIMessage")
		}
		return data, nil
	}
	m := query.Get("message")
	if m == "" {
		return nil, httperr.New(http.StatusBadRequest, "GET PKIOperation needs the PKIMessage, base64-encoded, in the message query parameter")
	}
	if len(m) > base64.StdEncoding.EncodedLen(maxSCEPBody) {
		return nil, httperr.New(http.StatusRequestURITooLong, "the message parameter is longer than a %d KiB PKIMessage", maxSCEPBody>>10)
	}
	data, err := decodeBase64Param(m)
	if err != nil {
		return nil, httperr.Wrap(http.StatusBadRequest, err, "the message parameter is not base64")
	}
	if len(data) == 0 {
		return nil, httperr.New(http.StatusBadRequest, "the message parameter decodes to nothing")
	}
	return data, nil
}

// decodeBase64Param accepts the standard and URL alphabets with or without
// padding. An unescaped "+" arrives as a space after query decoding, so
// spaces are read as "+".
func decodeBase64Param(s string) ([]byte, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "+")
	s = strings.NewReplacer("\r", "", "\n", "").Replace(s)
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		data, err := enc.DecodeString(s)
		if err == nil {
			return data, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// requestInfo is what the transport learned about a PKIMessage, handed to
// signCSR through the context (the scepserver signer sees only the CSR).
type requestInfo struct {
	messageType   scep.MessageType
	transactionID string
	signer        *x509.Certificate
	remote        string
}

type requestInfoKey struct{}

// pkiOperation checks that msg is a SCEP request this CA can open, then lets
// scepserver answer it. The checks come first so that garbage is told apart
// from a refused enrollment: garbage is a 400 with a reason; a well-formed
// request with a bad challenge is a FAILURE CertRep (HTTP 200).
func (h *scepHandler) pkiOperation(ctx context.Context, msg []byte, remote string) ([]byte, error) {
	info, parsed, err := h.inspect(msg)
	if err != nil {
		return nil, err
	}
	info.remote = remote
	if rep, ok, err := h.faultReply(ctx, info, parsed); ok || err != nil {
		return rep, err
	}
	ctx = context.WithValue(ctx, requestInfoKey{}, info)
	rep, err := h.svc.PKIOperation(ctx, msg)
	if err != nil {
		// inspect already decoded and opened the request, so what is left
		// to fail is building the reply to the certificates the client
		// enclosed (e.g. a non-RSA requester certificate to encrypt to).
		return nil, httperr.Wrap(http.StatusBadRequest, err, "cannot answer this PKIMessage")
	}
	return rep, nil
}

// faultReply answers a well-formed request as an injected SCEPFault says
// (PENDING, or FAILURE with its failInfo), when one is in ctx and fires.
func (h *scepHandler) faultReply(ctx context.Context, info *requestInfo, req *scep.PKIMessage) ([]byte, bool, error) {
	f := scepFaultFrom(ctx)
	if f == nil {
		return nil, false, nil
	}
	var (
		rep []byte
		err error
	)
	switch f.Kind {
	case SCEPFaultPending:
		if !f.fire(ctx, "CertRep PENDING for transaction "+info.transactionID) {
			return nil, false, nil
		}
		rep, err = pendingCertRep(h.ca, req)
	case SCEPFaultFailure:
		name, _ := CanonicalFailInfo(f.FailInfo)
		if name == "" {
			name = "badRequest"
		}
		if !f.fire(ctx, "CertRep FAILURE failInfo "+name+" for transaction "+info.transactionID) {
			return nil, false, nil
		}
		var m *scep.PKIMessage
		if m, err = req.Fail(h.ca.Cert, h.ca.Key, failInfoCode(name)); err == nil {
			rep = m.Raw
		}
	default:
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("certs: building the injected CertRep: %w", err)
	}
	h.log.Info("SCEP request answered by an injected fault", "fault", f.Kind, "fail_info", f.FailInfo,
		"transaction_id", info.transactionID, "remote", info.remote)
	return rep, true, nil
}

// inspect decodes msg with the scep library and opens its envelope with the
// CA key, mapping each failure to a 400 that says what is wrong.
func (h *scepHandler) inspect(data []byte) (info *requestInfo, msg *scep.PKIMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			info, msg, err = nil, nil, httperr.New(http.StatusBadRequest, "not a SCEP PKIMessage: malformed PKCS#7 (decoder panic: %v)", p)
		}
	}()
	msg, err = scep.ParsePKIMessage(data)
	if err != nil {
		return nil, nil, httperr.Wrap(http.StatusBadRequest, err, "not a SCEP PKIMessage (a PKCS#7 SignedData signed by the requester with SCEP attributes)")
	}
	switch msg.MessageType {
	case scep.PKCSReq, scep.RenewalReq, scep.UpdateReq:
	default:
		return nil, nil, httperr.New(http.StatusBadRequest, "SCEP messageType %.16q is not supported; send PKCSReq (19) or RenewalReq (17)", string(msg.MessageType))
	}
	if err := msg.DecryptPKIEnvelope(h.ca.Cert, h.ca.Key); err != nil {
		return nil, nil, httperr.Wrap(http.StatusBadRequest, err, "cannot open the PKIMessage envelope with this CA's key (encrypt the CSR to the certificate from GetCACert)")
	}
	if msg.CSRReqMessage == nil || msg.CSR == nil {
		return nil, nil, httperr.New(http.StatusBadRequest, "the PKIMessage envelope holds no certificate request")
	}
	info = &requestInfo{messageType: msg.MessageType, transactionID: string(msg.TransactionID)}
	if msg.MessageType != scep.PKCSReq {
		// A renewal is authorised by the certificate that signed it.
		if p7, err := pkcs7.Parse(data); err == nil {
			info.signer = p7.GetOnlySigner()
		}
	}
	return info, msg, nil
}

// signCSR is the scepserver signer: it authorises the request, then issues
// the identity. An error makes scepserver answer FAILURE/badRequest.
func (h *scepHandler) signCSR(ctx context.Context, m *scep.CSRReqMessage) (*x509.Certificate, error) {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	if info == nil {
		info = &requestInfo{messageType: scep.PKCSReq}
	}
	now := h.cfg.clock()
	log := h.log.With("transaction_id", info.transactionID, "message_type", string(info.messageType),
		"subject", m.CSR.Subject.String(), "remote", info.remote)

	how, err := h.authorize(ctx, info, m.ChallengePassword, now, scepFaultFrom(ctx))
	if err != nil {
		var se *storeError
		if errors.As(err, &se) {
			log.Error("SCEP request refused: challenge store failed", "err", se.err)
		} else {
			log.Warn("SCEP request refused", "reason", err.Error())
		}
		return nil, err
	}
	cert, err := h.ca.IssueIdentityAt(m.CSR, now, h.cfg.validity)
	if err != nil {
		log.Warn("SCEP request refused", "reason", err.Error())
		return nil, err
	}
	if h.cfg.onIssue != nil {
		h.cfg.onIssue(ctx, cert)
	}
	log.Info("SCEP identity issued", "authorized_by", how, "cert_hash", Hash(cert),
		"serial", fmt.Sprintf("%x", cert.SerialNumber), "not_after", cert.NotAfter.UTC())
	return cert, nil
}

// authorize decides whether a request may have a certificate, and says how.
// An injected SCEPFaultBadChallenge makes every challenge wrong (a
// one-time challenge is left unused), the way a wrong one is refused; a
// renewal signed by a valid identity still passes, as it needs none.
func (h *scepHandler) authorize(ctx context.Context, info *requestInfo, challenge string, now time.Time, fault *SCEPFault) (string, error) {
	if fault != nil && fault.Kind == SCEPFaultBadChallenge {
		if info.messageType != scep.PKCSReq && info.signer != nil && h.validIdentity(info.signer, now) {
			return "renewal signed by " + Hash(info.signer), nil
		}
		if fault.fire(ctx, "challengePassword treated as wrong: CertRep FAILURE badRequest") {
			return "", errWrongChallenge(challenge)
		}
	}
	if h.cfg.static == "" && h.cfg.store == nil {
		return "open enrollment", nil
	}
	if h.cfg.static != "" && subtle.ConstantTimeCompare([]byte(h.cfg.static), []byte(challenge)) == 1 {
		return "static challenge", nil
	}
	if info.messageType != scep.PKCSReq && info.signer != nil && h.validIdentity(info.signer, now) {
		return "renewal signed by " + Hash(info.signer), nil
	}
	if h.cfg.store != nil && challenge != "" {
		ok, err := h.cfg.store.ConsumeChallenge(ctx, challenge, now)
		if err != nil {
			return "", &storeError{err}
		}
		if ok {
			return "one-time challenge", nil
		}
	}
	return "", errWrongChallenge(challenge)
}

// errWrongChallenge is why a request without a usable challenge is refused.
func errWrongChallenge(challenge string) error {
	if challenge == "" {
		return errors.New("the CSR has no challengePassword")
	}
	return errors.New("the CSR's challengePassword is neither the static challenge nor an unused one-time challenge")
}

// storeError is a ChallengeConsumer failure: the request is refused (the
// client gets FAILURE and may retry), but the log calls it an error.
type storeError struct{ err error }

func (e *storeError) Error() string { return "challenge store: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// validIdentity reports whether c is an identity this CA issued that is
// valid at now — the proof a RenewalReq carries instead of a challenge.
func (h *scepHandler) validIdentity(c *x509.Certificate, now time.Time) bool {
	roots := x509.NewCertPool()
	roots.AddCert(h.ca.Cert)
	_, err := c.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err == nil && hasClientAuth(c)
}
