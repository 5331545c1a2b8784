//go:build !linux

package main

import (
	"errors"
	"time"
)

var errNoProc = errors.New("process accounting needs Linux's /proc")

// cpuSample is empty where there is no /proc.
type cpuSample struct{}

func processCPU(int) (cpuSample, error)       { return cpuSample{}, errNoProc }
func cpuBetween(a, b cpuSample) time.Duration { return 0 }
func processPeakRSS(int) (int64, error)       { return 0, errNoProc }
func processRSS(int) (int64, error)           { return 0, errNoProc }
func pinProcess(int, int) error               { return errNoProc }
func pinSelf(int) error                       { return errNoProc }
func cpuModel() string                        { return "" }
