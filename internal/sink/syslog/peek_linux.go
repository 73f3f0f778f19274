package syslog

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// peek looks at the socket under conn without consuming or waiting: MSG_PEEK leaves any
// bytes (a TLS record included) for the next Read.
func peek(conn net.Conn) (peekResult, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return peekUnknown, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return peekUnknown, nil
	}
	var (
		n    int
		rerr error
		b    [1]byte
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	switch {
	case err != nil:
		return peekUnknown, nil
	case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EWOULDBLOCK), errors.Is(rerr, syscall.EINTR):
		return peekEmpty, nil
	case rerr != nil:
		return peekClosed, rerr
	case n == 0:
		return peekClosed, io.EOF
	}
	return peekData, nil
}
