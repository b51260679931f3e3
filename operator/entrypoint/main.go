// Command podline-entrypoint wraps each step's command in a podline run pod and sequences the steps among
// themselves through files on the pod's shared emptyDir. docs/in-pod.md is its contract.
//
//	podline-entrypoint prepare DIR    the prepare container's main process
//	podline-entrypoint install DIR    the prepare container's postStart hook
//	podline-entrypoint run --name=NAME [flags] -- COMMAND ARGS...
//	podline-entrypoint decide         a decision, JSON in and out (cross-checked with the Python core)
//	podline-entrypoint encode         a result's two written forms (cross-checked with the Python core)
//	podline-entrypoint constants      the contract's constants and names as JSON (hidden; compared with the core)
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Environment variables for tests only: where the runner marker and the termination message are.
const (
	runnerMarkerEnv   = "PODLINE_RUNNER_MARKER"
	terminationLogEnv = "PODLINE_TERMINATION_LOG"
	defaultMarker     = "/.podline-runner"
)

const usage = `usage: podline-entrypoint prepare DIR
       podline-entrypoint install DIR
       podline-entrypoint run --name=NAME [--after=A,B] [--detached=B] [--on=success,failure]
           [--ignore-failure] [--detach] [--excluded] [--timeout=SECONDS] [--run-dir=DIR]
           [--message-limit=BYTES] [--log-dir=DIR] [--log-limit=BYTES] [--mask=VARIABLE ...]
           -- COMMAND ARGS...
       podline-entrypoint decide < {"args": [...], "results": {...}, "started": [...]}
       podline-entrypoint encode < {"result": {...}, "limit": BYTES}
`

func main() {
	os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Main runs one subcommand and returns the process's exit code (2 for bad usage).
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "podline-entrypoint %s: %v\n", args[0], err)
		return 1
	}
	switch args[0] {
	case "run":
		return runStep(args[1:], stderr)
	case "decide":
		if len(args) != 1 {
			fmt.Fprintf(stderr, "podline-entrypoint decide: takes no arguments (JSON on stdin)\n")
			return 2
		}
		if err := decideJSON(stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "podline-entrypoint decide: %v\n", err)
			return 2
		}
		return 0
	case "encode":
		if err := encodeJSON(stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "podline-entrypoint encode: %v\n", err)
			return 2
		}
		return 0
	case "constants":
		if err := json.NewEncoder(stdout).Encode(Constants()); err != nil {
			return fail(err)
		}
		return 0
	case "install", "prepare":
		if len(args) != 2 {
			fmt.Fprintf(stderr, "podline-entrypoint %s: needs exactly one argument, the tools directory\n%s", args[0], usage)
			return 2
		}
		act := Install
		if args[0] == "prepare" {
			act = Prepare
		}
		if err := act(args[1]); err != nil {
			return fail(err)
		}
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "podline-entrypoint: unknown subcommand %q\n%s", args[0], usage)
		return 2
	}
}

func runStep(args []string, stderr io.Writer) int {
	defaults := Step{RunDir: DefaultRunDir, TerminationLog: DefaultTerminationLog, MessageLimit: DefaultMessageLimit,
		LogLimit: DefaultLogLimit}
	if path, ok := os.LookupEnv(terminationLogEnv); ok {
		defaults.TerminationLog = path
	}
	step, err := ParseRun(args, defaults, true)
	if err != nil {
		fmt.Fprintf(stderr, "podline-entrypoint run: %v\n", err)
		return 2
	}
	stops := make(chan os.Signal, 4)
	signal.Notify(stops, syscall.SIGTERM, syscall.SIGINT)
	setSubreaper()
	marker := defaultMarker
	if path, ok := os.LookupEnv(runnerMarkerEnv); ok {
		marker = path
	}
	_, err = os.Stat(marker)
	e := Entrypointer{
		Step:     step,
		StandIn:  err == nil,
		Waiter:   &DirWaiter{Dir: step.RunDir},
		Runner:   ProcessRunner{Output: outputFor(step, os.Stdout, stderr)},
		Recorder: FileRecorder{RunDir: step.RunDir, Name: step.Name, TerminationLog: step.TerminationLog, MessageLimit: step.MessageLimit},
		Stops:    stops,
		Now:      time.Now,
	}
	result, err := e.Go()
	if err != nil {
		fmt.Fprintf(stderr, "podline-entrypoint run: %v\n", err)
	}
	if result.Reason == nil && result.State == StateFailed && result.Message != nil && result.ExitCode == nil {
		fmt.Fprintln(stderr, *result.Message) // the entrypoint's own failure: say it in the log too
	}
	return result.ExitStatus()
}

