package certs

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"
)

// DefaultVerifierCacheSize is how many chain results a Verifier keeps unless
// told otherwise: far more identities than a test fleet has, and still only
// a few MiB.
const DefaultVerifierCacheSize = 100_000

// Verifier checks that an identity certificate chains to the test CA, has
// the clientAuth extended key usage and is valid at a given time.
//
// Building a chain costs a signature check per link; a device presents the
// same certificate on every check-in and connect, so the Verifier caches the
// outcome of a successful chain build by certificate hash, together with the
// validity window of the whole chain. A cache hit still checks that window
// against the time asked about, so an identity (or the CA) expires on time.
// The cache is bounded: it keeps two generations and drops the older one
// when the newer fills, which keeps recently used entries (LRU-ish) without
// per-hit bookkeeping.
//
// A Verifier is safe for concurrent use.
type Verifier struct {
	opts     x509.VerifyOptions // Roots and Intermediates; CurrentTime set per call
	roots    []*x509.Certificate
	capacity int

	mu      sync.RWMutex
	cur     map[[32]byte]window
	prev    map[[32]byte]window
	revoked map[[32]byte]struct{}
}

// window is the span in which every certificate of a verified chain is valid.
type window struct{ notBefore, notAfter time.Time }

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithIntermediates adds certificates that may link an identity to a root
// (for a CA hierarchy deeper than mockmdm's own).
func WithIntermediates(certs ...*x509.Certificate) VerifierOption {
	return func(v *Verifier) {
		for _, c := range certs {
			if c != nil {
				v.opts.Intermediates.AddCert(c)
			}
		}
	}
}

// WithVerifierCacheSize sets how many chain results are kept (at least 1;
// the default is DefaultVerifierCacheSize).
func WithVerifierCacheSize(n int) VerifierOption {
	return func(v *Verifier) {
		if n < 1 {
			panic("certs: WithVerifierCacheSize needs a positive size")
		}
		v.capacity = n
	}
}

