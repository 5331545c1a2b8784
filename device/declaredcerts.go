package device

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
)

// Certificates by declaration: a com.apple.configuration.security.certificate
// configuration names, by CredentialAssetReference, a
// com.apple.asset.credential.certificate asset whose data is one
// certificate, PEM or DER (Apple's schema names the media types
// application/pem and application/pkcs1). The device downloads the data as
// it does any asset's (apply.go) and keeps it; data that is not a
// certificate makes the asset fail with Apple's
// Error.AssetCannotBeDeserialized ("does not conform to the expected data
// type"). While the configuration is active the certificate is in the
// channel's keychain, as a profile's certificate is: CertificateList lists it, and
// security.certificate.list names the asset that installed it as
// declaration-identifier, as Apple's status schema says. It leaves the
// keychain when the configuration is no longer active, or with the
// enrollment. A configuration whose asset is not a certificate asset, or
// could not be used, fails with Error.ConfigurationCannotBeApplied.
//
// Sources: Apple's schemas declarations/configurations/security.certificate.yaml,
// declarations/assets/credential.certificate.yaml and
// status/security.certificate.list.yaml.

const (
	certificateConfigurationType = "com.apple.configuration.security.certificate"
	certificateAssetType         = "com.apple.asset.credential.certificate"
	// maxCertificateAsset bounds the certificate data a device keeps: a
	// certificate is a few kilobytes.
	maxCertificateAsset = 64 << 10
)

// parseCertificateAsset reads a certificate asset's data: one PEM
// CERTIFICATE block, or DER.
func parseCertificateAsset(data []byte) (*x509.Certificate, error) {
	if len(data) > maxCertificateAsset {
		return nil, fmt.Errorf("the data is %d bytes; a certificate asset holds one certificate (at most %d bytes here)", len(data), maxCertificateAsset)
	}
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("the PEM block is %q, not CERTIFICATE", clipValue(b.Type))
		}
		data = b.Bytes
	} else if bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, errors.New("the PEM data does not decode")
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("not a certificate: %w", err)
	}
	return c, nil
}

// applyDeclaredCertificates makes user's channel hold the certificates of
// its active certificate configurations among ds (their assets' data in
// assets), removes those of configurations no longer active, and returns
// why each configuration it cannot act on failed, by identifier.
func (d *Device) applyDeclaredCertificates(user string, ds []*heldDeclaration, statuses map[string]declStatus, assets map[string]heldAsset) map[string]applyFailure {
	failures := map[string]applyFailure{}
	byID := map[string]*heldDeclaration{}
	for _, h := range ds {
		byID[h.Identifier] = h
	}
	var want []trustedRoot
	for _, h := range ds {
		if h.Type != certificateConfigurationType || !statuses[h.Identifier].active {
			continue
		}
		ref, _ := h.Payload["CredentialAssetReference"].(string)
		fail := func(format string, args ...any) {
			failures[h.Identifier] = applyFailure{Code: "Error.ConfigurationCannotBeApplied", Error: fmt.Sprintf(format, args...)}
		}
		a := byID[ref]
		if a == nil {
			continue // Error.MissingAssets (evaluate)
		}
		if a.Type != certificateAssetType {
			fail("the asset %s is a %s, not a %s", ref, a.Type, certificateAssetType)
			continue
		}
		held, ok := assets[ref]
		if !ok || held.Data == nil {
			fail("the certificate asset %s could not be used", ref)
			continue
		}
		c, err := parseCertificateAsset(held.Data)
		if err != nil { // checked at download; kept data from an older file may not be
			fail("the certificate asset %s: %v", ref, err)
			continue
		}
		want = append(want, trustedRoot{cert: c, user: user, declaration: h.Identifier, asset: ref})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	same := func(a, b trustedRoot) bool {
		return a.user == b.user && a.declaration == b.declaration && a.asset == b.asset && bytes.Equal(a.cert.Raw, b.cert.Raw)
	}
	d.st.roots = slices.DeleteFunc(d.st.roots, func(r trustedRoot) bool {
		return r.declaration != "" && r.user == user && !slices.ContainsFunc(want, func(w trustedRoot) bool { return same(r, w) })
	})
	for _, w := range want {
		if !slices.ContainsFunc(d.st.roots, func(r trustedRoot) bool { return same(r, w) }) {
			d.st.roots = append(d.st.roots, w)
		}
	}
	return failures
}