// decideInput is the decide subcommand's stdin.
type decideInput struct {
	Args    []string          `json:"args"`
	Results map[string]Result `json:"results"`
	Started []string          `json:"started"`
}

type decideOutput struct {
	Action Action  `json:"action"`
	Reason *Reason `json:"reason"`
	// What the output flags were read as (so the tests see the core and the binary read the same).
	Mask     []string `json:"mask"`
	LogDir   string   `json:"logDir"`
	LogLimit int64    `json:"logLimit"`
}

func decideJSON(stdin io.Reader, stdout io.Writer) error {
	var in decideInput
	decoder := json.NewDecoder(stdin)
	if err := decoder.Decode(&in); err != nil {
		return fmt.Errorf("reading the case from stdin: %v", err)
	}
	if in.Args == nil {
		return errors.New(`the case has no "args"`)
	}
	args := in.Args
	if len(args) > 0 && args[0] == "run" {
		args = args[1:]
	}
	step, err := ParseRun(args, Step{RunDir: DefaultRunDir, MessageLimit: DefaultMessageLimit, LogLimit: DefaultLogLimit}, false)
	if err != nil {
		return err
	}
	snap := Snapshot{Results: in.Results, Started: map[string]bool{}}
	for _, name := range in.Started {
		snap.Started[name] = true
	}
	decision := Decide(step, snap)
	mask := append([]string{}, step.Mask...)
	return json.NewEncoder(stdout).Encode(decideOutput{Action: decision.Action, Reason: reasonp(decision.Reason), Mask: mask,
		LogDir: step.LogDir, LogLimit: step.LogLimit})
}

// encodeJSON prints the result file and the termination message for a result, one a line: what the
// entrypoint would write for it (tests/core/test_stepping_agreement.py compares them with the core's).
func encodeJSON(stdin io.Reader, stdout io.Writer) error {
	var in struct {
		Result *Result `json:"result"`
		Limit  *int    `json:"limit"`
	}
	if err := json.NewDecoder(stdin).Decode(&in); err != nil {
		return fmt.Errorf("reading the case from stdin: %v", err)
	}
	if in.Result == nil || in.Limit == nil {
		return errors.New(`the case needs "result" and "limit"`)
	}
	_, err := fmt.Fprintf(stdout, "%s\n%s\n", EncodeResult(*in.Result), EncodeMessage(*in.Result, *in.Limit))
	return err
}

// Constants is what this binary takes for granted of the in-pod contract: its numbers, defaults and closed
// sets of names. The constants subcommand prints it; tests/core/test_stepping_agreement.py compares it with
// podline.core.stepping's, so the two halves cannot drift apart unseen.
func Constants() map[string]any {
	return map[string]any{
		"earlyExitCode":         EarlyExitCode,
		"maxMessage":            MaxMessage,
		"defaultMessageLimit":   DefaultMessageLimit,
		"defaultRunDir":         DefaultRunDir,
		"defaultTerminationLog": DefaultTerminationLog,
		"actions":               []Action{ActionWait, ActionRun, ActionSkip},
		"states":                []State{StateSucceeded, StateFailed, StateSkipped},
		"reasons": []Reason{ReasonEarlyExit, ReasonSkipped, ReasonStepTimeout, ReasonStopped,
			ReasonImagePullFailed, ReasonCommandNotFound, ReasonCommandNotExecutable},
	}
}
