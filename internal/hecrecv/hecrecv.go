// Package hecrecv is a loopback Splunk HTTP Event Collector receiver for the demo, the
// end-to-end tests and the benchmark tool. It checks the token, takes gzip, splits the
// concatenated envelopes of /services/collector/event, keeps every event it accepted, and can
// be told to answer like a Splunk that is down or refusing.
package hecrecv

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Event is one accepted HEC envelope.
type Event struct {
	Time       *float64          `json:"time"`
	Host       string            `json:"host"`
	Source     string            `json:"source"`
	SourceType string            `json:"sourcetype"`
	Index      string            `json:"index"`
	Fields     map[string]any    `json:"fields"`
	Event      json.RawMessage   `json:"event"`
	Header     map[string]string `json:"-"`
}

// Receiver is a running HEC endpoint.
type Receiver struct {
	// URL is the base URL to configure as the destination's Url.
	URL   string
	Token string

	srv *http.Server
	mu  sync.Mutex
	evs []Event
	// status, when not 0, is answered to every request instead of accepting it.
	status   int
	requests int
	keep     bool
	delay    time.Duration
}

// Start listens on a free loopback port.
func Start(token string) (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{URL: "http://" + ln.Addr().String(), Token: token, keep: true}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Refuse makes every following request get status (503 busy, 400 bad format …); 0 accepts
// again.
func (r *Receiver) Refuse(status int) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

// Delay makes every following request wait d before it is answered (a slow Splunk).
func (r *Receiver) Delay(d time.Duration) {
	r.mu.Lock()
	r.delay = d
	r.mu.Unlock()
}

// Discard stops keeping accepted events (for long benchmark runs); they are still counted.
func (r *Receiver) Discard() {
	r.mu.Lock()
	r.keep = false
	r.mu.Unlock()
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	defer req.Body.Close()
	r.mu.Lock()
	r.requests++
	status, delay := r.status, r.delay
	r.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	w.Header().Set("Content-Type", "application/json")
	if req.URL.Path != "/services/collector/event" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"text":"The requested URL was not found on this server.","code":404}`)
		return
	}
	if req.Header.Get("Authorization") != "Splunk "+r.Token {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"text":"Invalid token","code":4}`)
		return
	}
	switch status {
	case 0:
	case http.StatusServiceUnavailable:
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"text":"Server is busy","code":9}`)
		return
	case http.StatusBadRequest:
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"text":"Incorrect index","code":7}`)
		return
	default:
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `<html><body>error</body></html>`)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"text":"Invalid data format","code":6}`)
			return
		}
		body = zr
	}
	dec := json.NewDecoder(body)
	var got []Event
	for dec.More() {
		var ev Event
		if err := dec.Decode(&ev); err != nil || len(ev.Event) == 0 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"text":"Invalid data format","code":6,"invalid-event-number":%d}`, len(got))
			return
		}
		ev.Header = map[string]string{"X-Splunk-Request-Channel": req.Header.Get("X-Splunk-Request-Channel")}
		got = append(got, ev)
	}
	if len(got) == 0 {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"text":"No data","code":5}`)
		return
	}
	r.mu.Lock()
	if r.keep {
		r.evs = append(r.evs, got...)
	} else {
		r.evs = append(r.evs, make([]Event, len(got))...)
	}
	r.mu.Unlock()
	_, _ = io.WriteString(w, `{"text":"Success","code":0}`)
}

// Events returns a copy of the accepted events.
func (r *Receiver) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.evs...)
}

// Count returns how many events were accepted.
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

// Requests returns how many requests arrived.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Close stops the receiver.
func (r *Receiver) Close() error { return r.srv.Close() }
