package main

import (
	"context"
	"errors"
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"
)

// fakeWaiter answers with the first of its snapshots that is ready; with none ready it blocks until ctx
// ends, as the real one does.
type fakeWaiter struct {
	snapshots []Snapshot
	err       error
}

func (w fakeWaiter) Wait(ctx context.Context, ready func(Snapshot) bool) (Snapshot, error) {
	if w.err != nil {
		return Snapshot{}, w.err
	}
	for _, s := range w.snapshots {
		if ready(s) {
			return s, nil
		}
	}
	<-ctx.Done()
	return Snapshot{}, ctx.Err()
}

type fakeRunner struct {
	outcome Outcome
	ran     *[]string
}

func (r fakeRunner) Run(command []string, timeout time.Duration, stops <-chan os.Signal) Outcome {
	*r.ran = append(*r.ran, command...)
	return r.outcome
}

type fakeRecorder struct {
	events *[]string
	result *Result
	err    error
}

func (f fakeRecorder) Started(at time.Time) error {
	*f.events = append(*f.events, "started")
	return f.err
}

func (f fakeRecorder) Result(r Result) error {
	*f.events = append(*f.events, "result")
	*f.result = r
	return nil
}

type fixture struct {
	ran    []string
	events []string
	result Result
}

func (f *fixture) entrypointer(step Step, waiter Waiter, outcome Outcome) Entrypointer {
	clock := time.UnixMilli(1764579600000)
	return Entrypointer{
		Step:     step,
		Waiter:   waiter,
		Runner:   fakeRunner{outcome: outcome, ran: &f.ran},
		Recorder: fakeRecorder{events: &f.events, result: &f.result},
		Now:      func() time.Time { clock = clock.Add(time.Millisecond); return clock },
	}
}

func snapshot(rs ...Result) Snapshot {
	return Snapshot{Results: results(rs...), Started: map[string]bool{}}
}

var stepB = Step{Name: "step-b", After: []string{"step-a"}, OnSuccess: true, Command: []string{"make", "test"}}

func TestGoRunsInItsTurn(t *testing.T) {
	var f fixture
	e := f.entrypointer(stepB, fakeWaiter{snapshots: []Snapshot{snapshot(), snapshot(ok("step-a"))}}, Outcome{ExitCode: 0})
	got, err := e.Go()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.ran, []string{"make", "test"}) || !reflect.DeepEqual(f.events, []string{"started", "result"}) {
		t.Errorf("ran %v, recorded %v", f.ran, f.events)
	}
	if got.State != StateSucceeded || *got.StartedAt != 1764579600001 || *got.FinishedAt != 1764579600002 || f.result != got {
		t.Errorf("result %+v (recorded %+v)", got, f.result)
	}
}

func TestGoSkipsWithoutRunning(t *testing.T) {
	var f fixture
	e := f.entrypointer(stepB, fakeWaiter{snapshots: []Snapshot{snapshot(bad("step-a"))}}, Outcome{})
	got, _ := e.Go()
	if len(f.ran) != 0 || !reflect.DeepEqual(f.events, []string{"result"}) {
		t.Errorf("ran %v, recorded %v", f.ran, f.events)
	}
	if got.State != StateSkipped || *got.Reason != ReasonSkipped || got.ExitStatus() != 0 ||
		*got.Message != "Skipped: the run is failing (step-a failed) and the step runs only on success." {
		t.Errorf("result %+v %q", got, *got.Message)
	}
}

func TestGoEarlyExit(t *testing.T) {
	var f fixture
	e := f.entrypointer(stepB, fakeWaiter{snapshots: []Snapshot{snapshot(early("step-x"))}}, Outcome{})
	got, _ := e.Go()
	if len(f.ran) != 0 || *got.Reason != ReasonEarlyExit || *got.Message != "Skipped: step-x exited with code 78 (early exit)." {
		t.Errorf("ran %v, result %+v", f.ran, got)
	}
}

func TestGoStandIn(t *testing.T) {
	var f fixture
	e := f.entrypointer(stepB, fakeWaiter{snapshots: []Snapshot{snapshot(ok("step-a"))}}, Outcome{})
	e.StandIn = true
	got, _ := e.Go()
	if len(f.ran) != 0 || !reflect.DeepEqual(f.events, []string{"started", "result"}) {
		t.Errorf("ran %v, recorded %v", f.ran, f.events)
	}
	if got.State != StateFailed || *got.Reason != ReasonImagePullFailed || *got.ExitCode != 1 || !got.Failing {
		t.Errorf("result %+v", got)
	}
}

func TestGoStandInIsSkippedLikeAnyStep(t *testing.T) {
	var f fixture
	step := stepB
	step.Excluded = true // a step excluded by when runs on the runner image
	e := f.entrypointer(step, fakeWaiter{snapshots: []Snapshot{snapshot(ok("step-a"))}}, Outcome{})
	e.StandIn = true
	if got, _ := e.Go(); got.State != StateSkipped || *got.Reason != ReasonSkipped {
		t.Errorf("result %+v", got)
	}
}

func TestGoStoppedWhileWaiting(t *testing.T) {
	var f fixture
	stops := make(chan os.Signal, 1)
	stops <- syscall.SIGTERM
	e := f.entrypointer(stepB, fakeWaiter{snapshots: []Snapshot{snapshot()}}, Outcome{})
	e.Stops = stops
	got, _ := e.Go()
	if len(f.ran) != 0 || got.State != StateSkipped || *got.Reason != ReasonStopped || got.ExitStatus() != 0 {
		t.Errorf("ran %v, result %+v", f.ran, got)
	}
}

func TestGoCannotWait(t *testing.T) {
	var f fixture
	e := f.entrypointer(stepB, fakeWaiter{err: errors.New("cannot watch /podline/run: no such file or directory")}, Outcome{})
	got, _ := e.Go()
	if len(f.ran) != 0 || got.State != StateFailed || got.Reason != nil || got.ExitStatus() != 1 || !got.Failing {
		t.Errorf("ran %v, result %+v", f.ran, got)
	}
}

func TestGoCannotWriteTheStartedMarker(t *testing.T) {
	var f fixture
	e := f.entrypointer(Step{Name: "step-a", OnSuccess: true, Command: []string{"true"}}, fakeWaiter{snapshots: []Snapshot{snapshot()}}, Outcome{})
	e.Recorder = fakeRecorder{events: &f.events, result: &f.result, err: errors.New("read-only file system")}
	got, _ := e.Go()
	if len(f.ran) != 0 || got.State != StateFailed || got.StartedAt == nil {
		t.Errorf("ran %v, result %+v", f.ran, got)
	}
}

func TestGoJudgesTheOutcome(t *testing.T) {
	var f fixture
	step := stepB
	step.Timeout = 2 * time.Second
	e := f.entrypointer(step, fakeWaiter{snapshots: []Snapshot{snapshot(ok("step-a"))}},
		Outcome{ExitCode: 143, Signal: syscall.SIGTERM, TimedOut: true})
	got, _ := e.Go()
	if got.State != StateFailed || *got.Reason != ReasonStepTimeout || *got.ExitCode != 143 ||
		*got.Message != "The step timed out after 2s and was stopped; the command was killed by SIGTERM (exit code 143)." {
		t.Errorf("result %+v %q", got, *got.Message)
	}
}
