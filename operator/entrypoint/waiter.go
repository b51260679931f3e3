package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

// DirWaiter is the real Waiter: it watches the run directory with inotify and reads it into a snapshot
// after each result file or started marker that appears. Results are immutable once renamed into place, so
// each is read once.
type DirWaiter struct {
	Dir     string
	results map[string]Result
}

const (
	resultSuffix  = ".json"
	startedSuffix = ".started"
)

func (w *DirWaiter) Wait(ctx context.Context, ready func(Snapshot) bool) (Snapshot, error) {
	var snap Snapshot
	err := watchDir(ctx, w.Dir, isRecord, func() (bool, error) {
		var err error
		snap, err = w.scan()
		return err == nil && ready(snap), err
	})
	return snap, err
}

// isRecord tells a result file or a started marker (temporary files start with a dot).
func isRecord(name string) bool {
	return !strings.HasPrefix(name, ".") && (strings.HasSuffix(name, resultSuffix) || strings.HasSuffix(name, startedSuffix))
}

func (w *DirWaiter) scan() (Snapshot, error) {
	entries, err := os.ReadDir(w.Dir)
	if err != nil {
		return Snapshot{}, err
	}
	if w.results == nil {
		w.results = map[string]Result{}
	}
	snap := Snapshot{Results: map[string]Result{}, Started: map[string]bool{}}
	for _, entry := range entries {
		name := entry.Name()
		if !isRecord(name) {
			continue
		}
		if step := strings.TrimSuffix(name, startedSuffix); step != name {
			snap.Started[step] = true
			continue
		}
		step := strings.TrimSuffix(name, resultSuffix)
		result, known := w.results[step]
		if !known {
			data, err := os.ReadFile(filepath.Join(w.Dir, name))
			if err != nil || json.Unmarshal(data, &result) != nil {
				continue // not complete yet (a writer that does not rename): its close wakes us again
			}
			w.results[step] = result
		}
		snap.Results[step] = result
	}
	return snap, nil
}
