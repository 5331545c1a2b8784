package memory_test

import (
	"testing"

	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/memory"
	"github.com/mockmdm/mockmdm/store/storetest"
)

func TestBattery(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
}

// BenchmarkCommandCycle: the store's share of a bench command cycle (see
// storetest.BenchmarkCommandCycle).
func BenchmarkCommandCycle(b *testing.B) {
	storetest.BenchmarkCommandCycle(b, memory.New())
}

// BenchmarkCommandCycleEightAtOnce: the same, eight devices at once, as
// `mockmdm bench` runs them.
func BenchmarkCommandCycleEightAtOnce(b *testing.B) {
	storetest.BenchmarkCommandCycleAtOnce(b, memory.New(), 8)
}

func TestCycles(t *testing.T) { storetest.RunCycles(t, memory.New()) }
