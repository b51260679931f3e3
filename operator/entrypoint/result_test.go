package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

func TestJudge(t *testing.T) {
	step := Step{Name: "step-b", Timeout: 30 * time.Second}
	ignoring := Step{Name: "step-b", IgnoreFailure: true}
	detach := Step{Name: "step-b", Detach: true}
	start, end := time.UnixMilli(1764579600123), time.UnixMilli(1764579600456)
	cases := []struct {
		desc    string
		step    Step
		outcome Outcome
		state   State
		reason  Reason
		failing bool
		exit    int // the container's
	}{
		{"exit 0", step, Outcome{}, StateSucceeded, "", false, 0},
		{"exit 3", step, Outcome{ExitCode: 3}, StateFailed, "", true, 3},
		{"exit 78: early exit is a success", step, Outcome{ExitCode: 78}, StateSucceeded, "", false, 78},
		{"killed by a signal", step, Outcome{ExitCode: 137, Signal: syscall.SIGKILL}, StateFailed, "", true, 137},
		{"killed by signal 78 is not an early exit", step, Outcome{ExitCode: 206, Signal: 78}, StateFailed, "", true, 206},
		{"timed out", step, Outcome{ExitCode: 143, Signal: syscall.SIGTERM, TimedOut: true}, StateFailed, ReasonStepTimeout, true, 143},
		{"timed out, exited 0 on SIGTERM", step, Outcome{ExitCode: 0, TimedOut: true}, StateFailed, ReasonStepTimeout, true, 1},
		{"stopped", step, Outcome{ExitCode: 143, Signal: syscall.SIGTERM, Stopped: "SIGTERM"}, StateFailed, ReasonStopped, true, 143},
		{"stopped but exited 0", step, Outcome{ExitCode: 0, Stopped: "SIGTERM"}, StateSucceeded, "", false, 0},
		{"not found", step, Outcome{ExitCode: 127, NotStarted: ReasonCommandNotFound, Detail: "x"}, StateFailed, ReasonCommandNotFound, true, 127},
		{"not executable", step, Outcome{ExitCode: 126, NotStarted: ReasonCommandNotExecutable, Detail: "x"}, StateFailed, ReasonCommandNotExecutable, true, 126},
		{"ignored failure", ignoring, Outcome{ExitCode: 2}, StateFailed, "", false, 2},
		{"detached failure", detach, Outcome{ExitCode: 2}, StateFailed, "", false, 2},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			r := Judge(c.step, start, end, c.outcome)
			if r.State != c.state || deref(r.Reason) != c.reason || r.Failing != c.failing || r.ExitStatus() != c.exit {
				t.Errorf("Judge = %s %q failing=%v exit %d, want %s %q failing=%v exit %d",
					r.State, deref(r.Reason), r.Failing, r.ExitStatus(), c.state, c.reason, c.failing, c.exit)
			}
			if *r.ExitCode != c.outcome.ExitCode || *r.StartedAt != 1764579600123 || *r.FinishedAt != 1764579600456 {
				t.Errorf("exit code or times wrong: %+v", r)
			}
			if (r.State == StateFailed || c.outcome.ExitCode == 78) != (r.Message != nil) {
				t.Errorf("a failure has a message, a success none (but 78): %v", r.Message)
			}
		})
	}
}

func TestSkippedAndStandIn(t *testing.T) {
	at := time.UnixMilli(1764579600456)
	r := Skipped(Step{Name: "step-c"}, at, ReasonSkipped, "Skipped: why.")
	if r.State != StateSkipped || r.ExitCode != nil || r.StartedAt != nil || *r.FinishedAt != 1764579600456 ||
		*r.Reason != ReasonSkipped || r.Failing || r.ExitStatus() != 0 {
		t.Errorf("Skipped = %+v", r)
	}
	r = StandIn(Step{Name: "step-c"}, at)
	if r.State != StateFailed || *r.ExitCode != 1 || *r.Reason != ReasonImagePullFailed || !r.Failing || r.ExitStatus() != 1 {
		t.Errorf("StandIn = %+v", r)
	}
	if r = StandIn(Step{Name: "step-c", IgnoreFailure: true}, at); r.Failing {
		t.Errorf("an ignored stand-in is failing")
	}
}

func TestMessageIsBounded(t *testing.T) {
	long := strings.Repeat("é", 3000)
	if got := message(long); utf8.RuneCountInString(*got) != MaxMessage || !strings.HasSuffix(*got, "…") {
		t.Errorf("message has %d characters", utf8.RuneCountInString(*got))
	}
	if message("") != nil {
		t.Errorf("an empty message is null")
	}
	short := "The command exited with code 3."
	if *message(short) != short {
		t.Errorf("a short message changed")
	}
}

func deref(r *Reason) Reason {
	if r == nil {
		return ""
	}
	return *r
}
