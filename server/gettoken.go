package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/micromdm/nanodep/cryptoutil"

	"github.com/mockmdm/mockmdm/internal/httperr"
)

// GetToken service types (Apple's mdm/checkin/gettoken.yaml).
const (
	tokenServiceMAID         = "com.apple.maid"
	tokenServiceWatchPairing = "com.apple.watch.pairing"
)

// tokenIssuer answers GetToken check-ins (checkin.TokenIssuer).
//
//   - com.apple.maid: a JWT for Managed Apple Account sign-in, minted as
//     NanoDEP mints it (cryptoutil.NewMAIDJWT: RS256 over iss = the MDM
//     server's UUID in Apple Business Manager, iat, jti and service_type),
//     signed with the MDM server's ADE token key pair — the simulated ABM's
//     server UUID and the key pair mockmdm's ADE server tokens are
//     encrypted to.
//   - com.apple.watch.pairing: Apple's schema requires SecurityToken,
//     PhoneUDID and WatchUDID; what the token is, is the MDM vendor's
//     business, so mockmdm answers an opaque token of its own: an HMAC of
//     the three under the same key, so one pairing always gets one token.
type tokenIssuer struct{ s *Server }

func (t tokenIssuer) IssueToken(ctx context.Context, enrollmentID, serviceType string, params map[string]any) ([]byte, error) {
	switch serviceType {
	case tokenServiceMAID:
		serverUUID, err := t.s.abm.ServerUUID(ctx)
		if err != nil {
			return nil, err
		}
		jwt, err := cryptoutil.NewMAIDJWT(t.s.pki.ADETokenKeys.Key, serverUUID, t.s.now(), uuid.NewString())
		if err != nil {
			return nil, err
		}
		return []byte(jwt), nil
	case tokenServiceWatchPairing:
		var missing []string
		var parts []string
		for _, k := range []string{"SecurityToken", "PhoneUDID", "WatchUDID"} {
			v, _ := params[k].(string)
			if strings.TrimSpace(v) == "" {
				missing = append(missing, k)
			}
			parts = append(parts, v)
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return nil, httperr.New(http.StatusBadRequest, "GetToken com.apple.watch.pairing needs TokenParameters %s (strings)", strings.Join(missing, ", "))
		}
		mac := hmac.New(sha256.New, t.s.pki.ADETokenKeys.Key.D.Bytes())
		mac.Write([]byte(strings.Join(parts, "\x00")))
		return []byte("mockmdm-watch-pairing." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))), nil
	}
	return nil, httperr.New(http.StatusBadRequest, "GetToken: unknown TokenServiceType %q (known: %s, %s)", clipText(serviceType, 80), tokenServiceMAID, tokenServiceWatchPairing)
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
