package main

import (
	"fmt"
	"syscall"
	"time"
	"unicode/utf8"
)

// State is a result's state.
type State string

const (
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateSkipped   State = "skipped"
)

// Result is a step's result file and termination message, field for field (docs/in-pod.md). Nil pointers
// are JSON nulls.
type Result struct {
	Name       string  `json:"name"`
	State      State   `json:"state"`
	ExitCode   *int    `json:"exitCode"`
	StartedAt  *int64  `json:"startedAt"`
	FinishedAt *int64  `json:"finishedAt"`
	Reason     *Reason `json:"reason"`
	Message    *string `json:"message"`
	Failing    bool    `json:"failing"`
	// OutputBytes: bytes of (masked) output the entrypoint relayed to the container log; nil when it ran no
	// command. The archive compares it with the log it reads, to tell a gap in the node's log pipeline.
	OutputBytes *int64 `json:"outputBytes"`
}

// MaxMessage is the longest message, in characters.
const MaxMessage = 1000

// Outcome is what running the command gave, before it is judged.
type Outcome struct {
	ExitCode   int            // the command's exit code; 128+signal when a signal killed it; 127/126 when it could not start
	Signal     syscall.Signal // the signal that killed it, or 0
	NotStarted Reason         // CommandNotFound or CommandNotExecutable when it could not start, else ""
	Detail     string         // why it could not start
	TimedOut   bool           // the step timeout ended it
	Stopped    string         // the stop signal forwarded to it (SIGTERM, SIGINT), or ""
	Output     *int64         // bytes of output relayed (masked) to the container log; nil when not relayed
}

// Judge turns the outcome of a command that ran (or tried to) into its result. It is pure.
func Judge(step Step, startedAt, finishedAt time.Time, o Outcome) Result {
	r := Result{Name: step.Name, ExitCode: intp(o.ExitCode), StartedAt: millis(startedAt), FinishedAt: millis(finishedAt),
		OutputBytes: o.Output}
	switch {
	case o.NotStarted != ReasonNone:
		r.State, r.Reason = StateFailed, reasonp(o.NotStarted)
		r.Message = message(o.Detail)
	case o.TimedOut:
		// A timed-out step fails whatever its command answered to SIGTERM.
		r.State, r.Reason = StateFailed, reasonp(ReasonStepTimeout)
		r.Message = message(fmt.Sprintf("The step timed out after %s and was stopped; %s.", step.Timeout, exitPhrase(o)))
	case o.ExitCode == 0:
		r.State = StateSucceeded
	case o.ExitCode == EarlyExitCode && o.Signal == 0:
		r.State = StateSucceeded
		r.Message = message("The command exited with code 78: the run ends early and the steps after it are skipped.")
	default:
		r.State = StateFailed
		if o.Stopped != "" {
			r.Reason = reasonp(ReasonStopped)
			r.Message = message(fmt.Sprintf("The step was stopped (%s, the pod is being stopped); %s.", o.Stopped, exitPhrase(o)))
		} else {
			r.Message = message(capitalize(exitPhrase(o)) + ".")
		}
	}
	r.Failing = isFailing(step, r.State)
	return r
}

// Skipped is the result of a step that never ran.
func Skipped(step Step, at time.Time, reason Reason, why string) Result {
	return Result{Name: step.Name, State: StateSkipped, FinishedAt: millis(at), Reason: reasonp(reason), Message: message(why)}
}

// StandIn is the result of a step whose image could not be pulled, recorded by the runner image standing
// in for it where it would have run.
func StandIn(step Step, at time.Time) Result {
	r := Result{Name: step.Name, State: StateFailed, ExitCode: intp(1), StartedAt: millis(at), FinishedAt: millis(at),
		Reason: reasonp(ReasonImagePullFailed),
		Message: message(fmt.Sprintf("The image of %s could not be pulled (the pod annotation killed.podline.dev/%s says why); the step did not run.",
			step.Name, step.Name))}
	r.Failing = isFailing(step, r.State)
	return r
}

// Broken is the result of a step the entrypoint itself could not carry out (the run directory is not there,
// a file cannot be written): a failure with no reason of the contract's, and why in the message.
func Broken(step Step, startedAt *int64, at time.Time, err error) Result {
	r := Result{Name: step.Name, State: StateFailed, StartedAt: startedAt, FinishedAt: millis(at),
		Message: message("podline-entrypoint: " + err.Error())}
	r.Failing = isFailing(step, r.State)
	return r
}

// ExitStatus is the container's exit code for a result: its exitCode; 0 when skipped; 1 when failed without
// one, or with 0 (a step that timed out whose command then exited 0).
func (r Result) ExitStatus() int {
	switch {
	case r.State == StateSkipped:
		return 0
	case r.ExitCode == nil:
		return 1
	case r.State == StateFailed && *r.ExitCode == 0:
		return 1
	default:
		return *r.ExitCode
	}
}

func isFailing(step Step, state State) bool {
	return state == StateFailed && !step.IgnoreFailure && !step.Detach
}

func exitPhrase(o Outcome) string {
	if o.Signal != 0 {
		return fmt.Sprintf("the command was killed by %s (exit code %d)", signalName(o.Signal), o.ExitCode)
	}
	return fmt.Sprintf("the command exited with code %d", o.ExitCode)
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// message bounds a message to MaxMessage characters; "" is no message (null).
func message(s string) *string {
	if s == "" {
		return nil
	}
	if utf8.RuneCountInString(s) > MaxMessage {
		runes := []rune(s)
		s = string(runes[:MaxMessage-1]) + "…"
	}
	return &s
}

func millis(t time.Time) *int64 {
	ms := t.UnixMilli()
	return &ms
}

func intp(i int) *int { return &i }

func reasonp(r Reason) *Reason {
	if r == ReasonNone {
		return nil
	}
	return &r
}
