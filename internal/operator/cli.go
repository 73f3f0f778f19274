package operator

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/sink"
)

// Usage is the help of `handler deadletters`.
const Usage = `usage: handler deadletters <command> [flags]

Commands (the same settings as the function app: AzureWebJobsStorage or DeadLetter__Connection,
DeadLetter__Table, and the Destinations__… of the destinations to replay to):
  list    [-destination NAME] [-since TIME] [-parked] [-limit N]   counts per destination and reason, then letters
  show    DESTINATION ID                                           one letter with its record (JSON)
  replay  [-destination NAME] [-id ID] [-since TIME] [-parked] [-limit N]
  purge   [-destination NAME] [-since TIME] [-parked] -confirm TEXT  delete for good; TEXT repeats the
          destination name, or says "all destinations"
`

// Command is a parsed `handler deadletters` command line.
type Command struct {
	// Name is list, show, replay or purge.
	Name    string
	Request Request
	// Destination and ID are show's arguments.
	Destination, ID string
}

// NeedsDestinations reports whether the command sends anything, and so needs the
// destinations' settings to be valid; the others need only the store.
func (c Command) NeedsDestinations() bool { return c.Name == "replay" }

// ParseCommand parses the arguments after "deadletters". When it returns ok false, it has
// written what was wrong (or the help that was asked for) and code is the exit code.
func ParseCommand(args []string, stdout, stderr io.Writer) (c Command, code int, ok bool) {
	if len(args) == 0 {
		fmt.Fprint(stderr, Usage)
		return c, 2, false
	}
	c.Name = args[0]
	rest := args[1:]
	switch c.Name {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, Usage)
		return c, 0, false
	case "show":
		if len(rest) != 2 {
			fmt.Fprint(stderr, Usage)
			return c, 2, false
		}
		c.Destination, c.ID = rest[0], rest[1]
		return c, 0, true
	case "list", "replay", "purge":
	default:
		fmt.Fprint(stderr, Usage)
		return c, 2, false
	}
	fs := flag.NewFlagSet("deadletters "+c.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	q := &c.Request
	fs.StringVar(&q.Destination, "destination", "", "only this destination")
	fs.StringVar(&q.Since, "since", "", "only records enqueued at or after this RFC 3339 time")
	fs.BoolVar(&q.IncludeParked, "parked", false, "include parked letters")
	fs.IntVar(&q.Limit, "limit", 0, "at most this many letters (per destination for replay)")
	if c.Name == "replay" {
		fs.StringVar(&q.ID, "id", "", "only this letter (needs -destination)")
	}
	if c.Name == "purge" {
		fs.StringVar(&q.Confirm, "confirm", "", "repeat the destination name, or \"all destinations\"")
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, 0, false
		}
		return c, 2, false
	}
	return c, 0, true
}

// Run carries out c: the answer goes to stdout, problems to stderr. It returns the exit code:
// 0 done, 1 the store or a delivery failed, 2 the command was wrong.
func Run(ctx context.Context, op *Operator, c Command, stdout, stderr io.Writer) int {
	out := json.NewEncoder(stdout)
	out.SetIndent("", "  ")
	fail := func(err error) int {
		var up *UnconfirmedPurgeError
		if errors.As(err, &up) {
			fmt.Fprintf(stderr, "a purge deletes dead letters for good: repeat -confirm %q\n", up.Want)
		} else {
			fmt.Fprintln(stderr, err)
		}
		if IsBadRequest(err) {
			return 2
		}
		return 1
	}
	switch c.Name {
	case "list":
		if _, err := c.Request.ListOptions(); err != nil {
			return fail(err)
		}
		counts, err := op.Counts(ctx)
		if err != nil {
			return fail(err)
		}
		writeCounts(stdout, counts)
		ls, err := op.List(ctx, c.Request)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout)
		writeLetters(stdout, ls)
		return 0
	case "show":
		l, err := op.Show(ctx, c.Destination, c.ID)
		if err != nil {
			return fail(err)
		}
		_ = out.Encode(View(l, true))
		return 0
	case "replay":
		if _, err := c.Request.ListOptions(); err != nil {
			return fail(err)
		}
		if c.Request.ID != "" && c.Request.Destination == "" {
			fmt.Fprintln(stderr, "-id needs -destination")
			return 2
		}
		res, err := op.Replay(ctx, c.Request)
		_ = out.Encode(res)
		if err != nil {
			return fail(err)
		}
		if res.Failed > 0 {
			return 1
		}
		return 0
	case "purge":
		if _, err := c.Request.ListOptions(); err != nil {
			return fail(err)
		}
		n, err := op.Purge(ctx, c.Request)
		var up *UnconfirmedPurgeError
		if errors.As(err, &up) {
			return fail(err)
		}
		_ = out.Encode(map[string]int{"purged": n})
		if err != nil {
			return fail(err)
		}
		return 0
	}
	fmt.Fprint(stderr, Usage)
	return 2
}

// writeCounts writes the counts table, destinations and reasons sorted.
func writeCounts(w io.Writer, counts CountsView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tREASON\tACTIVE\tPARKED")
	var dests []string
	for d := range counts.Destinations {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		var reasons []string
		for r := range counts.Destinations[d] {
			reasons = append(reasons, string(r))
		}
		sort.Strings(reasons)
		for _, r := range reasons {
			c := counts.Destinations[d][sink.Reason(r)]
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", d, r, c.Active, c.Parked)
		}
	}
	_ = tw.Flush()
}

// writeLetters writes one line per letter, in the order given.
func writeLetters(w io.Writer, ls []deadletter.Letter) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tID\tKIND\tREASON\tATTEMPTS\tPARKED\tLAST FAILURE\tALERT")
	for _, l := range ls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%v\t%s\t%s\n", l.Destination, l.ID, l.Kind, l.Reason, l.Attempts, l.Parked, l.LastFailure.Format(time.RFC3339), l.AlertID)
	}
	_ = tw.Flush()
}
