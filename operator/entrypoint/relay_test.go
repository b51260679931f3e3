package main

// The output relay at a step's end (runner.go, relay.finish): the step's result must not wait for a grace
// period when the command's output pipe closes as it ends (the normal case), and a process that left the
// command's group holding the pipe must neither hang the step nor lose what was written. These tests call
// ProcessRunner.Run in the test process. No timing is asserted: "does not wait for the grace" is a grace of
// an hour against the test's one-minute deadline.

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// maskedSink is a step's output as the entrypoint builds it (masker, counter, copy), writing to a buffer.
func maskedSink(t *testing.T, out *bytes.Buffer) stepOutput {
	t.Helper()
	t.Setenv("TOKEN", "tok-1234567890")
	return outputFor(Step{Name: "step-a", Mask: []string{"TOKEN"}, LogDir: t.TempDir(), LogLimit: DefaultLogLimit}, out, out)
}

// runWithin runs command and fails the test if Run has not returned within the test's deadline.
func runWithin(t *testing.T, runner ProcessRunner, command ...string) Outcome {
	t.Helper()
	got := make(chan Outcome, 1)
	go func() { got <- runner.Run(command, 0, nil) }()
	select {
	case outcome := <-got:
		return outcome
	case <-time.After(deadline):
		t.Fatalf("%q: Run did not return within %s (grace %s)", command, deadline, runner.DrainGrace)
		return Outcome{}
	}
}

// The command ends and with it every holder of the pipe (a background child in its group is killed with
// it): the relay ends at the pipe's end of file, not after the grace (an hour here), and flushes what the
// masker held back: a possible start of a secret that the end of the output shows was not one.
func TestRelayEndsAtEndOfFileWithoutTheGrace(t *testing.T) {
	for name, script := range map[string]string{
		"command alone":                 `printf 'out %s\n' "$TOKEN"; printf 'err\n' >&2; printf 'tail tok-12'; exit 3`,
		"background child in its group": `sleep 600 & printf 'out %s\n' "$TOKEN"; printf 'err\n' >&2; printf 'tail tok-12'; exit 3`,
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			sink := maskedSink(t, &out)
			outcome := runWithin(t, ProcessRunner{DrainGrace: time.Hour, Output: sink}, "sh", "-c", script)
			want := "out ******\nerr\ntail tok-12"
			if outcome.ExitCode != 3 || out.String() != want || outcome.Output == nil || *outcome.Output != int64(len(want)) {
				t.Errorf("exit %d, output %q (counted %v), want %q", outcome.ExitCode, out.String(), show(outcome.Output), want)
			}
			if copied, _ := os.ReadFile(sink.copy.file.Name()); string(copied) != want {
				t.Errorf("the copy %q, want %q", copied, want)
			}
		})
	}
}

// escape starts, from the command, a process that leaves its group (setsid) holding the pipe, writes a
// line, and lives on; the command waits until it has escaped. The escaped process is killed at the test's
// end.
func escape(t *testing.T, then string) (script string, alive func() bool) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "escaped.pid")
	script = `setsid sh -c 'printf "escaped\n"; echo $$ > "$0"; exec sleep 600' "` + pidFile + `" &
while [ ! -s "` + pidFile + `" ]; do sleep 0.01; done
` + then
	pid := func() int {
		data, _ := os.ReadFile(pidFile)
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return n
	}
	t.Cleanup(func() {
		if n := pid(); n > 0 {
			_ = syscall.Kill(n, syscall.SIGKILL)
		}
	})
	return script, func() bool { n := pid(); return n > 0 && syscall.Kill(n, 0) == nil }
}

// A process that left the command's group keeps the pipe open: the relay ends a grace after the command
// (the step does not hang while that process lives), and nothing written before is lost or left unmasked,
// held-back bytes included.
func TestRelayGraceBoundsAnEscapedProcess(t *testing.T) {
	script, alive := escape(t, `printf 'out %s\n' "$TOKEN"; printf 'tail tok-12'; exit 3`)
	var out bytes.Buffer
	outcome := runWithin(t, ProcessRunner{DrainGrace: 100 * time.Millisecond, Output: maskedSink(t, &out)}, "sh", "-c", script)
	if !alive() {
		t.Fatal("the escaped process is gone: the pipe was not held, the grace was not what ended the relay")
	}
	want := "escaped\nout ******\ntail tok-12"
	if outcome.ExitCode != 3 || out.String() != want || outcome.Output == nil || *outcome.Output != int64(len(want)) {
		t.Errorf("exit %d, output %q (counted %v), want %q", outcome.ExitCode, out.String(), show(outcome.Output), want)
	}
}

// The same with the default grace, through the binary (a subreaper, as PID 1 is): the step ends, its
// output complete, while the escaped process still holds the pipe.
func TestEscapedProcessDoesNotHoldTheStep(t *testing.T) {
	p := newPod(t)
	script, alive := escape(t, "echo done")
	s, r := p.runStep("step-a", "--", "sh", "-c", script)
	p.expect(r, StateSucceeded, code(0), "")
	if !alive() {
		t.Error("the escaped process is gone: the test did not hold the pipe open")
	}
	if s.stdout.String() != "escaped\ndone\n" {
		t.Errorf("output %q", s.stdout.String())
	}
}
