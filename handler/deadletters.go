package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/defender-siem/forwarder/internal/config"
	"github.com/defender-siem/forwarder/internal/operator"
)

// deadletters is the operator's command line, run next to Azure Storage Explorer with the app's
// settings in the environment. What each command does is internal/operator's; this only wires
// it to the settings.
func deadletters(args []string, stdout, stderr io.Writer) int {
	cmd, code, ok := operator.ParseCommand(args, stdout, stderr)
	if !ok {
		return code
	}
	cfg, err := config.Load(os.Environ(), "")
	if err != nil && cmd.NeedsDestinations() {
		return startupError(stderr, err)
	}
	if err != nil {
		// Listing, showing and purging need only the store: keep going without destinations.
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
	return operator.Run(ctx, a.operator(), cmd, stdout, stderr)
}
