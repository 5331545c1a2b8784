package certs

import (
	"context"
	"crypto/rand"
	"encoding/asn1"
	"strings"

	"github.com/smallstep/scep"
	"go.mozilla.org/pkcs7"
)

// Kinds of SCEPFault.
const (
	// SCEPFaultBadChallenge treats the request's challengePassword as
	// wrong: the answer is the FAILURE/badRequest a wrong challenge gets.
	SCEPFaultBadChallenge = "bad-challenge"
	// SCEPFaultPending answers a CertRep with pkiStatus PENDING.
	SCEPFaultPending = "pending"
	// SCEPFaultFailure answers a CertRep FAILURE with FailInfo.
	SCEPFaultFailure = "failure"
)

// SCEPFault makes the SCEP handler answer a PKIOperation as a CA that
// refuses or defers it. The fault-injection layer (checkin.Faults) puts one
// in the request context with WithSCEPFault; certs cannot import it, so
// this is the handshake between the two.
type SCEPFault struct {
	Kind string
	// FailInfo is the failInfo of SCEPFaultFailure (a SCEPFailInfoNames name).
	FailInfo string
	// Fire is called when the fault would change the answer, with what it
	// does; it reports whether to apply it (the rule behind it may have run
	// out of firings meanwhile). Nil means always.
	Fire func(ctx context.Context, what string) bool
}

func (f *SCEPFault) fire(ctx context.Context, what string) bool {
	if f == nil {
		return false
	}
	return f.Fire == nil || f.Fire(ctx, what)
}

type scepFaultKey struct{}

// WithSCEPFault returns ctx carrying f for the SCEP handler.
func WithSCEPFault(ctx context.Context, f *SCEPFault) context.Context {
	return context.WithValue(ctx, scepFaultKey{}, f)
}

func scepFaultFrom(ctx context.Context) *SCEPFault {
	f, _ := ctx.Value(scepFaultKey{}).(*SCEPFault)
	return f
}

// SCEPFailInfoNames are the failInfo values of RFC 8894 §3.2.1.4.5, in
// their numeric order (0–4).
var SCEPFailInfoNames = []string{"badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId"}

// CanonicalFailInfo returns the RFC spelling of a failInfo name, matched
// without regard to case ("badCertID", as some libraries spell it, is
// badCertId).
func CanonicalFailInfo(name string) (string, bool) {
	for _, n := range SCEPFailInfoNames {
		if strings.EqualFold(n, name) {
			return n, true
		}
	}
	return "", false
}

func failInfoCode(name string) scep.FailInfo {
	for i, n := range SCEPFailInfoNames {
		if strings.EqualFold(n, name) {
			return scep.FailInfo(string(rune('0' + i)))
		}
	}
	return scep.BadRequest
}

// SCEP attribute OIDs (RFC 8894 §3.2.1; the Verisign arc).
var (
	oidSCEPmessageType    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidSCEPpkiStatus      = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 3}
	oidSCEPsenderNonce    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidSCEPrecipientNonce = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 6}
	oidSCEPtransactionID  = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
)

// pendingCertRep builds a CertRep with pkiStatus PENDING answering req,
// signed by the CA: no content (RFC 8894 §3.3.2: a PENDING reply carries
// no certificate), the transactionID echoed and the client's senderNonce
// as recipientNonce, with a fresh senderNonce of the CA's own.
func pendingCertRep(ca *CA, req *scep.PKIMessage) ([]byte, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	sd, err := pkcs7.NewSignedData(nil)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	cfg := pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: oidSCEPtransactionID, Value: string(req.TransactionID)},
		{Type: oidSCEPpkiStatus, Value: string(scep.PENDING)},
		{Type: oidSCEPmessageType, Value: string(scep.CertRep)},
		{Type: oidSCEPsenderNonce, Value: nonce},
		{Type: oidSCEPrecipientNonce, Value: []byte(req.SenderNonce)},
	}}
	if err := sd.AddSigner(ca.Cert, ca.Key, cfg); err != nil {
		return nil, err
	}
	return sd.Finish()
}
