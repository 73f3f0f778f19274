package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/defender-siem/forwarder/internal/secret"
	"github.com/defender-siem/forwarder/internal/sink"
)

// Transaction limits: one partition, at most 100 operations, at most 4 MiB of body. The body
// budget leaves room for the multipart framing around each operation.
const (
	maxBatchOps   = 100
	maxBatchBytes = 3 << 20
	batchOpFrame  = 1 << 10
	// mergeScanRows bounds the rows Put reads to find earlier copies of the letters it writes.
	mergeScanRows = 5000
)

// Store reads and writes dead letters in one table.
type Store struct {
	client *aztables.Client
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
}

// New connects to the table the configuration names and creates it when missing.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	svc, err := cfg.ServiceClient()
	if err != nil {
		return nil, err
	}
	s := &Store{client: svc.NewClient(cfg.Table), cfg: cfg, log: logger, now: time.Now}
	if _, err := s.client.CreateTable(ctx, nil); err != nil && !hasCode(err, aztables.TableAlreadyExists) {
		return nil, fmt.Errorf("deadletter: creating table %s at %s: %w", cfg.Table, shownURL(cfg.ServiceURL), sdkError(err))
	}
	logger.Debug("dead-letter store ready", "config", cfg.String())
	return s, nil
}

// ServiceClient builds a Table service client for the storage account cfg names, with cfg's
// retry settings and credential. The dead-letter store and the Graph watermarks share it, so
// that both read the account the same way.
func (cfg Config) ServiceClient() (*aztables.ServiceClient, error) {
	retries := int32(cfg.MaxRetries)
	if retries == 0 {
		retries = -1 // azcore reads 0 as "its default", not "none"
	}
	opts := &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{
			MaxRetries:    retries,
			TryTimeout:    cfg.TryTimeout,
			RetryDelay:    cfg.RetryDelay,
			MaxRetryDelay: cfg.MaxRetryDelay,
		},
		Telemetry: policy.TelemetryOptions{ApplicationID: "defender-siem-forwarder"},
	}}
	var (
		svc *aztables.ServiceClient
		err error
	)
	switch cfg.Auth {
	case AuthSharedKey:
		var cred *aztables.SharedKeyCredential
		cred, err = aztables.NewSharedKeyCredential(cfg.AccountName, cfg.AccountKey)
		if err != nil {
			// The SDK's message may quote the key; say only what is wrong.
			return nil, fmt.Errorf("deadletter: %s: the AccountKey is not valid base64", cfg.ConnectionName)
		}
		svc, err = aztables.NewServiceClientWithSharedKey(cfg.ServiceURL, cred, opts)
	case AuthSAS:
		svc, err = aztables.NewServiceClientWithNoCredential(cfg.ServiceURL+"/?"+cfg.SAS, opts)
	case AuthManagedIdentity:
		var mio azidentity.ManagedIdentityCredentialOptions
		if cfg.ClientID != "" {
			mio.ID = azidentity.ClientID(cfg.ClientID)
		}
		var cred azcore.TokenCredential
		cred, err = azidentity.NewManagedIdentityCredential(&mio)
		if err == nil {
			svc, err = aztables.NewServiceClient(cfg.ServiceURL, cred, opts)
		}
	case AuthDefault:
		var cred azcore.TokenCredential
		cred, err = azidentity.NewDefaultAzureCredential(nil)
		if err == nil {
			svc, err = aztables.NewServiceClient(cfg.ServiceURL, cred, opts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("deadletter: client for %s: %w", shownURL(cfg.ServiceURL), sdkError(err))
	}
	return svc, nil
}

// SDKError hides request URLs' query strings (a SAS signature) in a Table storage error.
func SDKError(err error) error { return sdkError(err) }

// Config returns the store's configuration (print it with String, which redacts secrets).
func (s *Store) Config() Config { return s.cfg }

// sdkError hides request URLs' query strings in transport errors: net/http quotes the whole
// URL, and with a SAS connection the query holds the signature. azcore's ResponseError
// already prints URLs without their query. The original error stays reachable with errors.As.
func sdkError(err error) error {
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) || !strings.Contains(ue.URL, "?") {
		return err
	}
	return &secret.Error{Msg: strings.ReplaceAll(err.Error(), ue.URL, shownURL(ue.URL)), Cause: err}
}

