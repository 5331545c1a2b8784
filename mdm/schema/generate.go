package schema

// schema.json (and zz_generated.go, which records its provenance) come from
// Apple's schema release in the shared checkout; the product never reads that
// checkout at run time.
//go:generate go run ../../internal/schemagen -src ../../../shared/apple-schema -out schema.json
