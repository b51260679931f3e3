package main

import "sort"

// Action is what a step does next.
type Action string

const (
	ActionWait Action = "wait"
	ActionRun  Action = "run"
	ActionSkip Action = "skip"
)

// Reason is a result's reason (docs/in-pod.md, "What a step records"); "" is JSON null.
type Reason string

const (
	ReasonNone                 Reason = ""
	ReasonEarlyExit            Reason = "EarlyExit"
	ReasonSkipped              Reason = "Skipped"
	ReasonStepTimeout          Reason = "StepTimeout"
	ReasonStopped              Reason = "Stopped"
	ReasonImagePullFailed      Reason = "ImagePullFailed"
	ReasonCommandNotFound      Reason = "CommandNotFound"
	ReasonCommandNotExecutable Reason = "CommandNotExecutable"
)

// EarlyExitCode is the exit code with which a step ends the run early, successfully (Drone's 78).
const EarlyExitCode = 78

// Snapshot is what the run directory holds at one moment: the results (by container name) and the names
// with a started marker.
type Snapshot struct {
	Results map[string]Result
	Started map[string]bool
}

// Decision is the answer of Decide.
type Decision struct {
	Action Action
	Reason Reason
}

// Decide is the whole decision of a step, purely computed from its contract and a snapshot of the run
// directory; podline.core.stepping.decide computes the same (tests/core/test_stepping_agreement.py).
//
// It waits until each of After has a result (a detached one: a started marker or a result — a detached
// step that was skipped never starts), or until any result has exit code 78. Then, in this order: an early
// exit skips it (EarlyExit); --excluded skips it (Skipped); a failing run runs it only with --on=failure,
// a run that is not failing only with --on=success (otherwise Skipped).
func Decide(step Step, snap Snapshot) Decision {
	early := earlyExit(snap) != ""
	if !early && !dependenciesDone(step, snap) {
		return Decision{ActionWait, ReasonNone}
	}
	switch {
	case early:
		return Decision{ActionSkip, ReasonEarlyExit}
	case step.Excluded:
		return Decision{ActionSkip, ReasonSkipped}
	case failing(snap) != "":
		return runIf(step.OnFailure)
	default:
		return runIf(step.OnSuccess)
	}
}

func runIf(on bool) Decision {
	if on {
		return Decision{ActionRun, ReasonNone}
	}
	return Decision{ActionSkip, ReasonSkipped}
}

func dependenciesDone(step Step, snap Snapshot) bool {
	for _, name := range step.After {
		if _, done := snap.Results[name]; done {
			continue
		}
		if step.isDetached(name) && snap.Started[name] {
			continue
		}
		return false
	}
	return true
}

// earlyExit names a result with exit code 78 (the first by name, for messages), or "".
func earlyExit(snap Snapshot) string {
	for _, name := range sortedNames(snap.Results) {
		if code := snap.Results[name].ExitCode; code != nil && *code == EarlyExitCode {
			return name
		}
	}
	return ""
}

// failing names a result that makes the run fail (the first by name, for messages), or "".
func failing(snap Snapshot) string {
	for _, name := range sortedNames(snap.Results) {
		if snap.Results[name].Failing {
			return name
		}
	}
	return ""
}

func sortedNames(results map[string]Result) []string {
	names := make([]string, 0, len(results))
	for name := range results {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
