package ade

import (
	"net/url"
	"testing"
)

// FuzzParseEscrowKeyUnlock: any query and form body either parse into a
// request with every required parameter, or are refused with a 4xx; never
// a panic.
func FuzzParseEscrowKeyUnlock(f *testing.F) {
	f.Add("serial=C02X00001&productType=iPad13,18", "orgName=Example+School&guid=it%40example.org&escrowKey=CEN8G-RKCHH-3A0E-F5VU-0RTT-96L3")
	f.Add("serial=C02X00001&productType=iPhone14,2&imei=35+123456+789012+3&meid=A1000012345678", "orgName=o&guid=g&escrowKey=k")
	f.Add("serial=a&serial=b&productType=p", "orgName=o&guid=g&escrowKey=k")
	f.Add("serial=a&productType=p&escrowKey=k", "orgName=o&guid=g&escrowKey=k")
	f.Fuzz(func(t *testing.T, query, form string) {
		q, _ := url.ParseQuery(query)
		fv, _ := url.ParseQuery(form)
		req, err := ParseEscrowKeyUnlock(q, fv)
		if err != nil {
			if ae, ok := err.(*apiError); !ok || ae.Status < 400 || ae.Status > 499 || ae.Reason == "" {
				t.Fatalf("refusal %#v is not a 4xx with a reason", err)
			}
			return
		}
		for name, v := range map[string]string{"serial": req.Serial, "productType": req.ProductType, "orgName": req.OrgName, "guid": req.GUID, "escrowKey": req.EscrowKey} {
			if v == "" || len(v) > maxUnlockParam {
				t.Fatalf("accepted with %s = %q", name, v)
			}
		}
	})
}