func hasCode(err error, code aztables.TableErrorCode) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.ErrorCode == string(code)
}

func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// checkDestination validates a destination as a PartitionKey.
func checkDestination(d string) error {
	if err := checkKey(d); err != nil {
		return fmt.Errorf("%w: destination %q: %v", ErrInvalidLetter, truncate(d, 80), err)
	}
	return nil
}

// checkID validates a caller-chosen id; it must leave room for the continuation suffix.
func checkID(id string) error {
	if err := checkKey(id); err != nil {
		return fmt.Errorf("%w: id %q: %v", ErrInvalidLetter, truncate(id, 80), err)
	}
	if strings.Contains(id, partSeparator) {
		return fmt.Errorf("%w: id %q must not contain %q", ErrInvalidLetter, truncate(id, 80), partSeparator)
	}
	if utf16Len(id)+len(partSeparator)+3 > maxKeyUnits {
		return fmt.Errorf("%w: id is longer than %d characters", ErrInvalidLetter, maxKeyUnits-4)
	}
	return nil
}

// Put stores letters, each as one logical letter (its main entity and any continuations),
// replacing a letter with the same destination and id. An empty ID is filled from the
// coordinates (see RowKey) in the caller's slice, so the caller learns the ids.
//
// When a letter with the same destination and id is already stored (the host retried the
// batch), the stored FirstFailure is kept when earlier and the stored Attempts are added to the
// new ones: Put counts attempts, Update sets them. Finding those earlier copies costs one range
// query per destination.
//
// Any error means some letters may not be stored; the caller must treat the whole call as failed.
func (s *Store) Put(ctx context.Context, letters []Letter) error {
	if len(letters) == 0 {
		return nil
	}
	byDest := map[string][]*Letter{}
	seen := map[[2]string]int{}
	for i := range letters {
		l := &letters[i]
		if err := checkDestination(l.Destination); err != nil {
			return err
		}
		if l.ID == "" {
			l.ID = RowKey(l.Coordinates)
		}
		if err := checkID(l.ID); err != nil {
			return err
		}
		k := [2]string{l.Destination, l.ID}
		if j, dup := seen[k]; dup {
			// One row key may appear once in a transaction: the later copy wins, as it would
			// have had the two been written one after the other.
			byDest[l.Destination][j] = l
			continue
		}
		seen[k] = len(byDest[l.Destination])
		byDest[l.Destination] = append(byDest[l.Destination], l)
	}
	dests := make([]string, 0, len(byDest))
	for d := range byDest {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		if err := s.putPartition(ctx, d, byDest[d]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) putPartition(ctx context.Context, dest string, letters []*Letter) error {
	prev, err := s.previous(ctx, dest, letters)
	if err != nil {
		return err
	}
	var mains []entity
	for _, l := range letters {
		w := *l
		if p, ok := prev[l.ID]; ok {
			w.Attempts += p.Attempts
			if !p.FirstFailure.IsZero() && (w.FirstFailure.IsZero() || p.FirstFailure.Before(w.FirstFailure)) {
				w.FirstFailure = p.FirstFailure
			}
		}
		ents, err := encodeLetter(&w, s.cfg.MaxErrorLen)
		if err != nil {
			return err
		}
		// Continuations go first: a main entity is only ever visible with its chunks stored.
		for i := 1; i < len(ents); i++ {
			if err := s.upsert(ctx, &ents[i]); err != nil {
				return err
			}
		}
		mains = append(mains, ents[0])
	}
	// The marks go first, in the first transaction with the letters (see markPrefix).
	marks := markEntities(dest, marksOf(dest, letters))
	if err := s.writeBatches(ctx, append(marks, mains...), aztables.TransactionTypeInsertReplace); err != nil {
		return err
	}
	if len(marks) == 0 {
		return nil
	}
	// Touched again now that every letter is stored: a Forget that read a mark before them
	// can no longer delete it.
	if err := s.writeBatches(ctx, marks, aztables.TransactionTypeInsertReplace); err != nil {
		return fmt.Errorf("deadletter: marking partitions of %s: %w", dest, err)
	}
	return nil
}

// previous finds stored copies of letters among one destination's letters, reading only their
// attempts and first failure, with one range query over the ids.
func (s *Store) previous(ctx context.Context, dest string, letters []*Letter) (map[string]Letter, error) {
	lo, hi := letters[0].ID, letters[0].ID
	want := make(map[string]bool, len(letters))
	for _, l := range letters {
		lo, hi = min(lo, l.ID), max(hi, l.ID)
		want[l.ID] = true
	}
	filter := fmt.Sprintf("PartitionKey eq %s and RowKey ge %s and RowKey le %s and %s eq 0",
		odataString(dest), odataString(lo), odataString(hi), propPart)
	sel := strings.Join([]string{"RowKey", propAttempts, propFirstFailure}, ",")
	pager := s.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	found := map[string]Letter{}
	rows := 0
	for pager.More() && len(found) < len(want) && rows < mergeScanRows {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("deadletter: reading earlier letters of %s: %w", dest, sdkError(err))
		}
		for _, raw := range page.Entities {
			rows++
			var e stored
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, fmt.Errorf("deadletter: reading earlier letters of %s: %w", dest, err)
			}
			if rk := e.str("RowKey"); want[rk] {
				n, _ := e.int(propAttempts)
				found[rk] = Letter{Attempts: int(n), FirstFailure: e.time(propFirstFailure)}
			}
		}
	}
	return found, nil
}

