// Package watermark keeps, per Graph tenant, how far the Graph alert poll has read and which
// alert versions it has already delivered inside the overlap window, in one Table storage
// entity per tenant. Writes are conditional on the entity's ETag, and a write that loses a
// race merges with the winner instead of overwriting it, so two instances polling at once can
// never move a watermark backwards or forget a version the other delivered.
package watermark

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/defender-siem/forwarder/internal/deadletter"
)

// DefaultTable is the table watermarks live in unless Graph__WatermarkTable says otherwise.
const DefaultTable = "graphwatermarks"

// partitionKey is the one partition of the table: there are few tenants.
const partitionKey = "graph"

// seenChunk is how many characters of the seen list go into one entity property: a string
// property holds at most 64 KiB, that is 32K UTF-16 code units.
const seenChunk = 30000

// maxSeenProps bounds the seen list at 30 properties (900K characters), inside the entity's
// 1 MiB.
const maxSeenProps = 30

// Version is one version of one Graph alert: its id and lastUpdateDateTime as Graph wrote them.
type Version struct {
	ID         string `json:"i"`
	LastUpdate string `json:"u"`
}

// State is a tenant's poll position.
type State struct {
	// Mark is the newest lastUpdateDateTime of the alerts delivered (or dead-lettered) by the
	// last complete poll; the next poll asks for alerts updated at or after Mark − overlap.
	// Zero before the first complete poll.
	Mark time.Time
	// Seen are the versions delivered whose lastUpdateDateTime is inside the overlap window
	// before Mark, so that the next poll skips them.
	Seen []Version

	etag   azcore.ETag
	exists bool
}

// Has reports whether v was already delivered.
func (s *State) Has(v Version) bool {
	for _, x := range s.Seen {
		if x == v {
			return true
		}
	}
	return false
}

// Store reads and writes states.
type Store struct {
	client *aztables.Client
}

// Open connects to table in the storage account cfg names (the dead-letter account, from
// AzureWebJobsStorage by default) and creates the table when missing.
func Open(ctx context.Context, cfg deadletter.Config, table string) (*Store, error) {
	if err := deadletter.ValidateTableName(table); err != nil {
		return nil, fmt.Errorf("watermark: %w", err)
	}
	svc, err := cfg.ServiceClient()
	if err != nil {
		return nil, fmt.Errorf("watermark: %w", err)
	}
	s := &Store{client: svc.NewClient(table)}
	if _, err := s.client.CreateTable(ctx, nil); err != nil && !hasCode(err, aztables.TableAlreadyExists) {
		return nil, fmt.Errorf("watermark: creating table %s: %w", table, noQuery(err))
	}
	return s, nil
}

// noQuery hides a transport error's URL query, which holds a SAS signature.
func noQuery(err error) error { return deadletter.SDKError(err) }

func hasCode(err error, code aztables.TableErrorCode) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.ErrorCode == string(code)
}

