package profiles

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	"go.mozilla.org/pkcs7"
)

// Sign wraps a profile as CMS SignedData (DER) with the content attached, as
// Apple's `security cms -S` does: SHA-256 digest, signed attributes, and the
// signer certificate plus chain (intermediates, optionally the root) in the
// certificates set so that a device can build the path to a root it trusts.
//
// Its errors are the server's (a certificate and key that do not belong
// together), so they carry no HTTP status.
func Sign(profile []byte, cert *x509.Certificate, key crypto.PrivateKey, chain ...*x509.Certificate) ([]byte, error) {
	if len(profile) == 0 {
		return nil, errors.New("profiles: sign: the profile is empty")
	}
	if cert == nil || key == nil {
		return nil, errors.New("profiles: sign: a signer certificate and its private key are both required")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("profiles: sign: private key type %T cannot sign", key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("profiles: sign: the private key does not belong to the signer certificate %q", cert.Subject.CommonName)
	}
	sd, err := pkcs7.NewSignedData(profile)
	if err != nil {
		return nil, fmt.Errorf("profiles: sign: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("profiles: sign with %q: %w", cert.Subject.CommonName, err)
	}
	for _, c := range chain {
		if c == nil || c.Equal(cert) {
			continue
		}
		sd.AddCertificate(c)
	}
	der, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("profiles: sign: encode CMS: %w", err)
	}
	return der, nil
}
