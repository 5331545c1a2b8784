#!/usr/bin/env bash
# An MDM client made only of tools mockmdm did not write: curl (HTTP),
# openssl (profile signature check, Mdm-Signature), Python's plistlib
# (every plist read and written) and micromdm's scepclient (SCEP). It
# follows Apple's protocol from the served profile alone.
#
#   independent_client.sh enroll   BASE CAFILE WORKDIR SCEPCLIENT
#   independent_client.sh connect  WORKDIR
set -euo pipefail

py() { python3 - "$@"; }

# put URL FILE CONTENT-TYPE: PUT the file signed with the identity; prints
# the HTTP status, leaves the response body in $W/resp.
put() {
  local url=$1 body=$2 ct=$3
  openssl cms -sign -binary -md sha256 -outform DER -signer "$W/identity.pem" -inkey "$W/identity.key" \
    -in "$body" -out "$W/sig.der"
  local sig; sig=$(base64 -w0 < "$W/sig.der")
  curl -sS --cacert "$CA" -X PUT -H "Content-Type: $ct" -H "Mdm-Signature: $sig" \
    --data-binary "@$body" -o "$W/resp" -w '%{http_code}' "$url"
}

cmd=$1; shift
case "$cmd" in
enroll)
  BASE=$1 CA=$2 W=$3 SCEPCLIENT=$4
  curl -sS --fail --cacert "$CA" -o "$W/profile.der" "$BASE/enroll"
  # The profile must verify against the test CA; openssl writes its content.
  openssl cms -verify -inform DER -in "$W/profile.der" -CAfile "$CA" -out "$W/profile.plist" 2>/dev/null
  py "$W/profile.plist" "$W/env" <<'PY'
import plistlib, sys, shlex
p = plistlib.load(open(sys.argv[1], "rb"))
by = {c["PayloadType"]: c for c in p["PayloadContent"]}
mdm, scep = by["com.apple.mdm"], by["com.apple.security.scep"]
assert mdm["IdentityCertificateUUID"] == scep["PayloadUUID"], "IdentityCertificateUUID does not point at the SCEP payload"
sc = scep["PayloadContent"]
env = {"SCEP_URL": sc["URL"], "CHALLENGE": sc.get("Challenge", ""), "SERVER_URL": mdm["ServerURL"],
       "CHECKIN_URL": mdm.get("CheckInURL", mdm["ServerURL"]), "TOPIC": mdm["Topic"],
       "SIGN": "1" if mdm.get("SignMessage") else "0"}
open(sys.argv[2], "w").write("".join("%s=%s\n" % (k, shlex.quote(v)) for k, v in env.items()))
PY
  . "$W/env"
  [ "$SIGN" = 1 ] || { echo "profile does not ask for SignMessage"; exit 1; }
  SSL_CERT_FILE="$CA" "$SCEPCLIENT" -server-url "$SCEP_URL" -challenge "$CHALLENGE" -private-key "$W/identity.key" \
    -certificate "$W/identity.pem" -cn independent-client -keySize 2048 >/dev/null 2>"$W/scep.log" \
    || { cat "$W/scep.log"; exit 1; }
  echo "CA=$CA" >> "$W/env"
  py "$W" "$TOPIC" <<'PY'
import plistlib, sys, os
w, topic = sys.argv[1], sys.argv[2]
udid = "independent-client-0001"
plistlib.dump({"MessageType": "Authenticate", "UDID": udid, "Topic": topic, "SerialNumber": "INDEP0000001",
               "ProductName": "iPad13,18", "OSVersion": "18.1", "BuildVersion": "22B83", "DeviceName": "Independent"},
              open(os.path.join(w, "authenticate.plist"), "wb"))
plistlib.dump({"MessageType": "TokenUpdate", "UDID": udid, "Topic": topic, "Token": os.urandom(32),
               "PushMagic": "2E5C6D3B-0000-4000-8000-000000000001"},
              open(os.path.join(w, "tokenupdate.plist"), "wb"))
PY
  for m in authenticate tokenupdate; do
    code=$(put "$CHECKIN_URL" "$W/$m.plist" application/x-apple-aspen-mdm-checkin)
    [ "$code" = 200 ] || { echo "$m: HTTP $code: $(cat "$W/resp")"; exit 1; }
  done
  echo enrolled
  ;;
connect)
  W=$1
  . "$W/env"
  status=Idle uuid=
  for _ in $(seq 1 20); do
    py "$W/result.plist" "$status" "$uuid" "$W/resp" <<'PY'
import plistlib, sys
out, status, uuid, prev = sys.argv[1:5]
r = {"UDID": "independent-client-0001", "Status": status}
if uuid:
    r["CommandUUID"] = uuid
    cmd = plistlib.load(open(prev, "rb"))["Command"]
    if cmd["RequestType"] == "DeviceInformation":
        known = {"DeviceName": "Independent", "OSVersion": "18.1", "SerialNumber": "INDEP0000001", "UDID": "independent-client-0001"}
        r["QueryResponses"] = {q: known[q] for q in cmd["Queries"] if q in known}
plistlib.dump(r, open(out, "wb"))
PY
    code=$(put "$SERVER_URL" "$W/result.plist" application/x-apple-aspen-mdm)
    [ "$code" = 200 ] || { echo "connect: HTTP $code: $(cat "$W/resp")"; exit 1; }
    if [ ! -s "$W/resp" ]; then echo "queue empty"; exit 0; fi
    uuid=$(py "$W/resp" <<'PY'
import plistlib, sys
print(plistlib.load(open(sys.argv[1], "rb"))["CommandUUID"])
PY
)
    status=Acknowledged
    echo "answered $uuid"
  done
  echo "too many commands"; exit 1
  ;;
esac
