package hec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/sink"
)

// reply is what HEC answers: {"text","code","invalid-event-number","ackId"}. Load balancers
// in front of it answer with HTML or nothing, so every field is optional.
type reply struct {
	Text         string  `json:"text"`
	Code         *int    `json:"code"`
	InvalidEvent *int    `json:"invalid-event-number"`
	AckID        *uint64 `json:"ackId"`
}

// parseReply decodes body when it is a HEC JSON answer and returns an empty reply otherwise.
func parseReply(body []byte) reply {
	var r reply
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '{' {
		return r
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return reply{}
	}
	return r
}

// codeIs reports whether the reply carries one of codes.
func (r reply) codeIs(codes ...int) bool {
	if r.Code == nil {
		return false
	}
	for _, c := range codes {
		if *r.Code == c {
			return true
		}
	}
	return false
}

// perEvent reports whether a 400 reply judges one event rather than the whole request: only then
// does invalid-event-number single out an event that may be dropped while the rest are resent.
// 5 no data, 6 invalid data format, 12 event field required, 13 event field blank, 15 indexed
// fields.
func (r reply) perEvent() bool { return r.codeIs(5, 6, 12, 13, 15) }

// classify turns an HTTP answer into nil (delivered) or a classified sink error. The shared
// HTTP reading (sink.HTTPStatus) decides, and HEC's own codes ("Troubleshoot HTTP Event
// Collector") refine it: a 400 with a token code (1–4, 16, 21, 22) is unauthorized, one with
// code 7 names the index. The message never holds the token: scrub removes it in case the
// server echoes it.
func classify(status int, h http.Header, r reply, body []byte, now time.Time, scrub func(string) string) error {
	msg := describe(status, r, body, scrub)
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden,
		status == http.StatusBadRequest && r.codeIs(1, 2, 3, 4, 16, 21, 22):
		return sink.Permanent(sink.ReasonUnauthorized, errors.New(msg+": check the token and that it is enabled"))
	case status == http.StatusBadRequest && r.codeIs(7):
		return sink.Permanent(sink.ReasonRejected, errors.New(msg+": the index must be one the token may write to"))
	case status == http.StatusNotFound:
		msg += ": check the URL and that HEC is enabled"
	case status >= 300 && status < 400:
		msg = fmt.Sprintf("%s: redirect to %q not followed; set URL to the HEC endpoint", msg, scrub(h.Get("Location")))
	}
	return sink.HTTPStatus(status, h, now, errors.New(msg))
}

// describe renders the answer for an error message: status, HEC code and text, or the start of
// a body that is not a HEC answer (an HTML page from a proxy), on one line.
func describe(status int, r reply, body []byte, scrub func(string) string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hec: HTTP %d", status)
	if r.Code != nil {
		fmt.Fprintf(&b, " code %d", *r.Code)
	}
	text := r.Text
	if r.Code == nil && text == "" {
		text = string(body)
	}
	if text = sink.Snippet([]byte(scrub(text))); text != "" {
		fmt.Fprintf(&b, " %q", text)
	}
	if r.InvalidEvent != nil {
		fmt.Fprintf(&b, " (invalid-event-number %d)", *r.InvalidEvent)
	}
	return b.String()
}

// classifyTransport classifies a failure to get an answer at all.
func classifyTransport(ctx context.Context, host string, err error) error {
	msg := "hec: " + host + ": "
	if hint := sink.TransportHint(err); hint != "" {
		msg += hint + ": "
	}
	return sink.Transport(ctx, fmt.Errorf("%s%w", msg, err))
}
