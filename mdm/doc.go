// Package mdm is the protocol vocabulary of Apple's MDM: check-in messages,
// command requests and results, error chains and enrollment identifiers.
//
// It is a leaf: no HTTP, no storage. Every decoded message keeps the exact
// bytes it was decoded from in Raw, because signatures cover those bytes and
// the transcript must show what the device really sent.
package mdm
