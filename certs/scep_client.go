package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"
)

// maxSCEPResponse bounds what the client reads from a SCEP server.
const maxSCEPResponse = 1 << 20

// Doer sends an HTTP request: *http.Client, or anything a virtual device is
// given to reach a server (an in-process handler, a recorder, a fault
// injector).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// SCEPRequest is what a device knows from its profile's SCEP payload.
type SCEPRequest struct {
	// URL of the SCEP endpoint (the payload's URL).
	URL string
	// Challenge is the payload's Challenge (may be empty).
	Challenge string
	// Subject of the requested certificate.
	Subject pkix.Name
	// Key is the device's new identity key.
	Key *rsa.PrivateKey
	// CAFingerprint, if set, must match the CA certificate from GetCACert:
	// an MD5 (16 bytes), SHA-1 (20) or SHA-256 (32) digest of its DER.
	CAFingerprint []byte

	// RenewCert and RenewKey, if set, make the request a RenewalReq signed
	// by this existing identity instead of a PKCSReq signed by a throwaway
	// self-signed certificate. RenewKey must be RSA.
	RenewCert *x509.Certificate
	RenewKey  *rsa.PrivateKey

	// MaxPolls is how many times to ask again after a CertRep PENDING
	// (0: none — PENDING is then a *SCEPError at once). Each poll re-sends
	// the request with the same key, so the same transactionID, and a
	// fresh senderNonce; the RFC 8894 CertPoll message is not used,
	// because the mock CA keeps no pending requests to look up: it answers
	// PENDING only when a fault rule says so, and the re-sent request is
	// decided afresh.
	MaxPolls int
	// PollInterval is the wait before each poll (default 1s); the wait
	// ends early, with ctx's error, when ctx is done.
	PollInterval time.Duration
}

// SCEPError is a CertRep that did not carry a certificate: the CA refused
// (FAILURE, with a failInfo) or deferred (PENDING) the request.
type SCEPError struct {
	// Status is "FAILURE" or "PENDING".
	Status string
	// FailInfo names the failure: badAlg, badMessageCheck, badRequest,
	// badTime or badCertID (empty for PENDING).
	FailInfo      string
	TransactionID string
	// Polls is how many times the client asked again after PENDING.
	Polls int
}

func (e *SCEPError) Error() string {
	if e.Status == "PENDING" {
		if e.Polls == 0 {
			return fmt.Sprintf("scep: the CA left the request PENDING (transaction %s, awaiting manual approval) and polling is off (SCEPRequest.MaxPolls is 0)", e.TransactionID)
		}
		return fmt.Sprintf("scep: the CA left the request PENDING (transaction %s, awaiting manual approval) and still did after %d polls", e.TransactionID, e.Polls)
	}
	return fmt.Sprintf("scep: the CA answered FAILURE (failInfo %s) for transaction %s; for badRequest, check the challenge", e.FailInfo, e.TransactionID)
}

// SCEPHTTPError is a SCEP server answer that was not HTTP 200.
type SCEPHTTPError struct {
	Operation  string
	StatusCode int
	// Message is the start of the response body (servers put the reason there).
	Message string
}

func (e *SCEPHTTPError) Error() string {
	return fmt.Sprintf("scep: %s: HTTP %d: %s", e.Operation, e.StatusCode, e.Message)
}

func failInfoName(fi scep.FailInfo) string {
	switch fi {
	case scep.BadAlg:
		return "badAlg"
	case scep.BadMessageCheck:
		return "badMessageCheck"
	case scep.BadRequest:
		return "badRequest"
	case scep.BadTime:
		return "badTime"
	case scep.BadCertID:
		return "badCertID"
	}
	return fmt.Sprintf("unknown(%.16q)", string(fi))
}

