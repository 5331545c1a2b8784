//go:build !unix

package storetest

import "time"

// processCPU is not read here: BenchmarkCommandCycle then reports no CPU.
func processCPU() time.Duration { return 0 }
