package server

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/mockmdm/mockmdm/store"
)

// docIdentityCertificate is the store document kind that holds, per device
// channel, the DER identity certificate it last authenticated with: the
// certificate POST /v1/commands encrypts a profile to ("encrypt_profile").
// The check-in path binds enrollments by the certificate's hash only; this
// copy is written at Authenticate, off the hot path.
const docIdentityCertificate = "identity-certificate"

// identityArchive keeps and gives the identity certificates
// (handlers.IdentityCertificates).
type identityArchive struct{ docs store.Documents }

func (a identityArchive) keep(ctx context.Context, deviceID string, cert *x509.Certificate) error {
	if cert == nil {
		return nil // nothing to keep: the request carried no certificate
	}
	return a.docs.PutDocument(ctx, docIdentityCertificate, deviceID, cert.Raw)
}

func (a identityArchive) IdentityCertificate(ctx context.Context, deviceID string) (*x509.Certificate, error) {
	der, err := a.docs.GetDocument(ctx, docIdentityCertificate, deviceID)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("the identity certificate kept for %s does not parse: %w", deviceID, err)
	}
	return c, nil
}
