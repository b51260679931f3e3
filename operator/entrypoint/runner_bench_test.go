package main

// Benchmarks of a step's end (go test -run '^$' -bench StepEnd): ProcessRunner.Run of a trivial command,
// its output relayed (masker, counter, copy on the volume, as main builds it) or straight to the
// container's stdout; and with a process that left the group holding the pipe (the grace). Numbers only.

import (
	"io"
	"os"
	"testing"
)

func benchmarkRun(b *testing.B, runner func() ProcessRunner, command ...string) {
	for i := 0; i < b.N; i++ {
		if outcome := runner().Run(command, 0, nil); outcome.ExitCode != 0 {
			b.Fatalf("%q: exit %d", command, outcome.ExitCode)
		}
	}
}

func relayed(b *testing.B) func() ProcessRunner {
	dir := b.TempDir()
	b.Setenv("TOKEN", "tok-1234567890")
	step := Step{Name: "step-a", Mask: []string{"TOKEN"}, LogDir: dir, LogLimit: DefaultLogLimit}
	return func() ProcessRunner { return ProcessRunner{Output: outputFor(step, io.Discard, io.Discard)} }
}

// BenchmarkStepEndDirect: no relay, the floor of a step's start and end.
func BenchmarkStepEndDirect(b *testing.B) {
	devnull, err := openDevNullAsStdout()
	if err != nil {
		b.Fatal(err)
	}
	defer devnull()
	benchmarkRun(b, func() ProcessRunner { return ProcessRunner{} }, "sh", "-c", "echo hi")
}

// BenchmarkStepEndRelayed: the same command, its output through the relay.
func BenchmarkStepEndRelayed(b *testing.B) {
	benchmarkRun(b, relayed(b), "sh", "-c", "echo hi")
}

// BenchmarkStepEndRelayedEscaped: a process left the group holding the pipe: the relay ends DrainGrace
// after the command.
func BenchmarkStepEndRelayedEscaped(b *testing.B) {
	benchmarkRun(b, relayed(b), "sh", "-c", "setsid sh -c 'exec sleep 5' & sleep 0.05; echo hi")
}

// openDevNullAsStdout points the process's stdout at /dev/null (the direct runner's command writes there)
// and returns what puts it back.
func openDevNullAsStdout() (func(), error) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	saved := os.Stdout
	os.Stdout = null
	return func() { os.Stdout = saved; null.Close() }, nil
}
