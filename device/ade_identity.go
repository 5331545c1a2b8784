package device

import (
	"crypto"
	"crypto/x509"
	"errors"
	"sync"

	"github.com/mockmdm/mockmdm/certs"
)

// appleIdentities holds the ready-made Apple identities given to devices
// with SetAppleIdentity; kept beside Device, as adeFlags is, so the core
// type stays as it is.
var appleIdentities sync.Map // *Device → appleIdentity

type appleIdentity struct {
	cert *x509.Certificate
	key  crypto.PrivateKey
}

// SetAppleIdentity gives the device a ready-made identity from the mock
// Apple device CA, which it then signs its MachineInfo with when Activate
// is given no AppleDeviceCA. A virtual device driven from outside the
// server's process cannot hold the CA's key, so it takes an identity the
// server issued for its serial and UDID (POST /v1/ade/device-identities),
// as a real device holds the one Apple issued it at activation. A nil
// certificate clears it.
func (d *Device) SetAppleIdentity(cert *x509.Certificate, key crypto.PrivateKey) error {
	if cert == nil {
		appleIdentities.Delete(d)
		return nil
	}
	if key == nil {
		return errors.New("device: an Apple identity needs its private key")
	}
	appleIdentities.Store(d, appleIdentity{cert: cert, key: key})
	return nil
}

// signWithAppleIdentity signs mi with the identity SetAppleIdentity gave,
// if any.
func (d *Device) signWithAppleIdentity(mi []byte) ([]byte, bool, error) {
	v, ok := appleIdentities.Load(d)
	if !ok {
		return nil, false, nil
	}
	id := v.(appleIdentity)
	signed, err := certs.SignMachineInfo(mi, id.cert, id.key)
	return signed, true, err
}
