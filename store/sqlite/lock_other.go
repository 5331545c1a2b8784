//go:build !unix

package sqlite

import "os"

// lockDatabase does nothing where flock is missing: run one mockmdm per
// data directory there.
func lockDatabase(string) (*os.File, error) { return nil, nil }

func unlockDatabase(*os.File) {}
