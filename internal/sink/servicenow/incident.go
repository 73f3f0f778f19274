package servicenow

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	snformat "github.com/defender-siem/forwarder/internal/format/servicenow"
	"github.com/defender-siem/forwarder/internal/sink"
)

// Send synchronises one incident per payload (an incident document) and returns one error
// per payload. Documents of the same alert are applied in order; once one of them fails and
// may be retried, the later ones wait for the next attempt too, so that an older export is
// never applied after a newer one.
func (c *Client) Send(ctx context.Context, payloads [][]byte) []error {
	errs := make([]error, len(payloads))
	docs := make([]snformat.Document, len(payloads))
	groups := map[string][]int{}
	var order []string
	for i, p := range payloads {
		d, err := snformat.Decode(p)
		if err != nil {
			errs[i] = sink.Permanent(sink.ReasonRejected, err)
			continue
		}
		docs[i] = d
		key := strings.ToLower(d.CorrelationID)
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], i)
	}
	sem := make(chan struct{}, c.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, key := range order {
		idx := groups[key]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			for _, i := range idx {
				errs[i] = sink.Retryable(sink.ReasonTimeout, 0, fmt.Errorf("servicenow: not attempted: %w", ctx.Err()))
			}
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			var pending error
			for _, i := range idx {
				if pending != nil {
					errs[i] = sink.Retryable(sink.ReasonOf(pending), 0, fmt.Errorf("servicenow: waits for an earlier export of the same alert: %w", pending))
					continue
				}
				errs[i] = c.sync(ctx, docs[i])
				if errs[i] != nil && !sink.IsPermanent(errs[i]) {
					pending = errs[i]
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// incident is what a lookup returns of an incident.
type incident map[string]string

// lookupFields are the columns a lookup reads: enough to compare and to order.
var lookupFields = []string{"sys_id", "number", "state", "correlation_id", "short_description", "description", "impact", "urgency", "sys_created_on"}

// maxMatches is how many incidents one alert may have (after a race) before the lookup is
// taken for a query the instance did not apply.
const maxMatches = 5

// find returns the incidents of id, oldest first.
func (c *Client) find(ctx context.Context, id string) ([]incident, error) {
	q := url.Values{}
	q.Set("sysparm_query", "correlation_id="+id+"^ORDERBYsys_created_on^ORDERBYnumber")
	q.Set("sysparm_fields", strings.Join(lookupFields, ","))
	q.Set("sysparm_limit", strconv.Itoa(maxMatches+1))
	q.Set("sysparm_exclude_reference_link", "true")
	resp, err := c.do(ctx, http.MethodGet, c.table+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	var body struct {
		Result []map[string]any `json:"result"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		return nil, sink.Retryable(sink.ReasonUnreachable, 0, fmt.Errorf("servicenow: lookup of %s: the answer is not a Table API result: %v", id, err))
	}
	total := len(body.Result)
	if h := resp.header.Get("X-Total-Count"); h != "" {
		if n, err := strconv.Atoi(h); err == nil {
			total = max(total, n)
		}
	}
	var out []incident
	for _, r := range body.Result {
		inc := flatten(r)
		if !strings.EqualFold(inc["correlation_id"], id) {
			return nil, sink.Permanent(sink.ReasonRejected, fmt.Errorf("servicenow: the lookup correlation_id=%s on table %s answered %s, whose correlation_id is %q: the instance ignored the query (a table without correlation_id, or no read access to it); nothing was written", id, c.cfg.Table, inc["number"], inc["correlation_id"]))
		}
		out = append(out, inc)
	}
	if total > maxMatches {
		return nil, sink.Permanent(sink.ReasonRejected, fmt.Errorf("servicenow: the lookup correlation_id=%s on table %s matches %d records: more than one alert's worth; check the table and that nothing else writes this correlation id", id, c.cfg.Table, total))
	}
	return out, nil
}

// flatten reads a result record: strings as they are, reference fields by their value.
func flatten(r map[string]any) incident {
	out := incident{}
	for k, v := range r {
		switch t := v.(type) {
		case string:
			out[k] = t
		case map[string]any:
			out[k], _ = t["value"].(string)
		case float64:
			out[k] = strconv.FormatFloat(t, 'f', -1, 64)
		case bool:
			out[k] = strconv.FormatBool(t)
		}
	}
	return out
}

// sync brings the incident of d in step with it.
func (c *Client) sync(ctx context.Context, d snformat.Document) error {
	unlock, err := c.locks.lock(ctx, strings.ToLower(d.CorrelationID))
	if err != nil {
		return sink.Retryable(sink.ReasonTimeout, 0, fmt.Errorf("servicenow: waiting for another export of %s: %w", d.CorrelationID, err))
	}
	defer unlock()
	found, err := c.find(ctx, d.CorrelationID)
	if err != nil {
		return err
	}
	if len(found) == 0 && d.OpenOnly && d.Status.Done() {
		c.log.Debug("no incident for a record that needs no work", "correlation_id", d.CorrelationID, "status", string(d.Status))
		return nil
	}
	if len(found) == 0 {
		created, err := c.create(ctx, d)
		if err != nil {
			return err
		}
		// Another instance may have created one at the same time: look again. A failure
		// here leaves the incident created; the next attempt finds it.
		if found, err = c.find(ctx, d.CorrelationID); err != nil {
			return err
		}
		if len(found) == 0 {
			return sink.Retryable(sink.ReasonUnreachable, 0, fmt.Errorf("servicenow: %s created for %s but not found by correlation_id yet", created["number"], d.CorrelationID))
		}
		if len(found) == 1 && found[0]["sys_id"] == created["sys_id"] {
			return nil
		}
	}
	winner := found[0]
	if len(found) > 1 {
		if err := c.heal(ctx, winner, found[1:]); err != nil {
			return err
		}
	}
	return c.update(ctx, d, winner)
}

func (c *Client) query() string {
	return "?sysparm_exclude_reference_link=true"
}

// nameColumns are the reference columns that may be configured by name: the table the
// reference points into and the column that holds the name.
var nameColumns = map[string][2]string{
	"assignment_group": {"sys_user_group", "name"},
	"caller_id":        {"sys_user", "user_name"},
}

// isSysID reports whether v is a sys_id rather than a name.
func isSysID(v string) bool {
	if len(v) != 32 {
		return false
	}
	for _, r := range v {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// resolveNames replaces group and user names in f by their sys_ids, looked up once per
// process. Sending names with sysparm_input_display_value would also make the instance read
// every choice field (state, impact) as a label, so the names are resolved here instead.
func (c *Client) resolveNames(ctx context.Context, f map[string]string) error {
	for col, ref := range nameColumns {
		name := f[col]
		if name == "" || isSysID(name) {
			continue
		}
		// The lock is held across the lookup so that concurrent creates wait for one
		// lookup instead of each making it.
		key := ref[0] + "\x00" + name
		c.namesMu.Lock()
		id, ok := c.names[key]
		if !ok {
			var err error
			if id, err = c.lookupName(ctx, ref[0], ref[1], name); err != nil {
				c.namesMu.Unlock()
				return err
			}
			c.names[key] = id
		}
		c.namesMu.Unlock()
		f[col] = id
	}
	return nil
}

func (c *Client) lookupName(ctx context.Context, table, column, name string) (string, error) {
	if !validValue(name) {
		return "", sink.Permanent(sink.ReasonRejected, fmt.Errorf("servicenow: %s %q holds characters an encoded query cannot carry; give its sys_id", table, name))
	}
	q := url.Values{}
	q.Set("sysparm_query", column+"="+name)
	q.Set("sysparm_fields", "sys_id,"+column)
	q.Set("sysparm_limit", "2")
	resp, err := c.do(ctx, http.MethodGet, c.base+"/api/now/v2/table/"+table+"?"+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("servicenow: looking up %s %q: %w", table, name, err)
	}
	var body struct {
		Result []map[string]any `json:"result"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		return "", sink.Retryable(sink.ReasonUnreachable, 0, fmt.Errorf("servicenow: looking up %s %q: the answer is not a Table API result", table, name))
	}
	var ids []string
	for _, r := range body.Result {
		rec := flatten(r)
		if strings.EqualFold(rec[column], name) && rec["sys_id"] != "" {
			ids = append(ids, rec["sys_id"])
		}
	}
	switch len(ids) {
	case 1:
		return ids[0], nil
	case 0:
		return "", sink.Permanent(sink.ReasonRejected, fmt.Errorf("servicenow: no %s has %s %q (or the account may not read %s): give an existing name or its sys_id", table, column, name, table))
	}
	return "", sink.Permanent(sink.ReasonRejected, fmt.Errorf("servicenow: several %s records have %s %q: give the sys_id", table, column, name))
}

// create posts a new incident for d.
func (c *Client) create(ctx context.Context, d snformat.Document) (incident, error) {
	f := map[string]string{}
	for _, m := range []map[string]string{d.Create, d.Fields, d.Priority} {
		for k, v := range m {
			f[k] = v
		}
	}
	f["correlation_id"] = d.CorrelationID
	switch {
	case d.Status.Done():
		f["state"] = c.cfg.ResolveState
		for k, v := range d.Close {
			f[k] = v
		}
	case d.Status == snformat.StatusInProgress:
		f["state"] = c.cfg.InProgressState
	default:
		f["state"] = c.cfg.NewState
	}
	if err := c.resolveNames(ctx, f); err != nil {
		return nil, err
	}
	f["work_notes"] = fmt.Sprintf("Created by the Defender for Cloud forwarder for %s %s (status %s).", d.Kind, d.CorrelationID, d.Status)
	resp, err := c.do(ctx, http.MethodPost, c.table+c.query(), f)
	if err != nil {
		return nil, err
	}
	var body struct {
		Result map[string]any `json:"result"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil || body.Result == nil {
		return nil, sink.Retryable(sink.ReasonUnreachable, 0, fmt.Errorf("servicenow: create for %s: HTTP %d without a result record", d.CorrelationID, resp.status))
	}
	inc := flatten(body.Result)
	if !strings.EqualFold(inc["correlation_id"], d.CorrelationID) {
		return nil, sink.Permanent(sink.ReasonRejected, fmt.Errorf("servicenow: %s was created on table %s but does not keep correlation_id (it reads %q): the table lacks the column or a business rule clears it, so the incident could never be found again", inc["number"], c.cfg.Table, inc["correlation_id"]))
	}
	c.log.Info("incident created", "correlation_id", d.CorrelationID, "number", inc["number"], "status", string(d.Status))
	return inc, nil
}

// heal resolves the newer incidents of one alert as duplicates of the oldest and clears
// their correlation_id, so that lookups find one incident again. Every instance that sees
// the duplicates picks the same winner, so two instances healing at once agree.
func (c *Client) heal(ctx context.Context, winner incident, dups []incident) error {
	for _, dup := range dups {
		note := fmt.Sprintf("Duplicate of %s for the same Defender for Cloud alert %s (two deliveries raced); this incident is no longer kept in step.", winner["number"], winner["correlation_id"])
		f := map[string]string{"correlation_id": "", "work_notes": note}
		if !slices.Contains(c.cfg.ClosedStates, dup["state"]) {
			f["state"] = c.cfg.ResolveState
			f["close_code"] = c.cfg.DuplicateCloseCode
			f["close_notes"] = note
		}
		if _, err := c.do(ctx, http.MethodPatch, c.table+"/"+url.PathEscape(dup["sys_id"])+c.query(), f); err != nil {
			return fmt.Errorf("servicenow: resolving duplicate %s of %s: %w", dup["number"], winner["number"], err)
		}
		c.log.Warn("duplicate incident resolved", "correlation_id", winner["correlation_id"], "number", dup["number"], "kept", winner["number"])
	}
	return nil
}

// norm is how two field values compare: the instance may store line ends and trailing
// spaces differently from how they were sent.
func norm(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " \t\r")
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// update patches inc with what d changes, and sends nothing when d changes nothing.
func (c *Client) update(ctx context.Context, d snformat.Document, inc incident) error {
	prevSev, prevStatus, known := snformat.ParseHeader(inc["description"])
	patch := map[string]string{}
	for k, v := range d.Fields {
		if norm(inc[k]) != norm(v) {
			patch[k] = v
		}
	}
	// Impact and urgency follow Defender's severity when it changes, and are otherwise the
	// SOC's to set.
	if !known || prevSev != d.Severity {
		for k, v := range d.Priority {
			if inc[k] != v {
				patch[k] = v
			}
		}
	}
	// State follows Defender's status only when that status changes (or the incident does
	// not say which status it last heard of): a snapshot must not undo what the SOC did.
	changed := !known || prevStatus != d.Status
	state := inc["state"]
	var note string
	if known && prevStatus != d.Status {
		note = fmt.Sprintf("Microsoft Defender for Cloud: status changed from %s to %s.", prevStatus, d.Status)
	}
	switch {
	case slices.Contains(c.cfg.ClosedStates, state):
		// Final: only admins may reopen; the description still follows the alert.
	case d.Status.Done():
		if changed && state != c.cfg.ResolveState {
			patch["state"] = c.cfg.ResolveState
			for k, v := range d.Close {
				patch[k] = v
			}
		}
	case known && prevStatus.Done() && state == c.cfg.ResolveState:
		if c.cfg.Reopen {
			patch["state"] = c.cfg.ReopenState
			note += " The incident is reopened."
		} else if note != "" {
			note += " The incident stays resolved (Reopen is off)."
		}
	case changed && d.Status == snformat.StatusInProgress && state == c.cfg.NewState:
		patch["state"] = c.cfg.InProgressState
	}
	if note != "" {
		patch["work_notes"] = note
	}
	if len(patch) == 0 {
		c.log.Debug("incident unchanged", "correlation_id", d.CorrelationID, "number", inc["number"])
		return nil
	}
	if _, err := c.do(ctx, http.MethodPatch, c.table+"/"+url.PathEscape(inc["sys_id"])+c.query(), patch); err != nil {
		return err
	}
	keys := make([]string, 0, len(patch))
	for k := range patch {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	c.log.Info("incident updated", "correlation_id", d.CorrelationID, "number", inc["number"], "fields", strings.Join(keys, ","), "state", patch["state"])
	return nil
}
