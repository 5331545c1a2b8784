//go:build !linux

package main

import (
	"errors"
	"time"
)

var errNoProc = errors.New("process accounting needs Linux's /proc")

func processCPU(int) (time.Duration, error) { return 0, errNoProc }
func processPeakRSS(int) (int64, error)     { return 0, errNoProc }
func pinProcess(int, int) error             { return errNoProc }
func pinSelf(int) error                     { return errNoProc }