// NewVerifier returns a Verifier that trusts roots (normally the test CA).
// It panics without a root: such a Verifier would refuse every device,
// which is a wiring mistake, not a runtime condition.
func NewVerifier(roots []*x509.Certificate, opts ...VerifierOption) *Verifier {
	v := &Verifier{
		opts: x509.VerifyOptions{
			Roots:         x509.NewCertPool(),
			Intermediates: x509.NewCertPool(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		},
		capacity: DefaultVerifierCacheSize,
		revoked:  make(map[[32]byte]struct{}),
	}
	for _, r := range roots {
		if r == nil {
			continue
		}
		v.opts.Roots.AddCert(r)
		v.roots = append(v.roots, r)
	}
	if len(v.roots) == 0 {
		panic("certs: NewVerifier needs at least one root certificate")
	}
	for _, o := range opts {
		o(v)
	}
	v.cur = make(map[[32]byte]window)
	return v
}

// Verify checks c at now. Every refusal is an *Error with HTTP status 400
// (never 401, which would unenroll a real device) whose Kind is one of
// ErrNoCertificate, ErrRevoked, ErrExpired, ErrNotYetValid, ErrNoClientAuth
// or ErrUnknownAuthority.
func (v *Verifier) Verify(c *x509.Certificate, now time.Time) error {
	if c == nil {
		return newError(ErrNoCertificate, nil, "no identity certificate was presented")
	}
	return v.verify(c, sha256.Sum256(c.Raw), now)
}

// VerifySigner is Verify for the signer of a verified Mdm-Signature,
// without hashing its certificate again: the signature check computed the
// SHA-256 the cache and the revocation list are keyed on from the same
// bytes, once per certificate.
func (v *Verifier) VerifySigner(info *SignedInfo, now time.Time) error {
	if info == nil || info.Signer == nil {
		return newError(ErrNoCertificate, nil, "no identity certificate was presented")
	}
	return v.verify(info.Signer, info.SignerSHA256(), now)
}

// verify checks c, whose DER has SHA-256 key.
func (v *Verifier) verify(c *x509.Certificate, key [32]byte, now time.Time) error {

	v.mu.RLock()
	_, revoked := v.revoked[key]
	w, hit := v.cur[key]
	v.mu.RUnlock()

	if revoked {
		return newError(ErrRevoked, nil, "identity certificate %q (serial %x) has been revoked; the device must enroll again", c.Subject.CommonName, c.SerialNumber)
	}
	if err := checkLeafTime(c, now); err != nil {
		return err
	}
	if !hit {
		w, hit = v.promote(key)
	}
	if !hit || now.Before(w.notBefore) || now.After(w.notAfter) {
		if err := v.build(c, key, now); err != nil {
			return err
		}
	}
	// Checked after the chain, so a stranger's certificate is reported as
	// such rather than for its key usage.
	if !hasClientAuth(c) {
		return errNoClientAuth(c)
	}
	return nil
}

func errNoClientAuth(c *x509.Certificate) error {
	return newError(ErrNoClientAuth, nil, "identity certificate %q does not allow TLS client authentication (extended key usage clientAuth is missing); issue identities through the SCEP endpoint", c.Subject.CommonName)
}

// promote moves an entry found in the older generation into the current one.
func (v *Verifier) promote(key [32]byte) (window, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if w, ok := v.cur[key]; ok {
		return w, true
	}
	w, ok := v.prev[key]
	if ok {
		delete(v.prev, key)
		v.storeLocked(key, w)
	}
	return w, ok
}

func (v *Verifier) storeLocked(key [32]byte, w window) {
	if _, gone := v.revoked[key]; gone {
		return
	}
	if len(v.cur) >= v.capacity {
		v.prev, v.cur = v.cur, make(map[[32]byte]window)
	}
	v.cur[key] = w
}

// build verifies the chain of c at now and caches the result on success.
func (v *Verifier) build(c *x509.Certificate, key [32]byte, now time.Time) error {
	opts := v.opts
	opts.CurrentTime = now
	chains, err := c.Verify(opts)
	if err != nil {
		return v.explain(c, now, err)
	}
	w := window{notBefore: c.NotBefore, notAfter: c.NotAfter}
	for _, link := range chains[0][1:] {
		if link.NotBefore.After(w.notBefore) {
			w.notBefore = link.NotBefore
		}
		if link.NotAfter.Before(w.notAfter) {
			w.notAfter = link.NotAfter
		}
	}
	v.mu.Lock()
	v.storeLocked(key, w)
	v.mu.Unlock()
	return nil
}

// explain turns an x509 chain error into a refusal that names the reason.
func (v *Verifier) explain(c *x509.Certificate, now time.Time, err error) error {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return newError(ErrUnknownAuthority, nil, "identity certificate %q was issued by %q, not by the test CA %q; enroll through this server's SCEP endpoint",
			c.Subject.CommonName, c.Issuer.CommonName, v.rootNames())
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		// The leaf's own window was checked already: it is the CA that is
		// outside its validity.
		for _, r := range v.roots {
			if c.CheckSignatureFrom(r) != nil {
				continue
			}
			if now.Before(r.NotBefore) {
				return newError(ErrNotYetValid, nil, "the test CA %q that issued %q is not valid before %s (now %s)",
					r.Subject.CommonName, c.Subject.CommonName, fmtTime(r.NotBefore), fmtTime(now))
			}
			return newError(ErrExpired, nil, "the test CA %q that issued %q expired on %s (now %s)",
				r.Subject.CommonName, c.Subject.CommonName, fmtTime(r.NotAfter), fmtTime(now))
		}
		return newError(ErrExpired, err, "a certificate in the chain of %q is outside its validity", c.Subject.CommonName)
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		if !hasClientAuth(c) {
			return errNoClientAuth(c)
		}
		return newError(ErrNoClientAuth, err, "a CA in the chain of %q restricts its extended key usages and does not allow clientAuth", c.Subject.CommonName)
	default:
		return newError(ErrUnknownAuthority, err, "identity certificate %q does not chain to the test CA", c.Subject.CommonName)
	}
}

func (v *Verifier) rootNames() string {
	names := make([]string, len(v.roots))
	for i, r := range v.roots {
		names[i] = r.Subject.CommonName
	}
	return strings.Join(names, `", "`)
}

func checkLeafTime(c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) {
		return newError(ErrNotYetValid, nil, "identity certificate %q is not valid before %s (now %s); check the server and device clocks",
			c.Subject.CommonName, fmtTime(c.NotBefore), fmtTime(now))
	}
	if now.After(c.NotAfter) {
		return newError(ErrExpired, nil, "identity certificate %q expired on %s (%s ago); the device must renew or enroll again",
			c.Subject.CommonName, fmtTime(c.NotAfter), now.Sub(c.NotAfter).Round(time.Second))
	}
	return nil
}

// hasClientAuth requires an explicit clientAuth (or anyExtendedKeyUsage)
// EKU. x509 treats a certificate without the extension as good for any use;
// NanoMDM refuses such identities, and so do we.
func hasClientAuth(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Revoke makes Verify refuse the certificate whose Hash is hash from now on
// (ErrRevoked) and drops its cached chain. A hash that is not 64 hex digits
// names no certificate and is ignored. The revocation list lives in memory
// and holds one entry per Revoke call.
func (v *Verifier) Revoke(hash string) {
	var key [32]byte
	if len(hash) != hex.EncodedLen(len(key)) {
		return
	}
	if _, err := hex.Decode(key[:], []byte(hash)); err != nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.revoked[key] = struct{}{}
	delete(v.cur, key)
	delete(v.prev, key)
}