// SCEPEnroll obtains an identity certificate for req.Key the way an Apple
// device runs a SCEP payload: GetCACaps, GetCACert (checked against
// CAFingerprint when given), a CSR carrying the challengePassword, wrapped
// in a PKIMessage encrypted to the CA and signed with a self-signed
// requester certificate, sent by POST (or GET when the CA does not offer
// POSTPKIOperation). The CertRep must be signed by the CA and answer this
// transaction; FAILURE and PENDING come back as *SCEPError, non-200 HTTP
// answers as *SCEPHTTPError. The issued certificate must certify req.Key.
func SCEPEnroll(ctx context.Context, d Doer, req SCEPRequest) (*x509.Certificate, error) {
	if d == nil {
		return nil, errors.New("scep: no Doer")
	}
	if req.Key == nil {
		return nil, errors.New("scep: no key to enroll")
	}
	base, err := url.Parse(req.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("scep: URL %q is not an absolute http(s) URL", req.URL)
	}
	c := &scepClient{d: d, base: base}

	capsBody, _, err := c.get(ctx, "GetCACaps", nil)
	if err != nil {
		return nil, err
	}
	caps := parseCaps(capsBody)

	caBody, ctype, err := c.get(ctx, "GetCACert", nil)
	if err != nil {
		return nil, err
	}
	caCerts, err := parseCACerts(caBody, ctype)
	if err != nil {
		return nil, err
	}
	if len(req.CAFingerprint) > 0 {
		if err := checkFingerprint(caCerts, req.CAFingerprint); err != nil {
			return nil, err
		}
	}
	recipients := scep.EnciphermentCertsSelector().SelectCerts(caCerts)
	if len(recipients) == 0 {
		recipients = caCerts[:1] // a lone CA is its own recipient
	}

	csrDER, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: req.Subject, SignatureAlgorithm: x509.SHA256WithRSA},
		ChallengePassword:  req.Challenge,
	}, req.Key)
	if err != nil {
		return nil, fmt.Errorf("scep: build CSR: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("scep: parse own CSR: %w", err)
	}

	tmpl := &scep.PKIMessage{MessageType: scep.PKCSReq, Recipients: recipients}
	if req.RenewCert != nil || req.RenewKey != nil {
		if req.RenewCert == nil || req.RenewKey == nil {
			return nil, errors.New("scep: renewal needs both RenewCert and RenewKey")
		}
		tmpl.MessageType, tmpl.SignerCert, tmpl.SignerKey = scep.RenewalReq, req.RenewCert, req.RenewKey
	} else {
		self, err := selfSignedRequester(req.Subject, req.Key)
		if err != nil {
			return nil, err
		}
		tmpl.SignerCert, tmpl.SignerKey = self, req.Key
	}
	interval := req.PollInterval
	if interval <= 0 {
		interval = time.Second
	}
	for poll := 0; ; poll++ {
		cert, err := c.pkiOperation(ctx, caps, csr, tmpl, caCerts, &req.Key.PublicKey)
		var se *SCEPError
		if !errors.As(err, &se) || se.Status != "PENDING" {
			return cert, err
		}
		se.Polls = poll
		if poll >= req.MaxPolls {
			return nil, se
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("scep: gave up polling the PENDING request (transaction %s): %w", se.TransactionID, ctx.Err())
		case <-t.C:
		}
	}
}

// pkiOperation sends one PKIMessage for csr and reads the CertRep.
func (c *scepClient) pkiOperation(ctx context.Context, caps map[string]bool, csr *x509.CertificateRequest, tmpl *scep.PKIMessage, caCerts []*x509.Certificate, want *rsa.PublicKey) (*x509.Certificate, error) {
	msg, err := scep.NewCSRRequest(csr, tmpl)
	if err != nil {
		return nil, fmt.Errorf("scep: build PKIMessage: %w", err)
	}
	var repBody []byte
	if caps["postpkioperation"] {
		repBody, _, err = c.post(ctx, "PKIOperation", msg.Raw)
	} else {
		repBody, _, err = c.get(ctx, "PKIOperation", url.Values{"message": {base64.StdEncoding.EncodeToString(msg.Raw)}})
	}
	if err != nil {
		return nil, err
	}
	decryptKey := tmpl.SignerKey.(*rsa.PrivateKey)
	return readCertRep(repBody, caCerts, msg, tmpl.SignerCert, decryptKey, want)
}

// readCertRep checks a CertRep and extracts the certificate. The scep
// library indexes into what a server sent; a recover turns a hostile
// CertRep that trips it into an error.
func readCertRep(body []byte, caCerts []*x509.Certificate, req *scep.PKIMessage, signerCert *x509.Certificate, signerKey *rsa.PrivateKey, want *rsa.PublicKey) (cert *x509.Certificate, err error) {
	defer func() {
		if p := recover(); p != nil {
			cert, err = nil, fmt.Errorf("scep: malformed CertRep (decoder panic: %v)", p)
		}
	}()
	rep, err := scep.ParsePKIMessage(body, scep.WithCACerts(caCerts))
	if err != nil {
		return nil, fmt.Errorf("scep: the PKIOperation answer is not a CertRep signed by the CA: %w", err)
	}
	if rep.MessageType != scep.CertRep || rep.CertRepMessage == nil {
		return nil, fmt.Errorf("scep: the PKIOperation answer has messageType %.16q, want CertRep (3)", string(rep.MessageType))
	}
	if rep.TransactionID != req.TransactionID {
		return nil, fmt.Errorf("scep: the CertRep answers transaction %q, not ours (%q)", rep.TransactionID, req.TransactionID)
	}
	if !bytes.Equal(rep.RecipientNonce, req.SenderNonce) {
		return nil, errors.New("scep: the CertRep's recipientNonce is not our senderNonce (replayed answer?)")
	}
	switch rep.PKIStatus {
	case scep.SUCCESS:
	case scep.FAILURE:
		return nil, &SCEPError{Status: "FAILURE", FailInfo: failInfoName(rep.FailInfo), TransactionID: string(rep.TransactionID)}
	case scep.PENDING:
		return nil, &SCEPError{Status: "PENDING", TransactionID: string(rep.TransactionID)}
	}
	if err := rep.DecryptPKIEnvelope(signerCert, signerKey); err != nil {
		return nil, fmt.Errorf("scep: cannot decrypt the CertRep envelope: %w", err)
	}
	cert = rep.CertRepMessage.Certificate
	if cert == nil {
		return nil, errors.New("scep: the CertRep holds no certificate")
	}
	if !want.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("scep: the CA issued %q for a different public key than the one requested", cert.Subject.CommonName)
	}
	return cert, nil
}

