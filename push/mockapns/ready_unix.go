//go:build unix

package mockapns

import "syscall"

// socketReady peeks at the socket without blocking or consuming: true when
// bytes, the end of the stream or an error wait there.
func socketReady(rc syscall.RawConn) bool {
	ready := true
	var b [1]byte
	err := rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ready = err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
		return true // never wait for readiness
	})
	if err != nil {
		return true // closed: the read will say so
	}
	return ready
}
