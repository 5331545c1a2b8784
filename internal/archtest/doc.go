// Package archtest holds the architecture tests: the dependency rule that
// keeps the layout explaining the design (see docs/architecture.md).
package archtest
