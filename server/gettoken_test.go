package server_test

import (
	"context"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestGetToken: a device's GetToken check-in gets a com.apple.maid JWT that
// a JWT library we did not write verifies with the MDM server's ADE token
// certificate, with Apple's claims; watch pairing needs its three
// parameters and gives one token per pairing; an unknown service is a 400
// that names the known ones.
func TestGetToken(t *testing.T) {
	ctx := context.Background()
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice()
	srv.Enroll(dev)

	raw, err := dev.GetToken(ctx, "com.apple.maid", nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := srv.Server().PKI().ADETokenKeys.Cert.PublicKey.(*rsa.PublicKey)
	tok, err := jwt.Parse(string(raw), func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("the com.apple.maid token does not verify: %v\n%s", err, raw)
	}
	claims := tok.Claims.(jwt.MapClaims)
	if claims["service_type"] != "com.apple.maid" || claims["jti"] == "" || claims["iat"] == nil {
		t.Errorf("claims: %v", claims)
	}
	iss, _ := claims["iss"].(string)
	if len(iss) != 36 {
		t.Errorf("iss %q is not the MDM server's UUID", iss)
	}
	again, _ := dev.GetToken(ctx, "com.apple.maid", nil)
	if string(again) == string(raw) {
		t.Error("two com.apple.maid tokens are the same (jti must differ)")
	}

	params := map[string]any{"SecurityToken": "st", "PhoneUDID": dev.UDID(), "WatchUDID": "00008301-0000"}
	w1, err := dev.GetToken(ctx, "com.apple.watch.pairing", params)
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := dev.GetToken(ctx, "com.apple.watch.pairing", params)
	if string(w1) != string(w2) || !strings.HasPrefix(string(w1), "mockmdm-watch-pairing.") {
		t.Errorf("watch pairing tokens %q and %q", w1, w2)
	}
	var se *device.ServerError
	if _, err := dev.GetToken(ctx, "com.apple.watch.pairing", map[string]any{"PhoneUDID": "p"}); !errors.As(err, &se) || se.StatusCode != 400 || !strings.Contains(se.Error(), "SecurityToken, WatchUDID") {
		t.Errorf("watch pairing without parameters: %v", err)
	}
	if _, err := dev.GetToken(ctx, "com.example.nope", nil); !errors.As(err, &se) || se.StatusCode != 400 || !strings.Contains(se.Error(), "com.apple.maid") {
		t.Errorf("unknown service type: %v", err)
	}
}
