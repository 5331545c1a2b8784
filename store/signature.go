package store

// Both stores keep an Mdm-Signature header in two parts. A device signs
// every message with the same identity, so the headers of one enrollment
// share a long prefix — the CMS framing, the certificate and the signer's
// identifiers, about three quarters of a 2048-bit header — and differ only
// in the signing time, the message digest and the signature. Each store
// keeps that prefix once per enrollment (its "head") and with each entry
// only the rest: less memory in store/memory, smaller rows and fewer pages
// written per request in store/sqlite.

// MinSharedSignature is the shortest prefix worth sharing: below it the
// header is from another identity (a new enrollment, a renewed
// certificate), and becomes the enrollment's new head.
const MinSharedSignature = 512

// SharedPrefix is the length of the longest common prefix of a and b.
func SharedPrefix(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	// A block at a time (the comparison is vectorised), then byte by byte.
	const block = 64
	for i+block <= n && a[i:i+block] == b[i:i+block] {
		i += block
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}
