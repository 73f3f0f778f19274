package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/defender-siem/forwarder/internal/config"
	"github.com/defender-siem/forwarder/internal/replay"
	"github.com/defender-siem/forwarder/internal/server"
	"github.com/defender-siem/forwarder/internal/sink"
)

const deadlettersUsage = `usage: handler deadletters <command> [flags]

Commands (the same settings as the function app: AzureWebJobsStorage or DeadLetter__Connection,
DeadLetter__Table, and the Destinations__… of the destinations to replay to):
  list    [-destination NAME] [-since TIME] [-parked] [-limit N]   counts per destination and reason, then letters
  show    DESTINATION ID                                           one letter with its record (JSON)
  replay  [-destination NAME] [-id ID] [-since TIME] [-parked] [-limit N]
  purge   [-destination NAME] [-since TIME] [-parked] -confirm TEXT  delete for good; TEXT repeats the
          destination name, or says "all destinations"
`

// deadletters is the operator's command line, run next to Azure Storage Explorer with the app's
// settings in the environment.
func deadletters(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, deadlettersUsage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("deadletters "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var q server.ReplayRequest
	fs.StringVar(&q.Destination, "destination", "", "only this destination")
	fs.StringVar(&q.Since, "since", "", "only records enqueued at or after this RFC 3339 time")
	fs.BoolVar(&q.IncludeParked, "parked", false, "include parked letters")
	fs.IntVar(&q.Limit, "limit", 0, "at most this many letters (per destination for replay)")
	if cmd == "replay" {
		fs.StringVar(&q.ID, "id", "", "only this letter (needs -destination)")
	}
	if cmd == "purge" {
		fs.StringVar(&q.Confirm, "confirm", "", "repeat the destination name, or \"all destinations\"")
	}
	switch cmd {
	case "list", "replay", "purge":
		if err := fs.Parse(rest); err != nil {
			return 2
		}
	case "show":
		if len(rest) != 2 {
			fmt.Fprint(stderr, deadlettersUsage)
			return 2
		}
	default:
		fmt.Fprint(stderr, deadlettersUsage)
		return 2
	}

	cfg, err := config.Load(os.Environ(), "")
	if err != nil && cmd != "list" && cmd != "show" && cmd != "purge" {
		return startupError(stderr, err)
	}
	if err != nil {
		// Listing and purging need only the store: keep going without destinations.
		cfg = &config.Config{Lookup: cfg.Lookup, LogLevel: cfg.LogLevel}
	}
	cfg.LogLevel = max(cfg.LogLevel, slog.LevelWarn) // warnings and errors only: stdout is for the answer
	a, err := build(cfg, stderr)
	if err != nil {
		return startupError(stderr, err)
	}
	defer a.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	op := ops{a}
	out := json.NewEncoder(stdout)
	out.SetIndent("", "  ")

	switch cmd {
	case "list":
		lo, err := q.ListOptions()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		counts, err := op.Counts(ctx)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DESTINATION\tREASON\tACTIVE\tPARKED")
		var dests []string
		for d := range counts {
			dests = append(dests, d)
		}
		sort.Strings(dests)
		for _, d := range dests {
			var reasons []string
			for r := range counts[d] {
				reasons = append(reasons, string(r))
			}
			sort.Strings(reasons)
			for _, r := range reasons {
				c := counts[d][sink.Reason(r)]
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", d, r, c.Active, c.Parked)
			}
		}
		_ = tw.Flush()
		ls, err := op.List(ctx, lo)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintln(stdout)
		tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DESTINATION\tID\tKIND\tREASON\tATTEMPTS\tPARKED\tLAST FAILURE\tALERT")
		for _, l := range ls {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%v\t%s\t%s\n", l.Destination, l.ID, l.Kind, l.Reason, l.Attempts, l.Parked, l.LastFailure.Format(time.RFC3339), l.AlertID)
		}
		_ = tw.Flush()
		return 0
	case "show":
		l, err := op.Get(ctx, rest[0], rest[1])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		_ = out.Encode(server.View(l, true))
		return 0
	case "replay":
		lo, err := q.ListOptions()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		if q.ID != "" && q.Destination == "" {
			fmt.Fprintln(stderr, "-id needs -destination")
			return 2
		}
		res, err := op.Replay(ctx, replay.Options{Destination: q.Destination, ID: q.ID, Since: lo.Since, IncludeParked: q.IncludeParked, Limit: q.Limit})
		_ = out.Encode(res)
		if err != nil {
			fmt.Fprintln(stderr, err)
			if errors.Is(err, replay.ErrUnknownDestination) {
				return 2
			}
			return 1
		}
		if res.Failed > 0 {
			return 1
		}
		return 0
	case "purge":
		lo, err := q.ListOptions()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		if q.Confirm != server.PurgeConfirmation(q.Destination) {
			fmt.Fprintf(stderr, "a purge deletes dead letters for good: repeat -confirm %q\n", server.PurgeConfirmation(q.Destination))
			return 2
		}
		n, err := op.Purge(ctx, lo)
		_ = out.Encode(map[string]int{"purged": n})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	return 2
}
