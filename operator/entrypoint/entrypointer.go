package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Waiter blocks until ready holds for a snapshot of the run directory and returns that snapshot, or returns
// ctx's error once ctx ends.
type Waiter interface {
	Wait(ctx context.Context, ready func(Snapshot) bool) (Snapshot, error)
}

// Runner runs a command to its end: its own process group, stdin from /dev/null, the container's stdout
// and stderr; each signal from stops is forwarded to the group; timeout > 0 bounds it (SIGTERM, then
// SIGKILL a grace period later).
type Runner interface {
	Run(command []string, timeout time.Duration, stops <-chan os.Signal) Outcome
}

// Recorder writes what a step records: the started marker, and the result (result file and termination
// message).
type Recorder interface {
	Started(at time.Time) error
	Result(r Result) error
}

// Entrypointer is one step container: its contract (Step, and whether it stands in for an image that could
// not be pulled) and the effects it acts through. Go holds the logic; the effects are injected, so that
// logic is tested with fakes (entrypointer_test.go) and with real processes and files (run_test.go).
type Entrypointer struct {
	Step
	StandIn bool // the runner image's marker /.podline-runner is there: record ImagePullFailed instead of running

	Waiter   Waiter
	Runner   Runner
	Recorder Recorder
	Stops    <-chan os.Signal // SIGTERM/SIGINT received by the container
	Now      func() time.Time
}

// Go waits for the step's turn, decides, runs or skips, and records the result, which it returns. The error
// is one the entrypoint met recording it (the result is still returned, to exit with).
func (e Entrypointer) Go() (Result, error) {
	snap, stop, err := e.wait()
	var result Result
	switch {
	case stop != "":
		result = Skipped(e.Step, e.Now(), ReasonStopped,
			fmt.Sprintf("Skipped: the pod was stopped (%s) before the step's turn.", stop))
	case err != nil:
		result = Broken(e.Step, nil, e.Now(), fmt.Errorf("cannot wait for the steps before: %v", err))
	default:
		result = e.act(Decide(e.Step, snap), snap)
	}
	return result, e.Recorder.Result(result)
}

func (e Entrypointer) act(decision Decision, snap Snapshot) Result {
	if decision.Action == ActionSkip {
		return Skipped(e.Step, e.Now(), decision.Reason, skipMessage(e.Step, decision, snap))
	}
	started := e.Now()
	if err := e.Recorder.Started(started); err != nil {
		return Broken(e.Step, millis(started), e.Now(), fmt.Errorf("cannot write the started marker: %v", err))
	}
	if e.StandIn {
		return StandIn(e.Step, started)
	}
	if len(e.Command) == 0 { // only an --excluded step may have none, and it never runs
		return Broken(e.Step, millis(started), e.Now(), fmt.Errorf("no command to run"))
	}
	outcome := e.Runner.Run(e.Command, e.Timeout, e.Stops)
	return Judge(e.Step, started, e.Now(), outcome)
}

// wait waits for the step's turn; a stop signal meanwhile ends the wait, and is returned by name.
func (e Entrypointer) wait() (Snapshot, string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan os.Signal, 1)
	waited := make(chan struct{})
	go func() {
		select {
		case sig := <-e.Stops:
			got <- sig
			cancel()
		case <-waited:
			got <- nil
		}
	}()
	snap, err := e.Waiter.Wait(ctx, func(s Snapshot) bool { return Decide(e.Step, s).Action != ActionWait })
	close(waited)
	// A signal that came just as the wait ended still counts: the command has not started.
	if sig := <-got; sig != nil {
		return snap, signalName(sig), nil
	}
	return snap, "", err
}

func skipMessage(step Step, decision Decision, snap Snapshot) string {
	switch {
	case decision.Reason == ReasonEarlyExit:
		return fmt.Sprintf("Skipped: %s exited with code 78 (early exit).", earlyExit(snap))
	case step.Excluded:
		return "Skipped: its when conditions do not match."
	case !step.OnSuccess && !step.OnFailure:
		return "Skipped: the step never runs (when.status matches no run status)."
	case failing(snap) != "":
		return fmt.Sprintf("Skipped: the run is failing (%s failed) and the step runs only on success.", failing(snap))
	default:
		return "Skipped: the run is not failing and the step runs only on failure."
	}
}
