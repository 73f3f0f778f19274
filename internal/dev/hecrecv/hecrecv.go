// Package hecrecv is a loopback Splunk HTTP Event Collector receiver for the demo, the
// end-to-end tests and the benchmark tool. It checks the token, takes gzip, splits the
// concatenated envelopes of /services/collector/event, keeps every event it accepted, and can
// be told to answer like a Splunk that is down (optionally asking for a pause with
// Retry-After), refusing, stalled, cutting connections or rejecting one bad event of a batch.
package hecrecv

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
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

	// refuseNext requests get refuseStatus, then the receiver is healthy again.
	refuseNext, refuseStatus int
	// closeNext requests are read and their connection closed without an answer.
	closeNext int
	// hang, when not nil, holds every request until it is closed (Release) or the client
	// gives up; held counts the requests waiting on it.
	hang chan struct{}
	held int
	// marker, when not empty, makes an event whose envelope contains it invalid.
	marker string
	// retryAfter, when positive, is sent as Retry-After with every 503 answer.
	retryAfter time.Duration
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

// RefuseNext makes the next n requests get status (as Refuse does) and the ones after them
// succeed again: a Splunk that is down for a while and then recovers.
func (r *Receiver) RefuseNext(status, n int) {
	r.mu.Lock()
	r.refuseStatus, r.refuseNext = status, n
	r.mu.Unlock()
}

// CloseNext makes the next n requests be read whole and then have their connection closed
// without any answer, as a crashing Splunk or a proxy cutting connections would. Their events
// are not kept.
func (r *Receiver) CloseNext(n int) {
	r.mu.Lock()
	r.closeNext = n
	r.mu.Unlock()
}

// Hang makes every following request be read and then held without an answer until Release
// or until its client gives up. A held request is answered 503 when released and its events
// are not kept: a Splunk that stalled did not index what it never acknowledged.
func (r *Receiver) Hang() {
	r.mu.Lock()
	if r.hang == nil {
		r.hang = make(chan struct{})
	}
	r.mu.Unlock()
}

// Release ends Hang: held requests are answered and new ones are served normally.
func (r *Receiver) Release() {
	r.mu.Lock()
	if r.hang != nil {
		close(r.hang)
		r.hang = nil
	}
	r.mu.Unlock()
}

// Held returns how many requests are being held by Hang now.
func (r *Receiver) Held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

// RejectMarker makes an event whose envelope contains marker invalid, as Splunk treats an event
// it cannot parse: the request is answered 400 (code 6) with the zero-based
// invalid-event-number of the first such event; the events before it are kept (indexed), the
// rest of the request is not. An empty marker turns this off.
func (r *Receiver) RejectMarker(marker string) {
	r.mu.Lock()
	r.marker = marker
	r.mu.Unlock()
}

// RetryAfter makes every 503 answer carry Retry-After: d (in whole seconds, at least one), as
// a Splunk asking its clients to back off does; 0 sends none.
func (r *Receiver) RetryAfter(d time.Duration) {
	r.mu.Lock()
	r.retryAfter = d
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
	status, delay, hang, marker, retryAfter := r.status, r.delay, r.hang, r.marker, r.retryAfter
	if r.refuseNext > 0 {
		r.refuseNext--
		status = r.refuseStatus
	}
	closeConn := r.closeNext > 0
	if closeConn {
		r.closeNext--
	}
	if hang != nil {
		r.held++
	}
	r.mu.Unlock()
	if closeConn {
		r.cut(w, req)
		return
	}
	if hang != nil {
		// Reading the body lets the server notice the client going away, which ends the wait.
		_, _ = io.Copy(io.Discard, req.Body)
		select {
		case <-hang:
		case <-req.Context().Done():
		}
		r.mu.Lock()
		r.held--
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"text":"Server is busy","code":9}`)
		return
	}
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
		if retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retryAfter/time.Second))))
		}
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
		var raw json.RawMessage
		var ev Event
		err := dec.Decode(&raw)
		if err == nil {
			err = json.Unmarshal(raw, &ev)
		}
		if err != nil || len(ev.Event) == 0 || (marker != "" && bytes.Contains(raw, []byte(marker))) {
			// Splunk indexes the events before the first invalid one and names its index.
			r.accept(got)
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
	r.accept(got)
	_, _ = io.WriteString(w, `{"text":"Success","code":0}`)
}

func (r *Receiver) accept(got []Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keep {
		r.evs = append(r.evs, got...)
	} else {
		r.evs = append(r.evs, make([]Event, len(got))...)
	}
}

// cut reads the request and closes its connection without answering.
func (r *Receiver) cut(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("hecrecv: the server cannot hijack connections") // net/http's HTTP/1 server always can
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	_ = conn.Close()
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

// Close stops the receiver, answering any request held by Hang first.
func (r *Receiver) Close() error {
	r.Release()
	return r.srv.Close()
}