func status(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// rowKey is the tenant's row: tenant names are settings names (letters, digits, '_', '-'),
// which are valid keys as they are.
func rowKey(tenant string) string { return "tenant-" + tenant }

type entity struct {
	PartitionKey string `json:"PartitionKey"`
	RowKey       string `json:"RowKey"`
	Mark         string `json:"Mark"`
	SeenParts    int    `json:"SeenParts"`
}

// Load returns tenant's state; a tenant never polled has a zero State.
func (s *Store) Load(ctx context.Context, tenant string) (State, error) {
	resp, err := s.client.GetEntity(ctx, partitionKey, rowKey(tenant), nil)
	if status(err) == http.StatusNotFound {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("watermark: reading tenant %s: %w", tenant, noQuery(err))
	}
	st, err := decode(resp.Value)
	if err != nil {
		return State{}, fmt.Errorf("watermark: tenant %s: %w", tenant, err)
	}
	st.etag, st.exists = resp.ETag, true
	return st, nil
}

func decode(b []byte) (State, error) {
	var e entity
	var all map[string]any
	if err := json.Unmarshal(b, &e); err != nil {
		return State{}, err
	}
	if err := json.Unmarshal(b, &all); err != nil {
		return State{}, err
	}
	var st State
	if e.Mark != "" {
		t, err := time.Parse(time.RFC3339Nano, e.Mark)
		if err != nil {
			return State{}, fmt.Errorf("stored Mark %q: %w", e.Mark, err)
		}
		st.Mark = t
	}
	var sb strings.Builder
	for i := 0; i < e.SeenParts; i++ {
		part, ok := all[fmt.Sprintf("Seen%02d", i)].(string)
		if !ok {
			return State{}, fmt.Errorf("stored seen list part %d missing", i)
		}
		sb.WriteString(part)
	}
	if sb.Len() > 0 {
		if err := json.Unmarshal([]byte(sb.String()), &st.Seen); err != nil {
			return State{}, fmt.Errorf("stored seen list: %w", err)
		}
	}
	return st, nil
}

func encode(tenant string, st State) ([]byte, error) {
	seen, err := json.Marshal(st.Seen)
	if err != nil {
		return nil, err
	}
	if len(st.Seen) == 0 {
		seen = nil
	}
	m := map[string]any{"PartitionKey": partitionKey, "RowKey": rowKey(tenant)}
	if !st.Mark.IsZero() {
		m["Mark"] = st.Mark.UTC().Format(time.RFC3339Nano)
	}
	text := string(seen) // ASCII-safe: json.Marshal escapes nothing here that widens
	n := 0
	for len(text) > 0 {
		if n == maxSeenProps {
			return nil, fmt.Errorf("watermark: %d alert versions inside the overlap window do not fit one entity; shorten Graph__Overlap", len(st.Seen))
		}
		cut := min(seenChunk, len(text))
		m[fmt.Sprintf("Seen%02d", n)] = text[:cut]
		text = text[cut:]
		n++
	}
	m["SeenParts"] = n
	return json.Marshal(m)
}

// ErrConflict is what Save returns when it cannot write after repeated races.
var ErrConflict = errors.New("watermark: the entity kept changing under this write")

// Save writes next as tenant's state over prev (what Load returned). When another writer got
// there first, it reads the winner, merges (the later mark, the union of the versions seen,
// trimmed to the overlap window before that mark) and tries again; a mark therefore never
// moves back. It returns the state written.
func (s *Store) Save(ctx context.Context, tenant string, prev, next State, overlap time.Duration) (State, error) {
	next.etag, next.exists = prev.etag, prev.exists
	for attempt := 0; attempt < 5; attempt++ {
		next.Seen = trim(next.Seen, next.Mark, overlap)
		b, err := encode(tenant, next)
		if err != nil {
			return State{}, err
		}
		if next.exists {
			etag := next.etag
			var resp aztables.UpdateEntityResponse
			resp, err = s.client.UpdateEntity(ctx, b, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
			if err == nil {
				next.etag = resp.ETag
				return next, nil
			}
		} else {
			var resp aztables.AddEntityResponse
			resp, err = s.client.AddEntity(ctx, b, nil)
			if err == nil {
				next.etag, next.exists = resp.ETag, true
				return next, nil
			}
		}
		if c := status(err); c != http.StatusPreconditionFailed && c != http.StatusConflict {
			return State{}, fmt.Errorf("watermark: writing tenant %s: %w", tenant, noQuery(err))
		}
		cur, lerr := s.Load(ctx, tenant)
		if lerr != nil {
			return State{}, lerr
		}
		next = Merge(cur, next)
		next.etag, next.exists = cur.etag, cur.exists
	}
	return State{}, ErrConflict
}

// Merge combines two states of one tenant: the later mark and every version either has seen.
func Merge(a, b State) State {
	out := State{Mark: a.Mark}
	if b.Mark.After(out.Mark) {
		out.Mark = b.Mark
	}
	seen := map[Version]bool{}
	for _, l := range [][]Version{a.Seen, b.Seen} {
		for _, v := range l {
			if !seen[v] {
				seen[v] = true
				out.Seen = append(out.Seen, v)
			}
		}
	}
	return out
}

// trim keeps the versions updated inside the overlap window before mark (or all, before the
// first mark), sorted so that the stored text is the same for the same set.
func trim(seen []Version, mark time.Time, overlap time.Duration) []Version {
	var out []Version
	floor := mark.Add(-overlap)
	for _, v := range seen {
		t, err := time.Parse(time.RFC3339Nano, v.LastUpdate)
		if mark.IsZero() || err != nil || !t.Before(floor) {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].LastUpdate != out[j].LastUpdate {
			return out[i].LastUpdate < out[j].LastUpdate
		}
		return out[i].ID < out[j].ID
	})
	return out
}
