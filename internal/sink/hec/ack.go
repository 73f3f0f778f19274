package hec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/defender-siem/forwarder/internal/sink"
)

// awaitAcks polls the ack endpoint until every pending request is confirmed or the wait ends,
// and gives the events of unconfirmed requests a retryable timeout error.
func (c *Client) awaitAcks(ctx context.Context, pending []pendingAck, errs []error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.AckTimeout)
	defer cancel()
	timer := time.NewTimer(c.cfg.AckPollInterval)
	defer timer.Stop()
	var lastErr error
poll:
	for len(pending) > 0 {
		select {
		case <-actx.Done():
			break poll
		case <-timer.C:
		}
		acked, err := c.queryAcks(actx, pending)
		if err != nil {
			lastErr = err
			if sink.IsPermanent(err) {
				break poll
			}
		}
		rest := pending[:0]
		for _, p := range pending {
			if !acked[p.id] {
				rest = append(rest, p)
			}
		}
		pending = rest
		timer.Reset(c.cfg.AckPollInterval)
	}
	for _, p := range pending {
		msg := fmt.Sprintf("hec: %d events accepted but their indexing was not acknowledged before the wait ended (AckTimeout %s; ackId %d on channel %s)",
			len(p.idx), c.cfg.AckTimeout, p.id, c.channel)
		err := errors.New(msg)
		if lastErr != nil {
			err = fmt.Errorf("%s; last ack query: %w", msg, lastErr)
		}
		setAll(errs, p.idx, sink.Retryable(sink.ReasonTimeout, 0, err))
	}
}

// queryAcks asks which of the pending ack ids are indexed. Splunk answers
// {"acks":{"<id>":true,…}} with the ids as object keys.
func (c *Client) queryAcks(ctx context.Context, pending []pendingAck) (map[uint64]bool, error) {
	var q struct {
		Acks []uint64 `json:"acks"`
	}
	for _, p := range pending {
		q.Acks = append(q.Acks, p.id)
	}
	body, err := json.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("hec: ack query: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.ackURL, bytes.NewReader(body))
	if err != nil {
		return nil, sink.Permanent(sink.ReasonRejected, fmt.Errorf("hec: %w", err))
	}
	c.setHeaders(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, classifyTransport(ctx, c.host, err)
	}
	defer resp.Body.Close()
	raw, _ := readCapped(resp.Body)
	if err := classify(resp.StatusCode, resp.Header, parseReply(raw), raw, c.now(), c.scrub); err != nil {
		return nil, fmt.Errorf("hec: ack query: %w", err)
	}
	var a struct {
		Acks map[string]bool `json:"acks"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, sink.Retryable(sink.ReasonUnreachable, 0, fmt.Errorf("hec: ack query: undecodable answer: %w", err))
	}
	acked := make(map[uint64]bool, len(a.Acks))
	for k, v := range a.Acks {
		if id, err := strconv.ParseUint(k, 10, 64); err == nil && v {
			acked[id] = true
		}
	}
	return acked, nil
}
