// Package certs is mockmdm's certificate authority and everything that
// checks or carries certificates:
//
//   - CA: the test CA of an instance, which issues TLS server certificates a
//     real iPad can be made to trust (Apple's rules: SAN, serverAuth, ≤ 825
//     days), profile-signing certificates and device identities from CSRs.
//   - The SCEP endpoint (NewSCEPHandler) that issues those identities, built
//     on micromdm's scepserver with a transport that answers client mistakes
//     with 4xx reasons, and the SCEP client virtual devices use (SCEPEnroll).
//   - Mdm-Signature: the detached CMS a SignMessage device puts on every
//     request (SignMdmSignature, VerifyMdmSignature).
//   - Verifier: "is this identity one of ours, valid now, fit for client
//     auth?", with a bounded cache keyed by the certificate's Hash.
//   - Mock APNs push certificates and topics (NewMockPushCert, TopicFromCert).
//   - PEM files for the data directory (WriteCertPEM, ReadKeyPEM,
//     LoadOrCreateCA).
//
// Every refusal a client causes is an *Error with HTTP status 400 — never
// 401, which makes a real device unenroll — and a Kind (ErrExpired,
// ErrSignatureMismatch, …) to branch on with errors.Is. CMS goes through
// go.mozilla.org/pkcs7 (SCEP's PKIMessages through the scep libraries); the
// decoders of untrusted bytes have fuzz targets.
package certs
