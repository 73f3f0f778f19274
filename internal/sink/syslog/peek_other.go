//go:build !linux

package syslog

import "net"

// peek is not available here; the caller falls back to a short read.
func peek(net.Conn) (peekResult, error) { return peekUnknown, nil }
