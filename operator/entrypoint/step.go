package main

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Step is the whole contract of one step container, as its arguments state it (docs/in-pod.md, "A step
// container's arguments"). Reading this struct tells everything a step is told; nothing else about the
// pipeline reaches the entrypoint.
type Step struct {
	Name           string        // --name: this container's name; its files are <RunDir>/<Name>.json/.started
	After          []string      // --after: the containers it waits for
	Detached       []string      // --detached: those of After that are detached (their start is enough)
	OnSuccess      bool          // --on has success: runs when the run is not failing
	OnFailure      bool          // --on has failure: runs when the run is failing
	IgnoreFailure  bool          // --ignore-failure: its failure does not make the run fail
	Detach         bool          // --detach: it runs in the background; its failure does not make the run fail
	Excluded       bool          // --excluded: its when conditions do not match; skipped in its turn
	Timeout        time.Duration // --timeout: the step timeout; 0 is none
	RunDir         string        // --run-dir: the shared results directory
	TerminationLog string        // --termination-log (or $PODLINE_TERMINATION_LOG): for tests only
	MessageLimit   int           // --message-limit: bytes of termination message the kubelet keeps for it
	LogDir         string        // --log-dir: where the copy of its output goes (<LogDir>/<Name>.log); "" is none
	LogLimit       int64         // --log-limit: bytes of output the copy keeps
	Mask           []string      // --mask (one name each, repeated): environment variables whose values are secret
	Command        []string      // after --: what the step runs; Command[0] is looked up in PATH
}

// Defaults for the flags a step usually leaves out.
const (
	DefaultRunDir         = "/podline/run"
	DefaultTerminationLog = "/dev/termination-log"
	DefaultMessageLimit   = 4096 // the kubelet's most for one container
)

// A container name as Kubernetes accepts it (a DNS-1123 label); it is also a safe file name.
var containerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

var (
	valueFlags = map[string]bool{"name": true, "after": true, "detached": true, "on": true, "timeout": true,
		"run-dir": true, "termination-log": true, "message-limit": true, "mask": true,
		"log-dir": true, "log-limit": true}
	boolFlags = map[string]bool{"ignore-failure": true, "detach": true, "excluded": true}
	listFlags = map[string]bool{"after": true, "detached": true, "mask": true}
)

// ParseRun parses the arguments of `run` (without the word run). A step that gives no --on runs on success
// only (Drone's default); --on= (empty) means never. An --excluded step may have no command. Lists may be repeated (--after=a --after=b) and are
// comma-separated; --mask is repeated, one variable name each (a name may hold a comma). With requireCommand false (the decide subcommand) the -- and the command may be left out.
func ParseRun(args []string, defaults Step, requireCommand bool) (Step, error) {
	step := defaults
	step.OnSuccess, step.OnFailure = true, false
	seen := map[string]bool{}
	sawDashes := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			step.Command = append([]string(nil), args[i+1:]...)
			sawDashes = true
			break
		}
		if !strings.HasPrefix(arg, "--") || len(arg) == 2 {
			return Step{}, fmt.Errorf("unexpected argument %q: flags come first, then --, then the command", arg)
		}
		name, value, hasValue := strings.Cut(arg[2:], "=")
		switch {
		case valueFlags[name]:
			if !hasValue {
				if i+1 >= len(args) || args[i+1] == "--" {
					return Step{}, fmt.Errorf("flag --%s needs a value (--%s=VALUE)", name, name)
				}
				i++
				value = args[i]
			}
		case boolFlags[name]:
			if hasValue {
				b, err := strconv.ParseBool(value)
				if err != nil {
					return Step{}, fmt.Errorf("flag --%s takes no value or true/false, not %q", name, value)
				}
				value = strconv.FormatBool(b)
			} else {
				value = "true"
			}
		default:
			return Step{}, fmt.Errorf("unknown flag --%s", name)
		}
		if seen[name] && !listFlags[name] {
			return Step{}, fmt.Errorf("flag --%s given twice", name)
		}
		seen[name] = true
		if err := step.set(name, value); err != nil {
			return Step{}, err
		}
	}
	// A step excluded by when never runs, so the core gives it no command (just the --).
	if requireCommand && (!sawDashes || len(step.Command) == 0 && !step.Excluded) {
		return Step{}, errors.New("no command: give it after -- (run --name=NAME [flags] -- COMMAND ARGS...)")
	}
	if sawDashes && len(step.Command) > 0 && step.Command[0] == "" {
		return Step{}, errors.New("the command after -- is an empty string")
	}
	return step, step.validate()
}

