package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/config"
	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/graph"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/watermark"
)

// buildGraph wires the Graph alert poll: one client per tenant, the watermark table in the
// dead-letter storage account (opened on first poll), and the same pipeline as the Event Hub
// path. Like the rest of build, it does no network I/O.
func buildGraph(g *config.Graph, dests []pipeline.Destination, dl deadletter.Config, p *pipeline.Pipeline, log *slog.Logger) (*graph.Poller, error) {
	hc, err := graph.HTTPClient(g.CAFile)
	if err != nil {
		return nil, err
	}
	var errs []error
	// A poll whose alerts no destination takes would move the watermark past them all.
	taken := false
	for _, d := range dests {
		taken = taken || len(d.Filter.Kinds) == 0 || slices.Contains(d.Filter.Kinds, alert.KindGraphAlert)
	}
	if !taken {
		errs = append(errs, errors.New("the Graph input is configured but no destination takes kind graphalert: add graphalert to a destination's Destinations__<name>__Kinds"))
	}
	poller := &graph.Poller{Process: p, Overlap: g.Overlap, StartFrom: g.StartFrom, Logger: log.With("function", "PollGraphAlerts")}
	if err := deadletter.ValidateTableName(g.WatermarkTable); err != nil {
		errs = append(errs, errors.New("Graph__WatermarkTable: "+err.Error()))
	}
	for _, t := range g.Tenants {
		prefix := "Graph__"
		if t.Name != "default" {
			prefix = "Graph__Tenants__" + t.Name + "__"
		}
		auth := graph.Auth{TenantID: t.TenantID, ClientID: t.ClientID, ClientSecret: t.ClientSecret,
			CertificateFile: t.CertificateFile, CertificatePassword: t.CertificatePassword,
			AuthorityHost: g.AuthorityHost, DisableInstanceDiscovery: g.DisableInstanceDiscovery}
		if err := auth.Validate(prefix); err != nil {
			errs = append(errs, err)
			continue
		}
		cred, err := graph.NewCredential(auth, hc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		client := graph.NewClient(cred, graph.ClientOptions{BaseURL: g.BaseURL, Sources: g.Sources, PageSize: g.PageSize, HTTP: hc})
		poller.Tenants = append(poller.Tenants, graph.Tenant{Name: t.Name, Client: client})
		log.Info("graph tenant ready", "tenant", t.Name, "auth", auth.Mode(), "sources", g.Sources, "overlap", g.Overlap.String())
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	marks := &lazyMarks{cfg: dl, table: g.WatermarkTable}
	poller.Marks = marks.get
	return poller, nil
}

// lazyMarks opens the watermark table on first use and keeps it.
type lazyMarks struct {
	cfg   deadletter.Config
	table string

	mu    sync.Mutex
	store *watermark.Store
}

func (l *lazyMarks) get(ctx context.Context) (graph.Marks, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store != nil {
		return l.store, nil
	}
	s, err := watermark.Open(ctx, l.cfg, l.table)
	if err != nil {
		return nil, err
	}
	l.store = s
	return s, nil
}
