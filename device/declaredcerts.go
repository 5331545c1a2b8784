package device

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/profiles"
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
	// maxCredentialAsset bounds one credential asset's data a device keeps
	// (a certificate, a SCEP or PKCS #12 credential): each is a few
	// kilobytes.
	maxCredentialAsset = 64 << 10
)

// parseCertificateAsset reads a certificate asset's data: one PEM
// CERTIFICATE block, or DER.
func parseCertificateAsset(data []byte) (*x509.Certificate, error) {
	if len(data) > maxCredentialAsset {
		return nil, fmt.Errorf("the data is %d bytes; a certificate asset holds one certificate (at most %d bytes here)", len(data), maxCredentialAsset)
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

// credentialAsset is the asset declaration a configuration h names by
// CredentialAssetReference (nil when ds has none: evaluate reports that)
// and, when it is of one of assetTypes and was fetched, the data the device
// keeps; else nil data and why.
func credentialAsset(h *heldDeclaration, ds []*heldDeclaration, assets map[string]heldAsset, assetTypes ...string) (asset *heldDeclaration, held *heldAsset, why string) {
	ref, _ := h.Payload["CredentialAssetReference"].(string)
	i := slices.IndexFunc(ds, func(a *heldDeclaration) bool { return a.Identifier == ref })
	if i < 0 {
		return nil, nil, "" // Error.MissingAssets (evaluate)
	}
	asset = ds[i]
	if !slices.Contains(assetTypes, asset.Type) {
		return asset, nil, fmt.Sprintf("the asset %s is a %s, not a %s", ref, asset.Type, strings.Join(assetTypes, " or "))
	}
	if a, ok := assets[ref]; ok && a.Data != nil {
		return asset, &a, ""
	}
	return asset, nil, fmt.Sprintf("the asset %s could not be used", ref)
}

// cannotApply is Apple's Error.ConfigurationCannotBeApplied with why.
func cannotApply(format string, args ...any) applyFailure {
	return applyFailure{Code: "Error.ConfigurationCannotBeApplied", Error: fmt.Sprintf(format, args...)}
}

// applyDeclaredCertificates makes user's channel hold the certificates of
// its active certificate configurations among ds (their assets' data in
// assets), removes those of configurations no longer active, and returns
// why each configuration it cannot act on failed, by identifier.
func (d *Device) applyDeclaredCertificates(user string, ds []*heldDeclaration, statuses map[string]declStatus, assets map[string]heldAsset) map[string]applyFailure {
	failures := map[string]applyFailure{}
	var want []trustedRoot
	for _, h := range ds {
		if h.Type != certificateConfigurationType || !statuses[h.Identifier].active {
			continue
		}
		asset, held, why := credentialAsset(h, ds, assets, certificateAssetType)
		if held == nil {
			if why != "" {
				failures[h.Identifier] = cannotApply("%s", why)
			}
			continue
		}
		c, err := parseCertificateAsset(held.Data)
		if err != nil { // checked at download; kept data from an older file may not be
			failures[h.Identifier] = cannotApply("the certificate asset %s: %v", asset.Identifier, err)
			continue
		}
		want = append(want, trustedRoot{cert: c, user: user, declaration: h.Identifier, asset: asset.Identifier})
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

// Identities by declaration: a com.apple.configuration.security.identity
// configuration names, by CredentialAssetReference, a credential asset:
//
//   - com.apple.asset.credential.scep: the data is a JSON document of
//     Apple's SCEPCredential (URL, Subject, Challenge, Keysize,
//     CAFingerprint…). The device enrolls with that SCEP server as a SCEP
//     payload does (a new key, a CSR with the Subject and Challenge, the CA
//     checked against CAFingerprint), once, and again when the asset's data
//     changes. An enrollment the SCEP server refuses fails the
//     configuration with Error.ConfigurationCannotBeApplied and is not
//     asked again until the asset's data changes (one that did not reach
//     the server is tried again at the next sync).
//   - com.apple.asset.credential.identity: the data is a JSON document of
//     Apple's IdentityCredential, a PKCS #12 Identity (base64) and its
//     Password; the device opens it and holds its RSA identity. One that
//     does not open fails the asset with Error.AssetCannotBeDeserialized
//     and the configuration with Error.ConfigurationCannotBeApplied, and is
//     not opened again until the asset's data changes.
//
// At most maxIdentitiesPerSync identities are made at one sync, the rest
// at the next. Data that does not pass Apple's credential schema fails the
// asset with Error.AssetCannotBeDeserialized.
// While the configuration is active the identity is in the channel's
// keychain (CertificateList, Identities, security.certificate.list with
// the asset as declaration-identifier) until the configuration is no
// longer active, the user is deleted, or the enrollment ends. The virtual
// device does not run ACME (com.apple.asset.credential.acme): a
// configuration naming one fails, saying so.
//
// Sources: Apple's schemas declarations/configurations/security.identity.yaml,
// declarations/assets/credential.scep.yaml, credential.identity.yaml and
// declarations/assets/credentials/scep.yaml and identity.yaml.

// maxIdentitiesPerSync bounds the identities one sync makes — SCEP
// enrollments (each a new key) and PKCS #12 opens (each up to 200,000
// rounds of key derivation): the rest wait for the next sync.
const maxIdentitiesPerSync = 8

const (
	identityConfigurationType = "com.apple.configuration.security.identity"
	scepAssetType             = "com.apple.asset.credential.scep"
	scepCredentialType        = "com.apple.credential.scep"
	identityAssetType         = "com.apple.asset.credential.identity"
	acmeAssetType             = "com.apple.asset.credential.acme"
	identityCredentialType    = "com.apple.credential.identity"
)

// keepsAssetData reports whether the device keeps an asset type's data
// (it acts on it later, not only at download).
func keepsAssetData(assetType string) bool {
	return assetType == certificateAssetType || assetType == scepAssetType || assetType == identityAssetType
}

// checkAssetData checks data the device keeps against its asset type.
func checkAssetData(assetType string, data []byte) error {
	var err error
	switch assetType {
	case certificateAssetType:
		_, err = parseCertificateAsset(data)
	case scepAssetType:
		_, err = parseSCEPCredential(data)
	case identityAssetType:
		// The PKCS #12 itself is opened when the identity is made (a
		// bounded number at each sync), not at every download.
		_, err = decodeCredential(data, identityCredentialType, "Identity")
	}
	return err
}

// parseIdentityCredential reads a PKCS #12 identity asset's data: Apple's
// IdentityCredential, its Identity opened with its Password (the
// key-derivation work bounded as for push credentials). A virtual device
// holds RSA identities.
func parseIdentityCredential(data []byte) (*x509.Certificate, *rsa.PrivateKey, error) {
	dict, err := decodeCredential(data, identityCredentialType, "Identity")
	if err != nil {
		return nil, nil, err
	}
	p12, _ := dict["Identity"].([]byte)
	password, _ := dict["Password"].(string)
	chain, key, err := certs.DecodePKCS12(p12, password)
	if err != nil {
		return nil, nil, fmt.Errorf("the Identity does not open with the Password: %v", err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("the Identity's key is a %T; a virtual device holds RSA identities", key)
	}
	return chain[0], rsaKey, nil
}

// decodeCredential reads a credential asset's data: one JSON object of
// Apple's credential type, its <data> keys (dataKeys) base64 as JSON
// carries them, checked against the type's schema.
func decodeCredential(data []byte, credentialType string, dataKeys ...string) (map[string]any, error) {
	if len(data) > maxCredentialAsset {
		return nil, fmt.Errorf("the data is %d bytes; a credential is a small JSON document (at most %d bytes here)", len(data), maxCredentialAsset)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return nil, fmt.Errorf("the data is not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, errors.New("the data holds more than one JSON value")
	}
	for _, k := range dataKeys {
		if v, ok := doc[k].(string); ok { // <data>: base64 in JSON
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("%s is not base64 data: %v", k, err)
			}
			doc[k] = b
		}
	}
	s, ok := schema.Lookup(schema.KindCredential, credentialType)
	if !ok {
		return nil, errors.New("Apple's schema has no " + credentialType)
	}
	dict, _ := schema.FromJSON(doc).(map[string]any)
	if probs := schema.ValidateDict(s.PayloadKeys, dict, ""); len(probs) > 0 {
		return nil, fmt.Errorf("not a %s credential: %s", credentialType, probs[0])
	}
	return dict, nil
}

// parseSCEPCredential reads a SCEP asset's data: Apple's SCEPCredential.
func parseSCEPCredential(data []byte) (*profiles.SCEPPayload, error) {
	dict, err := decodeCredential(data, scepCredentialType, "CAFingerprint")
	if err != nil {
		return nil, err
	}
	str := func(k string) string { v, _ := dict[k].(string); return v }
	if kt := str("Key Type"); kt != "" && kt != "RSA" {
		return nil, fmt.Errorf("Key Type is %q; Apple's SCEP credential says it is always RSA", clipValue(kt))
	}
	p := &profiles.SCEPPayload{URL: str("URL"), Name: str("Name"), Challenge: str("Challenge"), KeyType: "RSA"}
	if n, ok := dict["Keysize"].(int64); ok {
		p.Keysize = int(n)
	}
	if fp, ok := dict["CAFingerprint"].([]byte); ok {
		p.CAFingerprint = fp
	}
	rdns, _ := dict["Subject"].([]any)
	for _, rdn := range rdns {
		list, _ := rdn.([]any)
		var pairs [][]string
		for _, pair := range list {
			elems, _ := pair.([]any)
			var ss []string
			for _, x := range elems {
				str, ok := x.(string)
				if !ok {
					return nil, fmt.Errorf("Subject holds %v, not [name, value] strings", x)
				}
				ss = append(ss, str)
			}
			pairs = append(pairs, ss)
		}
		p.Subject = append(p.Subject, pairs)
	}
	if _, err := subjectName(p.Subject); err != nil {
		return nil, fmt.Errorf("the Subject is unusable: %v", err)
	}
	return p, nil
}

// applyDeclaredIdentities makes user's channel hold an identity for each of
// its active identity configurations among ds (their SCEP and PKCS #12
// assets' data in assets), removes those of configurations no longer active, and returns
// why each configuration it cannot act on failed, by identifier.
func (d *Device) applyDeclaredIdentities(ctx context.Context, user string, ds []*heldDeclaration, statuses map[string]declStatus, assets map[string]heldAsset, prev map[string]applyFailure) map[string]applyFailure {
	failures := map[string]applyFailure{}
	type wanted struct{ declaration, asset, sha string }
	var keep []wanted
	made := 0 // SCEP enrollments and PKCS #12 opens, bounded per sync
	d.mu.RLock()
	held := slices.Clone(d.st.identities)
	d.mu.RUnlock()
	for _, h := range ds {
		if h.Type != identityConfigurationType || !statuses[h.Identifier].active {
			continue
		}
		fail := func(format string, args ...any) { failures[h.Identifier] = cannotApply(format, args...) }
		asset, data, why := credentialAsset(h, ds, assets, scepAssetType, identityAssetType)
		if data == nil {
			if asset != nil && asset.Type == acmeAssetType {
				why += "; a virtual device does not run ACME"
			}
			if why != "" {
				fail("%s", why)
			}
			continue
		}
		ref := asset.Identifier
		w := wanted{h.Identifier, ref, data.SHA256}
		if slices.ContainsFunc(held, func(id *identity) bool {
			return id.user == user && id.declaration == w.declaration && id.asset == w.asset && id.assetSHA256 == w.sha
		}) {
			keep = append(keep, w)
			continue
		}
		if p, ok := prev[h.Identifier]; ok && p.CredentialSHA256 == w.sha {
			// Refused with this credential: not asked or opened again.
			failures[h.Identifier] = p
			if a, ok := prev[ref]; ok {
				failures[ref] = a
			}
			continue
		}
		if made == maxIdentitiesPerSync {
			fail("%d identities were made at this sync already; this one is left to the next", maxIdentitiesPerSync)
			continue
		}
		made++
		if asset.Type == identityAssetType {
			cert, key, err := parseIdentityCredential(data.Data)
			if err != nil {
				f := cannotApply("the identity asset %s: %v", ref, err)
				f.CredentialSHA256 = w.sha
				failures[h.Identifier] = f
				failures[ref] = applyFailure{Code: "Error.AssetCannotBeDeserialized", Error: err.Error()}
				continue
			}
			d.mu.Lock()
			d.st.identities = append(d.st.identities, &identity{cert: cert, key: key, user: user, declaration: w.declaration, asset: w.asset, assetSHA256: w.sha})
			d.mu.Unlock()
			keep = append(keep, w)
			continue
		}
		cred, err := parseSCEPCredential(data.Data)
		if err != nil {
			fail("the SCEP asset %s: %v", ref, err)
			continue
		}
		ident, err := d.scepEnroll(ctx, "", cred)
		if err != nil {
			f := cannotApply("SCEP enrollment for the asset %s failed: %v", ref, err)
			var refused *certs.SCEPError
			if errors.As(err, &refused) && ctx.Err() == nil {
				f.CredentialSHA256 = w.sha // the CA's answer: asking again would get it again
			}
			failures[h.Identifier] = f
			continue
		}
		ident.user, ident.declaration, ident.asset, ident.assetSHA256 = user, w.declaration, w.asset, w.sha
		d.mu.Lock()
		d.st.identities = append(d.st.identities, ident)
		d.mu.Unlock()
		keep = append(keep, w)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.identities = slices.DeleteFunc(d.st.identities, func(id *identity) bool {
		return id.declaration != "" && id.user == user && !slices.Contains(keep, wanted{id.declaration, id.asset, id.assetSHA256})
	})
	return failures
}
