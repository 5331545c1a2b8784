package main

import (
	"os"
	"runtime"
	"strings"
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

// TestParseCPUModel: the first x86 "model name", an ARM kernel's Hardware
// or Model line when there is none, and nothing from text without either.
func TestParseCPUModel(t *testing.T) {
	for _, tc := range []struct {
		name, cpuinfo, want string
	}{
		{"intel", "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n", "Intel(R) Xeon(R) Processor"},
		{"amd, spaces squeezed", "processor\t: 0\nmodel name\t:   AMD EPYC   7B13 64-Core Processor  \n", "AMD EPYC 7B13 64-Core Processor"},
		{"first model name wins", "model name\t: First\nmodel name\t: Second\n", "First"},
		{"empty model name skipped", "model name\t:\nmodel name\t: Second\n", "Second"},
		{"arm hardware", "processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B\n", "BCM2835"},
		{"model name beats hardware", "Hardware\t: X\nmodel name\t: Y\n", "Y"},
		{"none", "processor\t: 0\nBogoMIPS\t: 50.00\n", ""},
		{"empty", "", ""},
		{"binary junk", "\x00\xff:\x01\nmodel name", ""},
	} {
		if got := parseCPUModel([]byte(tc.cpuinfo)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestCPUModelThisMachine: on Linux the processor is named, so a bench
// report says what it was measured on; an x86 kernel always gives its
// "model name".
func TestCPUModelThisMachine(t *testing.T) {
	if _, err := os.Stat("/proc/cpuinfo"); err != nil {
		t.Skip("no /proc/cpuinfo here")
	}
	if m := cpuModel(); m == "" {
		if runtime.GOARCH == "amd64" || runtime.GOARCH == "386" {
			t.Error("cpuModel() is empty on x86, whose /proc/cpuinfo has a model name")
		}
		t.Log("/proc/cpuinfo names no model on this machine") // some ARM kernels
	} else if strings.ContainsAny(m, "\n\t") {
		t.Errorf("cpuModel() = %q: not one line", m)
	}
}
