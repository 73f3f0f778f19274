package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Marks say where letters may be: one entity per destination and Event Hub partition that may
// hold letters, in the destination's own partition with RowKey markPrefix+<partition>, which
// no letter id can take (ids never hold '~', and continuations put it after the id). A record
// that the host delivers again and that now reaches its destination must lose its earlier
// letter, or a replay sends it a second time; a redelivery after an instance failure carries
// no retry context, so the pipeline cannot know that the batch was seen before and clears on
// every delivery. Without marks that would be a range query per destination in every
// invocation; with them the normal path (no letters) is one point read that finds nothing.
//
// Put writes a (destination, partition)'s mark in the same transaction as the first of its
// letters, so that no letter is ever stored without its mark even when Put is cut short, and
// touches it again after the last. Forget looks for letters only where a mark is, and deletes
// the mark when no letter of that partition is left, on the condition that nobody wrote it
// since Forget read it: a Put that stores letters in the meantime touches the mark after
// storing them, so either the delete fails or the check for remaining letters sees them.
// Marks carry Part -1, which keeps them out of every query for letters (those ask for Part 0).
const markPrefix = "~partition:"

// markKey returns the RowKey of the mark for a letter id: markPrefix and the id's Event Hub
// partition, as RowKey wrote it. It returns false when id is not one RowKey derives from
// coordinates (an id the caller chose); such letters carry no mark, and Forget always looks
// for them.
func markKey(id string) (string, bool) {
	seg, ok := partitionOf(id)
	if !ok {
		return "", false
	}
	rk := markPrefix + seg
	if checkKey(rk) != nil {
		return "", false
	}
	return rk, true
}

// isMark reports whether a RowKey is a mark's.
func isMark(rk string) bool { return strings.HasPrefix(rk, markPrefix) }

// partitionOf returns the partition segment of an id RowKey derived:
// <enqueued time, 24>-<partition>-<sequence, 20 digits>-<index, 6 digits>.
func partitionOf(id string) (string, bool) {
	const timeLen, tailLen = 24, 1 + 20 + 1 + 6
	n := len(id)
	if n < timeLen+1+tailLen || id[8] != 'T' || id[timeLen-1] != 'Z' || id[timeLen] != '-' ||
		id[n-tailLen] != '-' || id[n-7] != '-' || !digits(id[:8]) || !digits(id[n-tailLen+1:n-7]) || !digits(id[n-6:]) {
		return "", false
	}
	return id[timeLen+1 : n-tailLen], true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// marksOf returns the marks a destination's letters need, by RowKey, each with the Event Hub
// partition as the letters store it.
func marksOf(dest string, letters []*Letter) map[string]string {
	if dest == UndecodablePartition {
		// Undecodable messages are never delivered, so nothing ever forgets them.
		return nil
	}
	marks := map[string]string{}
	for _, l := range letters {
		if rk, ok := markKey(l.ID); ok {
			marks[rk] = truncate(l.Coordinates.Partition, maxShortString)
		}
	}
	return marks
}

// markEntities returns dest's marks as entities, in RowKey order.
func markEntities(dest string, marks map[string]string) []entity {
	keys := make([]string, 0, len(marks))
	for rk := range marks {
		keys = append(keys, rk)
	}
	sort.Strings(keys)
	ents := make([]entity, 0, len(keys))
	for _, rk := range keys {
		ents = append(ents, entity{pk: dest, rk: rk, props: []property{
			{name: propPart, kind: kInt32, num: -1},
			{name: propEHPartition, kind: kString, str: marks[rk]},
		}})
	}
	return ents
}

// mark is a mark as read, with the version Forget may delete.
type mark struct {
	rk        string
	partition string
	etag      azcore.ETag
}

// readMark reads one of dest's marks; found is false when there is none.
func (s *Store) readMark(ctx context.Context, dest, rk string) (m mark, found bool, err error) {
	resp, err := s.client.GetEntity(ctx, dest, rk, nil)
	if isNotFound(err) {
		return mark{}, false, nil
	}
	if err != nil {
		return mark{}, false, fmt.Errorf("deadletter: reading mark %s/%s: %w", dest, rk, sdkError(err))
	}
	var e stored
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return mark{}, false, fmt.Errorf("deadletter: reading mark %s/%s: %w", dest, rk, err)
	}
	return mark{rk: rk, partition: e.str(propEHPartition), etag: resp.ETag}, true, nil
}

// settle deletes m when dest holds no letter of its partition any more, unless someone wrote
// it after it was read. It reports whether it deleted the mark.
func (s *Store) settle(ctx context.Context, dest string, m mark) (bool, error) {
	if m.partition == "" {
		// Letters without a partition cannot be told apart by it: keep the mark.
		return false, nil
	}
	filter := fmt.Sprintf("PartitionKey eq %s and %s eq 0 and %s eq %s",
		odataString(dest), propPart, propEHPartition, odataString(m.partition))
	sel := "RowKey"
	top := int32(1)
	pager := s.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel, Top: &top})
	// A filtered query may answer with an empty page and a continuation: follow it until a
	// letter shows or the query ends.
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return false, fmt.Errorf("deadletter: looking for letters of %s left in partition %s: %w", dest, m.partition, sdkError(err))
		}
		if len(page.Entities) > 0 {
			return false, nil
		}
	}
	etag := m.etag
	_, err := s.client.DeleteEntity(ctx, dest, m.rk, &aztables.DeleteEntityOptions{IfMatch: &etag})
	var re *azcore.ResponseError
	if isNotFound(err) || (errors.As(err, &re) && re.StatusCode == http.StatusPreconditionFailed) {
		// Gone already, or rewritten by a Put that stored letters since: keep what is there.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("deadletter: clearing mark %s/%s: %w", dest, m.rk, sdkError(err))
	}
	s.log.Debug("no dead letters left for this Event Hub partition", "destination", dest, "partition", m.partition)
	return true, nil
}

// forgetPlan splits ids by mark: marked maps each mark's RowKey to its ids; unmarked are ids
// without a mark key, which Forget always looks for.
func forgetPlan(ids []string) (marked map[string][]string, unmarked []string) {
	marked = map[string][]string{}
	for _, id := range ids {
		if rk, ok := markKey(id); ok {
			marked[rk] = append(marked[rk], id)
			continue
		}
		unmarked = append(unmarked, id)
	}
	return marked, unmarked
}
