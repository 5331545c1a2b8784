package certs

import (
	"errors"
	"fmt"
	"net/http"
)

// Kinds of refusal. Each *Error wraps exactly one of these, so a caller can
// branch with errors.Is(err, certs.ErrExpired) without parsing messages, and a
// test can assert the reason rather than the wording.
var (
	// Identity certificate checks (Verifier).
	ErrNoCertificate    = errors.New("no certificate")
	ErrUnknownAuthority = errors.New("certificate not issued by the test CA")
	ErrExpired          = errors.New("certificate expired")
	ErrNotYetValid      = errors.New("certificate not yet valid")
	ErrNoClientAuth     = errors.New("certificate lacks the clientAuth extended key usage")
	ErrRevoked          = errors.New("certificate revoked")

	// Mdm-Signature checks (VerifyMdmSignature).
	ErrSignatureMissing      = errors.New("Mdm-Signature is empty")
	ErrSignatureTooLarge     = errors.New("Mdm-Signature is too large")
	ErrSignatureNotBase64    = errors.New("Mdm-Signature is not base64")
	ErrSignatureNotCMS       = errors.New("Mdm-Signature is not a CMS SignedData")
	ErrSignatureAttached     = errors.New("Mdm-Signature is not detached")
	ErrSignatureSigners      = errors.New("Mdm-Signature does not have exactly one signer")
	ErrSignatureNoSignerCert = errors.New("Mdm-Signature does not include the signer certificate")
	ErrSignatureMismatch     = errors.New("Mdm-Signature does not match the body")
	ErrSignatureSigningTime  = errors.New("Mdm-Signature signing time outside the signer certificate's validity")

	// Push topic checks (TopicFromCert, NewMockPushCert).
	ErrNoTopic  = errors.New("certificate has no UID (push topic) attribute")
	ErrBadTopic = errors.New("push topic does not start with com.apple.mgmt.")

	// Certificate requests (IssueIdentity).
	ErrBadCSR = errors.New("certificate request rejected")
)

// Error is a refusal a client caused: a certificate, signature, topic or CSR
// that mockmdm will not accept. Its HTTP status is always 400 — never 401,
// because a 401 on the MDM endpoints makes a real device unenroll.
type Error struct {
	// Kind is one of the Err* sentinels of this package.
	Kind error
	// Reason says what is wrong in words a person can act on.
	Reason string
	// Err is the underlying cause, if any.
	Err error
}

func (e *Error) Error() string {
	msg := e.Reason
	if msg == "" && e.Kind != nil {
		msg = e.Kind.Error()
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes both the kind (for errors.Is) and the cause.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// HTTPStatus is 400: the request carried something unacceptable.
func (e *Error) HTTPStatus() int { return http.StatusBadRequest }

func newError(kind error, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: fmt.Sprintf(format, args...), Err: cause}
}
