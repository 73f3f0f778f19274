package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// syslogReceiver is a plain TCP syslog listener that takes RFC 6587 octet-counted frames (and,
// for a line that does not start with a count, LF framing).
type syslogReceiver struct {
	Addr string
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
}

func startSyslog() (*syslogReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &syslogReceiver{Addr: "tcp://" + ln.Addr().String(), ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s, nil
}

func (s *syslogReceiver) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 1<<20)
	for {
		head, err := r.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(head))
		var msg string
		if err != nil {
			rest, _ := r.ReadString('\n')
			msg = strings.TrimRight(head+rest, "\n")
		} else {
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				return
			}
			msg = string(buf)
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, msg)
		s.mu.Unlock()
	}
}

func (s *syslogReceiver) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

func (s *syslogReceiver) Close() { _ = s.ln.Close() }

// webhookReceiver stands in for LogRhythm's Open Collector Webhook Beat: it takes one JSON
// object per POST.
type webhookReceiver struct {
	URL  string
	srv  *http.Server
	mu   sync.Mutex
	objs []map[string]any
}

func startWebhook() (*webhookReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &webhookReceiver{URL: "http://" + ln.Addr().String() + "/webhook"}
	w.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var obj map[string]any
		if err := json.NewDecoder(r.Body).Decode(&obj); err != nil {
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.objs = append(w.objs, obj)
		w.mu.Unlock()
		rw.WriteHeader(http.StatusOK)
	})}
	go func() { _ = w.srv.Serve(ln) }()
	return w, nil
}

func (w *webhookReceiver) Objects() []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]map[string]any(nil), w.objs...)
}

func (w *webhookReceiver) Close() { _ = w.srv.Close() }

// shorten keeps a long line readable in the demo's output.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d bytes)", len(s))
}