func (s *Step) set(name, value string) error {
	switch name {
	case "name":
		s.Name = value
	case "after":
		s.After = append(s.After, splitList(value)...)
	case "detached":
		s.Detached = append(s.Detached, splitList(value)...)
	case "on":
		s.OnSuccess, s.OnFailure = false, false
		for _, when := range splitList(value) {
			switch when {
			case "success":
				s.OnSuccess = true
			case "failure":
				s.OnFailure = true
			default:
				return fmt.Errorf("flag --on: %q is neither success nor failure", when)
			}
		}
	case "timeout":
		seconds, err := strconv.ParseFloat(value, 64)
		if err != nil || seconds < 0 || math.IsInf(seconds, 0) || math.IsNaN(seconds) {
			return fmt.Errorf("flag --timeout: %q is not a number of seconds (0 or more)", value)
		}
		if seconds > float64(math.MaxInt64/int64(time.Second)) {
			return fmt.Errorf("flag --timeout: %q seconds is too long", value)
		}
		s.Timeout = time.Duration(seconds * float64(time.Second))
	case "run-dir":
		if value == "" {
			return errors.New("flag --run-dir: empty")
		}
		s.RunDir = value
	case "termination-log":
		s.TerminationLog = value
	case "message-limit":
		limit, err := strconv.Atoi(value)
		if err != nil || limit < 0 {
			return fmt.Errorf("flag --message-limit: %q is not a number of bytes (0 or more)", value)
		}
		s.MessageLimit = limit
	case "log-dir":
		s.LogDir = value
	case "log-limit":
		limit, err := strconv.ParseInt(value, 10, 64)
		if err != nil || limit < 0 {
			return fmt.Errorf("flag --log-limit: %q is not a number of bytes (0 or more)", value)
		}
		s.LogLimit = limit
	case "mask":
		if value == "" || strings.Contains(value, "=") {
			return fmt.Errorf("flag --mask: %q is not an environment variable name", value)
		}
		s.Mask = append(s.Mask, value)
	case "ignore-failure":
		s.IgnoreFailure = value == "true"
	case "detach":
		s.Detach = value == "true"
	case "excluded":
		s.Excluded = value == "true"
	}
	return nil
}

func (s Step) validate() error {
	if s.Name == "" {
		return errors.New("flag --name is required")
	}
	if !isContainerName(s.Name) {
		return fmt.Errorf("flag --name: %q is not a container name (lower-case letters, digits and -, at most 63)", s.Name)
	}
	after := map[string]bool{}
	for _, name := range s.After {
		switch {
		case !isContainerName(name):
			return fmt.Errorf("flag --after: %q is not a container name", name)
		case name == s.Name:
			return fmt.Errorf("flag --after: %s cannot wait for itself", name)
		case after[name]:
			return fmt.Errorf("flag --after: %s given twice", name)
		}
		after[name] = true
	}
	for _, name := range s.Detached {
		if !after[name] {
			return fmt.Errorf("flag --detached: %q is not in --after", name)
		}
	}
	return nil
}

func isContainerName(name string) bool {
	return len(name) <= 63 && containerName.MatchString(name)
}

func splitList(value string) []string {
	var items []string
	for _, item := range strings.Split(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

func (s Step) isDetached(name string) bool {
	for _, detached := range s.Detached {
		if detached == name {
			return true
		}
	}
	return false
}