func (s *Store) upsert(ctx context.Context, e *entity) error {
	_, err := s.client.UpsertEntity(ctx, e.marshal(), &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
	if err != nil {
		return fmt.Errorf("deadletter: writing %s/%s: %w", e.pk, e.rk, sdkError(err))
	}
	return nil
}

// writeBatches applies one action to entities of one partition in transactions that respect the
// operation and size limits; a lone entity is written without the batch framing.
func (s *Store) writeBatches(ctx context.Context, ents []entity, action aztables.TransactionType) error {
	for len(ents) > 0 {
		var (
			actions []aztables.TransactionAction
			bytes   int
		)
		n := 0
		for ; n < len(ents) && n < maxBatchOps; n++ {
			body := ents[n].marshal()
			if n > 0 && bytes+len(body)+batchOpFrame > maxBatchBytes {
				break
			}
			bytes += len(body) + batchOpFrame
			actions = append(actions, aztables.TransactionAction{ActionType: action, Entity: body})
		}
		var err error
		if n == 1 && action == aztables.TransactionTypeInsertReplace {
			_, err = s.client.UpsertEntity(ctx, actions[0].Entity, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
		} else if n == 1 && action == aztables.TransactionTypeDelete {
			_, err = s.client.DeleteEntity(ctx, ents[0].pk, ents[0].rk, nil)
			if isNotFound(err) {
				err = nil
			}
		} else {
			_, err = s.client.SubmitTransaction(ctx, actions, nil)
		}
		if err != nil {
			return fmt.Errorf("deadletter: writing %d entities of %s: %w", n, ents[0].pk, sdkError(err))
		}
		ents = ents[n:]
	}
	return nil
}

// odataString quotes s as an OData string literal.
func odataString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func odataTime(t time.Time) string {
	return "datetime'" + t.UTC().Format("2006-01-02T15:04:05.0000000Z") + "'"
}

// Get reads a letter back whole. The payload is verified against the stored size and SHA-256;
// a letter that fails the check, or misses a chunk or continuation, returns an error wrapping
// ErrCorrupt. A missing letter returns an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, destination, id string) (Letter, error) {
	main, err := s.getEntity(ctx, destination, id)
	if err != nil {
		return Letter{}, err
	}
	return assemble(main, destination, id, func(p int) (stored, error) {
		return s.getEntity(ctx, destination, partKey(id, p))
	})
}

// assemble rebuilds and verifies a letter from its main entity, fetching continuations with
// part.
func assemble(main stored, destination, id string, part func(n int) (stored, error)) (Letter, error) {
	l := main.summary()
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s/%s: %s", ErrCorrupt, destination, id, fmt.Sprintf(format, args...))
	}
	storedSize, ok1 := main.int(propStoredSize)
	chunks, ok2 := main.int(propChunks)
	parts, ok3 := main.int(propParts)
	if !ok1 || !ok2 || !ok3 || storedSize < 0 || l.PayloadSize < 0 || parts < 0 || chunks < 0 {
		return Letter{}, corrupt("size properties missing")
	}
	if storedSize > chunks*chunkBytes || parts > chunks || l.PayloadSize > maxPayloadBytes || storedSize > maxPayloadBytes+maxPayloadBytes/8 {
		return Letter{}, corrupt("stored size %d does not fit %d chunks in %d continuations", storedSize, chunks, parts)
	}
	buf := make([]byte, 0, storedSize)
	mainChunks := chunks
	if parts > 0 {
		mainChunks = countChunks(main)
	}
	var err error
	if buf, err = main.chunks(buf, mainChunks); err != nil {
		return Letter{}, corrupt("%v", err)
	}
	got := mainChunks
	for p := 1; p <= int(parts); p++ {
		e, err := part(p)
		if errors.Is(err, ErrNotFound) {
			return Letter{}, corrupt("continuation %d missing", p)
		}
		if err != nil {
			return Letter{}, err
		}
		n, ok := e.int(propChunks)
		if !ok || n < 0 || got+n > chunks {
			return Letter{}, corrupt("continuation %d has a bad chunk count", p)
		}
		if buf, err = e.chunks(buf, n); err != nil {
			return Letter{}, corrupt("continuation %d: %v", p, err)
		}
		got += n
	}
	if got != chunks || int64(len(buf)) != storedSize {
		return Letter{}, corrupt("read %d chunks, %d bytes; want %d chunks, %d bytes", got, len(buf), chunks, storedSize)
	}
	payload, err := decodePayload(buf, main.str(propEncoding), l.PayloadSize)
	if err != nil {
		return Letter{}, corrupt("%v", err)
	}
	if int64(len(payload)) != l.PayloadSize {
		return Letter{}, corrupt("payload is %d bytes, want %d", len(payload), l.PayloadSize)
	}
	if sum := sha256Hex(payload); sum != l.PayloadSHA256 {
		return Letter{}, corrupt("payload SHA-256 mismatch")
	}
	l.Payload = payload
	return l, nil
}