// selfSignedRequester is the throwaway certificate that signs a PKCSReq
// (SCEP requires a signer certificate before the requester has one).
func selfSignedRequester(subject pkix.Name, key *rsa.PrivateKey) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            subject,
		NotBefore:          now.Add(-time.Hour),
		NotAfter:           now.Add(24 * time.Hour),
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		SignatureAlgorithm: x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("scep: self-signed requester certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

func parseCaps(body []byte) map[string]bool {
	caps := make(map[string]bool)
	for _, line := range strings.Split(string(body), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			caps[strings.ToLower(line)] = true
		}
	}
	return caps
}

// parseCACerts reads GetCACert: a single DER certificate, or a degenerate
// PKCS#7 of CA and RA certificates (application/x-x509-ca-ra-cert).
func parseCACerts(body []byte, ctype string) (certs []*x509.Certificate, err error) {
	defer func() {
		if p := recover(); p != nil {
			certs, err = nil, fmt.Errorf("scep: GetCACert: malformed PKCS#7 (decoder panic: %v)", p)
		}
	}()
	if !strings.HasPrefix(strings.ToLower(ctype), "application/x-x509-ca-ra-cert") {
		if c, err := x509.ParseCertificate(body); err == nil {
			return []*x509.Certificate{c}, nil
		}
	}
	certs, err = scep.CACerts(body)
	if err != nil {
		return nil, fmt.Errorf("scep: GetCACert answered neither a DER certificate nor a PKCS#7 certificate bundle: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("scep: GetCACert answered no certificate")
	}
	return certs, nil
}

func checkFingerprint(certs []*x509.Certificate, fp []byte) error {
	var h crypto.Hash
	switch len(fp) {
	case md5.Size:
		h = crypto.MD5
	case sha1.Size:
		h = crypto.SHA1
	case sha256.Size:
		h = crypto.SHA256
	default:
		return fmt.Errorf("scep: CAFingerprint of %d bytes is not an MD5, SHA-1 or SHA-256 digest", len(fp))
	}
	for _, c := range certs {
		d := h.New()
		d.Write(c.Raw)
		if bytes.Equal(d.Sum(nil), fp) {
			return nil
		}
	}
	return fmt.Errorf("scep: no certificate from GetCACert matches the CAFingerprint %X (%s); the server is not the CA the profile names", fp, h)
}

type scepClient struct {
	d    Doer
	base *url.URL
}

func (c *scepClient) url(op string, extra url.Values) string {
	u := *c.base
	q := u.Query()
	q.Set("operation", op)
	for k, vs := range extra {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (c *scepClient) get(ctx context.Context, op string, extra url.Values) ([]byte, string, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(op, extra), nil)
	if err != nil {
		return nil, "", fmt.Errorf("scep: %s: %w", op, err)
	}
	return c.do(op, r)
}

func (c *scepClient) post(ctx context.Context, op string, body []byte) ([]byte, string, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(op, nil), bytes.NewReader(body))
	if err != nil {
		return nil, "", fmt.Errorf("scep: %s: %w", op, err)
	}
	r.Header.Set("Content-Type", "application/x-pki-message")
	return c.do(op, r)
}

func (c *scepClient) do(op string, r *http.Request) ([]byte, string, error) {
	resp, err := c.d.Do(r)
	if err != nil {
		return nil, "", fmt.Errorf("scep: %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSCEPResponse+1))
	if err != nil {
		return nil, "", fmt.Errorf("scep: %s: read answer: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		return nil, "", &SCEPHTTPError{Operation: op, StatusCode: resp.StatusCode, Message: msg}
	}
	if len(body) > maxSCEPResponse {
		return nil, "", fmt.Errorf("scep: %s: answer larger than %d bytes", op, maxSCEPResponse)
	}
	return body, resp.Header.Get("Content-Type"), nil
}
