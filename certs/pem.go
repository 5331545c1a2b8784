package certs

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// maxPEMFile bounds what the PEM readers load: a data-directory file is a
// handful of certificates, never megabytes; a huge file is a wrong path.
const maxPEMFile = 1 << 20

// WriteCertPEM writes certificates as consecutive "CERTIFICATE" blocks,
// mode 0644, replacing path atomically (a crash never leaves half a file).
func WriteCertPEM(path string, c ...*x509.Certificate) error {
	if len(c) == 0 {
		return fmt.Errorf("certs: no certificate to write to %s", path)
	}
	var buf bytes.Buffer
	for i, cert := range c {
		if cert == nil || len(cert.Raw) == 0 {
			return fmt.Errorf("certs: certificate %d for %s is empty", i, path)
		}
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}); err != nil {
			return err
		}
	}
	return writeFileAtomic(path, buf.Bytes(), 0o644)
}

// WriteKeyPEM writes key as PKCS#8 "PRIVATE KEY", mode 0600, atomically.
func WriteKeyPEM(path string, key *rsa.PrivateKey) error {
	if key == nil {
		return fmt.Errorf("certs: no key to write to %s", path)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certs: marshal key for %s: %w", path, err)
	}
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeFileAtomic writes data to a temporary file created with perm next to
// path, syncs it and renames it over path. Creating with perm (rather than
// chmod afterwards) means a key is never readable by others, not even
// briefly.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certs: create directory for %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	ok = true
	return nil
}

func readPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err) // keeps fs.ErrNotExist visible to errors.Is
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxPEMFile+1)); err != nil {
		return nil, fmt.Errorf("certs: read %s: %w", path, err)
	}
	if buf.Len() > maxPEMFile {
		return nil, fmt.Errorf("certs: %s is larger than %d bytes; not a PEM certificate or key file", path, maxPEMFile)
	}
	return buf.Bytes(), nil
}

// ReadCertPEM reads every "CERTIFICATE" block of path, in order; other
// block types (a key in the same file, say) are skipped. It is an error if
// there is none. A missing file yields an error matching fs.ErrNotExist.
func ReadCertPEM(path string) ([]*x509.Certificate, error) {
	data, err := readPEMFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: %s: PEM block %d: %w", path, n, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("certs: %s holds no PEM \"CERTIFICATE\" block", path)
	}
	return out, nil
}

// ReadKeyPEM reads the first private key of path: PKCS#1 "RSA PRIVATE KEY"
// or PKCS#8 "PRIVATE KEY" holding an RSA key. Encrypted PEM is refused (a
// mock's data directory keeps keys in the clear, protected by file mode).
func ReadKeyPEM(path string) (*rsa.PrivateKey, error) {
	data, err := readPEMFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("certs: %s holds no PEM \"PRIVATE KEY\" or \"RSA PRIVATE KEY\" block", path)
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			if _, encrypted := block.Headers["DEK-Info"]; encrypted {
				return nil, fmt.Errorf("certs: %s: the key is password-encrypted; store it decrypted", path)
			}
			key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certs: %s: PKCS#1 key: %w", path, err)
			}
			return key, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certs: %s: PKCS#8 key: %w", path, err)
			}
			key, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("certs: %s: key is %T; mockmdm needs RSA", path, k)
			}
			return key, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("certs: %s: the key is password-encrypted; store it decrypted", path)
		}
	}
}

// LoadOrCreateCA loads the CA from certPath and keyPath, or — when neither
// exists — creates one with NewCA and writes both (created is then true).
// It refuses to go on when only one of the two files exists, when the key
// does not belong to the certificate, when the certificate is not a CA or
// has expired: replacing a CA silently would strand every device that
// trusts the old one, so the error says which file to fix or delete.
func LoadOrCreateCA(certPath, keyPath, commonName string, keyBits int, validity time.Duration) (ca *CA, created bool, err error) {
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	certMissing, keyMissing := errors.Is(certErr, fs.ErrNotExist), errors.Is(keyErr, fs.ErrNotExist)
	switch {
	case certMissing && keyMissing:
		ca, err := NewCA(commonName, keyBits, validity)
		if err != nil {
			return nil, false, err
		}
		// Key first: a crash between the two writes leaves a key without a
		// certificate, which the next start reports instead of mis-pairing.
		if err := WriteKeyPEM(keyPath, ca.Key); err != nil {
			return nil, false, err
		}
		if err := WriteCertPEM(certPath, ca.Cert); err != nil {
			return nil, false, err
		}
		return ca, true, nil
	case certMissing:
		return nil, false, fmt.Errorf("certs: CA key %s exists but its certificate %s does not; restore the certificate or delete the key to create a new CA", keyPath, certPath)
	case keyMissing:
		return nil, false, fmt.Errorf("certs: CA certificate %s exists but its key %s does not; restore the key or delete the certificate to create a new CA", certPath, keyPath)
	}
	cs, err := ReadCertPEM(certPath)
	if err != nil {
		return nil, false, err
	}
	key, err := ReadKeyPEM(keyPath)
	if err != nil {
		return nil, false, err
	}
	cert := cs[0]
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, false, fmt.Errorf("certs: the key in %s does not belong to the CA certificate in %s", keyPath, certPath)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, false, fmt.Errorf("certs: %s (%q) is not a CA certificate", certPath, cert.Subject.CommonName)
	}
	if now := time.Now(); now.After(cert.NotAfter) {
		return nil, false, fmt.Errorf("certs: CA certificate %s expired on %s; delete %s and %s to create a new CA (devices must then trust the new one)",
			certPath, cert.NotAfter.UTC().Format(time.RFC3339), certPath, keyPath)
	}
	return &CA{Cert: cert, Key: key}, false, nil
}
