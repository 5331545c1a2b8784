package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// 100 on Linux (the kernel's ABI, whatever its own tick rate).
const clockTick = 10 * time.Millisecond

// cpuSample is a process's CPU time at one moment, two ways: per thread in
// nanoseconds (/proc/<pid>/task/*/schedstat, the scheduler's own
// sum_exec_runtime) and for the whole process in clock ticks
// (/proc/<pid>/stat, what getrusage reports, which keeps the time of
// threads that exited).
type cpuSample struct {
	threads map[string]time.Duration
	ticks   time.Duration
}

// cpuBetween is the process's CPU time from a to b: the per-thread
// nanoseconds when every thread of a is still there at b (a bench phase
// of 20 ms would otherwise be measured to ±10 ms), the clock ticks when a
// thread exited in between and took its time with it.
func cpuBetween(a, b cpuSample) time.Duration {
	var d time.Duration
	for t, ns := range a.threads {
		after, ok := b.threads[t]
		if !ok || after < ns {
			return b.ticks - a.ticks
		}
		d += after - ns
	}
	for t, ns := range b.threads {
		if _, ok := a.threads[t]; !ok {
			d += ns
		}
	}
	return d
}

// processCPU samples a process's CPU time (see cpuSample).
func processCPU(pid int) (cpuSample, error) {
	ticks, err := processTicks(pid)
	if err != nil {
		return cpuSample{}, err
	}
	s := cpuSample{ticks: ticks, threads: map[string]time.Duration{}}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return cpuSample{}, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread exited; cpuBetween falls back to ticks
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return cpuSample{}, fmt.Errorf("/proc/%d/task/%s/schedstat: %q", pid, t.Name(), f[0])
		}
		s.threads[t.Name()] = time.Duration(ns)
	}
	return s, nil
}

// processTicks is the user+system time a process has used so far, from
// /proc/<pid>/stat — the accounting getrusage reports, readable while the
// process runs, in clock ticks.
func processTicks(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count fields after its ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// After ")": state is f[0], so utime (field 14) is f[11] and stime f[12].
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * clockTick, nil
}

// processPeakRSS is VmHWM from /proc/<pid>/status, in KiB.
func processPeakRSS(pid int) (int64, error) { return procStatusKiB(pid, "VmHWM:") }

// processRSS is VmRSS from /proc/<pid>/status, in KiB: the memory the
// process holds now.
func processRSS(pid int) (int64, error) { return procStatusKiB(pid, "VmRSS:") }

func procStatusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, strings.TrimSuffix(field, ":"))
}

// pinProcess binds every thread of pid to one CPU.
func pinProcess(pid, cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return err
		}
	}
	return nil
}

// pinSelf binds this process to one CPU.
func pinSelf(cpu int) error { return pinProcess(os.Getpid(), cpu) }

// cpuModel names the machine's processor, from /proc/cpuinfo, for the
// bench reports: figures from one CPU do not carry to another (issue 8's
// ratio to NanoMDM moved from 0.37 on an AMD EPYC to 0.28 on an Intel
// Xeon with the same code), so a report says which it was measured on.
// Empty when it cannot be told.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	// The first processor's block is at the start, and 16 KiB holds it
	// with room (1.4 KiB on an Intel Xeon, flags included). An ARM
	// kernel's Hardware line comes after every processor and may be cut
	// off on a machine with many: the model is then not named.
	b := make([]byte, 16<<10)
	n, _ := io.ReadFull(f, b)
	return parseCPUModel(b[:n])
}

// parseCPUModel returns the first "model name" (x86) or, failing that,
// "Hardware" or "Model" (some ARM kernels) of a /proc/cpuinfo text.
func parseCPUModel(cpuinfo []byte) string {
	var fallback string
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.Join(strings.Fields(value), " ")
		switch strings.TrimSpace(key) {
		case "model name":
			if value != "" {
				return value
			}
		case "Hardware", "Model":
			if fallback == "" {
				fallback = value
			}
		}
	}
	return fallback
}