// countChunks counts the consecutive chunk properties an entity holds, for a main entity whose
// chunk total spans continuations.
func countChunks(e stored) int64 {
	n := int64(0)
	for {
		if _, ok := e[chunkName(int(n))]; !ok {
			return n
		}
		n++
	}
}

func (s *Store) getEntity(ctx context.Context, pk, rk string) (stored, error) {
	resp, err := s.client.GetEntity(ctx, pk, rk, nil)
	if isNotFound(err) {
		return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, pk, rk)
	}
	if err != nil {
		return nil, fmt.Errorf("deadletter: reading %s/%s: %w", pk, rk, sdkError(err))
	}
	var e stored
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return nil, fmt.Errorf("%w: %s/%s: %v", ErrCorrupt, pk, rk, err)
	}
	return e, nil
}

// ListOptions selects letters.
type ListOptions struct {
	// Destination limits the result to one destination; empty means every destination.
	Destination string
	// Since keeps letters whose record was enqueued at or after this time; zero means all.
	// Letters without an enqueued time are left out when Since is set.
	Since time.Time
	// IncludeParked adds parked letters, which are left out by default.
	IncludeParked bool
	// Limit caps how many letters are returned; 0 means no cap.
	Limit int
}

func (o ListOptions) filter() string {
	parts := []string{propPart + " eq 0"}
	if o.Destination != "" {
		parts = append(parts, "PartitionKey eq "+odataString(o.Destination))
	}
	if !o.Since.IsZero() {
		parts = append(parts, propEnqueued+" ge "+odataTime(o.Since))
	}
	if !o.IncludeParked {
		parts = append(parts, propParked+" eq false")
	}
	return strings.Join(parts, " and ")
}

