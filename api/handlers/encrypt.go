package handlers

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store"
)

// IdentityCertificates gives the identity certificate a device channel
// last authenticated with (store.ErrNotFound when none is on record).
type IdentityCertificates interface {
	IdentityCertificate(ctx context.Context, deviceID string) (*x509.Certificate, error)
}

// WithIdentityCertificates enables "encrypt_profile" on POST /v1/commands.
func WithIdentityCertificates(ic IdentityCertificates) Option {
	return func(a *API) { a.identities = ic }
}

// encryptInstallProfile replaces an InstallProfile's Payload with the same
// profile encrypted to the target enrollment's identity certificate
// (EncryptedPayloadContent), as a server does to keep a profile's secrets
// readable only by the device. Each device has its own identity, so one
// command serves one enrollment.
func (a *API) encryptInstallProfile(ctx context.Context, cmd *mdm.Command, ids []string) error {
	switch {
	case a.identities == nil:
		return httperr.New(http.StatusBadRequest, `"encrypt_profile" is not available: this API keeps no identity certificates`)
	case cmd.RequestType != "InstallProfile":
		return httperr.New(http.StatusBadRequest, `"encrypt_profile" is for InstallProfile; this command is %s`, cmd.RequestType)
	case len(ids) != 1:
		return httperr.New(http.StatusBadRequest, `"encrypt_profile" needs exactly one enrollment, not %d: each device's profile is encrypted to its own identity certificate, so send one command per enrollment`, len(ids))
	}
	e, err := a.store.GetEnrollment(ctx, ids[0])
	if err != nil {
		return err // checkTargets found it a moment ago
	}
	deviceID := e.DeviceID
	if deviceID == "" {
		deviceID = e.ID
	}
	cert, err := a.identities.IdentityCertificate(ctx, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return httperr.New(http.StatusConflict, "enrollment %s has no identity certificate on record to encrypt to (it authenticated before this server kept them, or its data was reset); enroll the device again", ids[0])
	} else if err != nil {
		return err
	}
	var c map[string]any
	if err := plist.Unmarshal(cmd.Raw, &c); err != nil {
		return err // the command builder made this plist
	}
	body, _ := c["Command"].(map[string]any)
	payload, _ := body["Payload"].([]byte)
	enc, err := profiles.Encrypt(payload, cert)
	if err != nil {
		return httperr.Wrap(http.StatusBadRequest, err, "encrypt_profile: the Payload cannot be encrypted")
	}
	body["Payload"] = enc
	raw, err := plist.Marshal(c)
	if err != nil {
		return err
	}
	cmd.Raw = raw
	return nil
}
