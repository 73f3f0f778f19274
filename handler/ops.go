package main

import (
	"context"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/replay"
	"github.com/defender-siem/forwarder/internal/sink"
)

// ops is the operator's view of the dead letters, over the lazily opened store.
type ops struct {
	a *app
}

func (o ops) Counts(ctx context.Context) (map[string]map[sink.Reason]deadletter.Count, error) {
	s, err := o.a.store.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Counts(ctx)
}

func (o ops) List(ctx context.Context, opts deadletter.ListOptions) ([]deadletter.Letter, error) {
	s, err := o.a.store.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.List(ctx, opts)
}

func (o ops) Get(ctx context.Context, destination, id string) (deadletter.Letter, error) {
	s, err := o.a.store.get(ctx)
	if err != nil {
		return deadletter.Letter{}, err
	}
	return s.Get(ctx, destination, id)
}

func (o ops) Purge(ctx context.Context, opts deadletter.ListOptions) (int, error) {
	s, err := o.a.store.get(ctx)
	if err != nil {
		return 0, err
	}
	return s.Purge(ctx, opts)
}

func (o ops) Replay(ctx context.Context, opts replay.Options) (replay.Result, error) {
	s, err := o.a.store.get(ctx)
	if err != nil {
		return replay.Result{}, err
	}
	return replay.New(s, o.a.dests, o.a.store.cfg.MaxAttempts, o.a.log, o.a.scrub.String).Replay(ctx, opts)
}
