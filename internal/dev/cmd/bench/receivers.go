package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// frameCounter counts RFC 6587 octet-counted frames ("LEN SP MSG") in a byte stream fed in
// arbitrary pieces, without keeping the messages: the benchmark's receivers must cost less
// than the handler they measure, and their memory must stay flat.
type frameCounter struct {
	frames, bytes int64
	// inHeader is true while reading a frame's length; n is the length read so far or the
	// message bytes still to skip.
	inHeader bool
	n        int64
	digits   int
	err      error
}

func newFrameCounter() *frameCounter { return &frameCounter{inHeader: true} }

// maxFrameDigits bounds the length field; a longer one means the stream is not octet-counted.
const maxFrameDigits = 9

// feed consumes p. After the first framing error it ignores the rest of the stream.
func (f *frameCounter) feed(p []byte) {
	for len(p) > 0 && f.err == nil {
		if !f.inHeader {
			k := min(int64(len(p)), f.n)
			f.n -= k
			f.bytes += k
			p = p[k:]
			if f.n == 0 {
				f.frames++
				f.inHeader = true
			}
			continue
		}
		c := p[0]
		p = p[1:]
		switch {
		case c >= '0' && c <= '9' && f.digits < maxFrameDigits && !(f.digits == 0 && c == '0'):
			f.n = f.n*10 + int64(c-'0')
			f.digits++
		case c == ' ' && f.digits > 0:
			f.inHeader = false
			f.digits = 0
		default:
			f.err = fmt.Errorf("not an octet-counted frame: byte %q after %d frames", c, f.frames)
		}
	}
}

// done reports a frame cut off by the end of the stream.
func (f *frameCounter) done() error {
	if f.err == nil && (!f.inHeader || f.digits > 0) {
		f.err = fmt.Errorf("stream ended inside frame %d", f.frames+1)
	}
	return f.err
}

// tcpReceiver is a loopback syslog collector that only counts octet-counted frames.
type tcpReceiver struct {
	Addr string
	ln   net.Listener

	frames, bytes atomic.Int64
	mu            sync.Mutex
	errs          []error
	wg            sync.WaitGroup
}

func startTCPReceiver() (*tcpReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &tcpReceiver{Addr: "tcp://" + ln.Addr().String(), ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.serve(c)
			}()
		}
	}()
	return r, nil
}

func (r *tcpReceiver) serve(c net.Conn) {
	defer c.Close()
	f := newFrameCounter()
	buf := make([]byte, 256<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			frames, bytes := f.frames, f.bytes
			f.feed(buf[:n])
			r.frames.Add(f.frames - frames)
			r.bytes.Add(f.bytes - bytes)
		}
		if err != nil {
			if ferr := f.done(); ferr != nil || !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				r.mu.Lock()
				r.errs = append(r.errs, errors.Join(ferr, ignoreEOF(err)))
				r.mu.Unlock()
			}
			return
		}
	}
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Frames returns how many complete messages arrived.
func (r *tcpReceiver) Frames() int64 { return r.frames.Load() }

// Errors returns the framing errors seen so far.
func (r *tcpReceiver) Errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func (r *tcpReceiver) Close() { _ = r.ln.Close() }
