//go:build !unix

package mockapns

import "syscall"

// socketReady cannot peek here: say yes, and let a short read find out.
func socketReady(syscall.RawConn) bool { return true }
