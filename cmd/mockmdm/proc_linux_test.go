package main

import (
	"os"
	"testing"
	"time"
)

// TestCPUBetween: per-thread nanoseconds when every thread stayed, new
// threads counted whole, clock ticks when a thread left with its time.
func TestCPUBetween(t *testing.T) {
	a := cpuSample{ticks: 100 * time.Millisecond, threads: map[string]time.Duration{"1": 5 * time.Millisecond, "2": time.Millisecond}}
	b := cpuSample{ticks: 110 * time.Millisecond, threads: map[string]time.Duration{"1": 7 * time.Millisecond, "2": time.Millisecond + 500*time.Microsecond, "3": 250 * time.Microsecond}}
	if got, want := cpuBetween(a, b), 2750*time.Microsecond; got != want {
		t.Errorf("threads all present: %v, want %v", got, want)
	}
	gone := cpuSample{ticks: 130 * time.Millisecond, threads: map[string]time.Duration{"1": 9 * time.Millisecond}}
	if got, want := cpuBetween(a, gone), 30*time.Millisecond; got != want {
		t.Errorf("a thread exited: %v, want the ticks' %v", got, want)
	}
	reused := cpuSample{ticks: 120 * time.Millisecond, threads: map[string]time.Duration{"1": 6 * time.Millisecond, "2": 0}}
	if got, want := cpuBetween(a, reused), 20*time.Millisecond; got != want {
		t.Errorf("a thread ID reused: %v, want the ticks' %v", got, want)
	}
}

// TestProcessCPUReadsThisProcess: the sample of a live process grows as it
// works, to the microsecond.
func TestProcessCPUReadsThisProcess(t *testing.T) {
	a, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(20 * time.Millisecond)
	for time.Now().Before(end) {
	}
	b, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := cpuBetween(a, b); d <= 0 || d%time.Millisecond == 0 && d%(10*time.Millisecond) == 0 {
		t.Fatalf("20 ms of spinning measured as %v", d)
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Error("a process that does not exist was sampled")
	}
}

// TestCalibratedScalesToTheReference: a phase measured when one
// verification took twice the reference counts half at the reference.
func TestCalibratedScalesToTheReference(t *testing.T) {
	p := benchPhase{CPUPerOp: 200 * time.Microsecond}
	p.calibrated(2*rsaReference, 3*rsaReference)
	if p.RSAVerify != 2*rsaReference || p.CPUPerOpAtReference != 100*time.Microsecond {
		t.Fatalf("%+v", p)
	}
	q := benchPhase{CPUPerOp: 200 * time.Microsecond}
	q.calibrated(0, rsaReference)
	if q.RSAVerify != 0 || q.CPUPerOpAtReference != 0 {
		t.Fatalf("an unmeasured speed was used: %+v", q)
	}
}