// List returns letter summaries (everything but the payload), ordered by destination and then
// by id, which is oldest first for derived ids. Continuations are never returned.
func (s *Store) List(ctx context.Context, opts ListOptions) ([]Letter, error) {
	var out []Letter
	err := s.scan(ctx, opts.filter(), summaryProps, func(e stored) bool {
		out = append(out, e.summary())
		return opts.Limit <= 0 || len(out) < opts.Limit
	})
	return out, err
}

// scan runs a query and calls fn for every main entity until fn returns false.
func (s *Store) scan(ctx context.Context, filter string, props []string, fn func(stored) bool) error {
	sel := strings.Join(props, ",")
	pager := s.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("deadletter: querying %s: %w", s.cfg.Table, sdkError(err))
		}
		for _, raw := range page.Entities {
			var e stored
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("deadletter: querying %s: %w", s.cfg.Table, err)
			}
			if isContinuation(e.str("RowKey")) {
				continue
			}
			if !fn(e) {
				return nil
			}
		}
	}
	return nil
}

// Count is how many letters share a destination and reason.
type Count struct {
	// Active letters are still replayed; Parked ones wait for an operator.
	Active, Parked int
}

// Counts returns the number of letters per destination and reason. It reads every letter's
// summary columns, so it costs one scan of the table's main entities.
func (s *Store) Counts(ctx context.Context) (map[string]map[sink.Reason]Count, error) {
	out := map[string]map[sink.Reason]Count{}
	err := s.scan(ctx, propPart+" eq 0", []string{"PartitionKey", "RowKey", propReason, propParked}, func(e stored) bool {
		d := e.str("PartitionKey")
		if out[d] == nil {
			out[d] = map[sink.Reason]Count{}
		}
		r := sink.Reason(e.str(propReason))
		c := out[d][r]
		if e.bool(propParked) {
			c.Parked++
		} else {
			c.Active++
		}
		out[d][r] = c
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete removes a letter and its continuations in one transaction. Deleting a letter that is
// not there is not an error.
func (s *Store) Delete(ctx context.Context, destination, id string) error {
	if err := checkDestination(destination); err != nil {
		return err
	}
	// The range covers the main entity and every `<id>~NNN`, including strays a rewrite with a
	// smaller payload may have left.
	ents, err := s.rowsInRange(ctx, destination, id, id, func(rk string) bool {
		return rk == id || strings.HasPrefix(rk, id+partSeparator)
	}, fmt.Sprintf("deleting %s/%s", destination, id))
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	// The main entity sorts first, so when a letter needs more than one transaction the
	// letter disappears from List before its continuations go.
	return s.writeBatches(ctx, ents, aztables.TransactionTypeDelete)
}

// Update records a new delivery outcome on a stored letter without rewriting its payload: it
// sets Reason, Error, Attempts, LastFailure and Parked (and FirstFailure when set). It returns
// an error wrapping ErrNotFound when the letter is gone.
func (s *Store) Update(ctx context.Context, l Letter) error {
	if err := checkDestination(l.Destination); err != nil {
		return err
	}
	if err := checkID(l.ID); err != nil {
		return err
	}
	props := []property{
		{name: propReason, kind: kString, str: truncate(string(l.Reason), maxShortString)},
		{name: propError, kind: kString, str: truncate(l.Error, s.cfg.MaxErrorLen)},
		{name: propAttempts, kind: kInt32, num: int64(clampInt32(l.Attempts))},
		{name: propParked, kind: kBool, flag: l.Parked},
	}
	if storedTime(l.FirstFailure) {
		props = append(props, property{name: propFirstFailure, kind: kTime, when: l.FirstFailure})
	}
	if storedTime(l.LastFailure) {
		props = append(props, property{name: propLastFailure, kind: kTime, when: l.LastFailure})
	}
	e := entity{pk: l.Destination, rk: l.ID, props: props}
	etag := azcore.ETagAny
	_, err := s.client.UpdateEntity(ctx, e.marshal(), &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeMerge})
	if isNotFound(err) {
		return fmt.Errorf("%w: %s/%s", ErrNotFound, l.Destination, l.ID)
	}
	if err != nil {
		return fmt.Errorf("deadletter: updating %s/%s: %w", l.Destination, l.ID, sdkError(err))
	}
	return nil
}

// Purge deletes every letter List would return for opts (Limit caps how many) and reports how
// many it deleted.
func (s *Store) Purge(ctx context.Context, opts ListOptions) (int, error) {
	letters, err := s.List(ctx, opts)
	if err != nil {
		return 0, err
	}
	for i, l := range letters {
		if err := s.Delete(ctx, l.Destination, l.ID); err != nil {
			return i, err
		}
	}
	if len(letters) > 0 {
		s.log.Info("purged dead letters", "count", len(letters), "destination", opts.Destination)
	}
	return len(letters), nil
}

// Forget deletes the letters with these ids (and their continuations) from destination's
// partition, if there are any: the records they hold have just been delivered. Ids are
// grouped by the Event Hub partition their letters would carry; a partition without a mark
// (see markPrefix) holds no letters, which costs one point read to learn, so the normal
// path (nothing stored) is cheap. Where a mark is, one range query over the ids' span finds
// and deletes the letters, and the mark goes when none of that partition are left. Ids that
// are not stored are ignored.
func (s *Store) Forget(ctx context.Context, destination string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := checkDestination(destination); err != nil {
		return err
	}
	marked, search := forgetPlan(ids)
	keys := make([]string, 0, len(marked))
	for rk := range marked {
		keys = append(keys, rk)
	}
	sort.Strings(keys)
	var found []mark
	for _, rk := range keys {
		m, ok, err := s.readMark(ctx, destination, rk)
		if err != nil {
			return err
		}
		if ok {
			found = append(found, m)
			search = append(search, marked[rk]...)
		}
	}
	if err := s.forgetRange(ctx, destination, search); err != nil {
		return err
	}
	for _, m := range found {
		if _, err := s.settle(ctx, destination, m); err != nil {
			return err
		}
	}
	return nil
}

// forgetRange deletes the letters with these ids with one range query over their span.
func (s *Store) forgetRange(ctx context.Context, destination string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	lo, hi := ids[0], ids[0]
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		lo, hi = min(lo, id), max(hi, id)
		want[id] = true
	}
	ents, err := s.rowsInRange(ctx, destination, lo, hi, func(rk string) bool {
		main, _, _ := strings.Cut(rk, partSeparator)
		return want[main]
	}, "finding delivered letters of "+destination)
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	// Main entities sort before their continuations, so a letter leaves List first.
	if err := s.writeBatches(ctx, ents, aztables.TransactionTypeDelete); err != nil {
		return err
	}
	s.log.Info("cleared dead letters whose records were delivered on a later attempt", "destination", destination, "entities", len(ents))
	return nil
}

// rowsInRange lists the entities of destination whose row keys run from lo to the last
// continuation of hi and that keep accepts, keys only, to delete them. what says in errors
// what the listing was for.
func (s *Store) rowsInRange(ctx context.Context, destination, lo, hi string, keep func(rk string) bool, what string) ([]entity, error) {
	filter := fmt.Sprintf("PartitionKey eq %s and RowKey ge %s and RowKey le %s",
		odataString(destination), odataString(lo), odataString(hi+partSeparator+partSeparator))
	sel := "PartitionKey,RowKey"
	pager := s.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	var ents []entity
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("deadletter: %s: %w", what, sdkError(err))
		}
		for _, raw := range page.Entities {
			var e stored
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, fmt.Errorf("deadletter: %s: %w", what, err)
			}
			if rk := e.str("RowKey"); keep(rk) {
				ents = append(ents, entity{pk: destination, rk: rk})
			}
		}
	}
	return ents, nil
}
