package main

import "testing"

func code(i int) *int { return &i }

func ok(name string) Result { return Result{Name: name, State: StateSucceeded, ExitCode: code(0)} }
func bad(name string) Result {
	return Result{Name: name, State: StateFailed, ExitCode: code(1), Failing: true}
}
func ignored(name string) Result { return Result{Name: name, State: StateFailed, ExitCode: code(1)} }
func early(name string) Result   { return Result{Name: name, State: StateSucceeded, ExitCode: code(78)} }
func skipped(name string) Result { return Result{Name: name, State: StateSkipped} }

func results(rs ...Result) map[string]Result {
	m := map[string]Result{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

func TestDecide(t *testing.T) {
	onSuccess := Step{Name: "step-c", After: []string{"step-a", "step-b"}, OnSuccess: true}
	onFailure := Step{Name: "step-c", After: []string{"step-a", "step-b"}, OnFailure: true}
	always := Step{Name: "step-c", After: []string{"step-a", "step-b"}, OnSuccess: true, OnFailure: true}
	never := Step{Name: "step-c", After: []string{"step-a", "step-b"}}
	detached := Step{Name: "step-c", After: []string{"step-a", "step-b"}, Detached: []string{"step-b"}, OnSuccess: true}
	excluded := always
	excluded.Excluded = true
	first := Step{Name: "step-a", OnSuccess: true}

	cases := []struct {
		desc    string
		step    Step
		results map[string]Result
		started []string
		want    Decision
	}{
		{"the first step runs at once", first, nil, nil, Decision{ActionRun, ""}},
		{"the first step on failure only is skipped", Step{Name: "step-a", OnFailure: true}, nil, nil, Decision{ActionSkip, ReasonSkipped}},
		{"nothing done yet: wait", onSuccess, nil, nil, Decision{ActionWait, ""}},
		{"one of two done: wait", onSuccess, results(ok("step-a")), nil, Decision{ActionWait, ""}},
		{"a started marker is not a result: wait", onSuccess, results(ok("step-a")), []string{"step-b"}, Decision{ActionWait, ""}},
		{"both done: run", onSuccess, results(ok("step-a"), ok("step-b")), nil, Decision{ActionRun, ""}},
		{"a dependency failed: on success skips", onSuccess, results(ok("step-a"), bad("step-b")), nil, Decision{ActionSkip, ReasonSkipped}},
		{"a dependency failed: on failure runs", onFailure, results(ok("step-a"), bad("step-b")), nil, Decision{ActionRun, ""}},
		{"not failing: on failure skips", onFailure, results(ok("step-a"), ok("step-b")), nil, Decision{ActionSkip, ReasonSkipped}},
		{"both: runs when failing", always, results(bad("step-a"), ok("step-b")), nil, Decision{ActionRun, ""}},
		{"both: runs when not failing", always, results(ok("step-a"), ok("step-b")), nil, Decision{ActionRun, ""}},
		{"never: skipped when not failing", never, results(ok("step-a"), ok("step-b")), nil, Decision{ActionSkip, ReasonSkipped}},
		{"never: skipped when failing", never, results(bad("step-a"), ok("step-b")), nil, Decision{ActionSkip, ReasonSkipped}},
		{"an ignored failure is not failing", onSuccess, results(ok("step-a"), ignored("step-b")), nil, Decision{ActionRun, ""}},
		{"skipped dependencies count as done", onSuccess, results(skipped("step-a"), skipped("step-b")), nil, Decision{ActionRun, ""}},
		{"a failure elsewhere in the run counts", onSuccess, results(ok("step-a"), ok("step-b"), bad("step-x")), nil, Decision{ActionSkip, ReasonSkipped}},
		{"a failure elsewhere does not end the wait", onSuccess, results(ok("step-a"), bad("step-x")), nil, Decision{ActionWait, ""}},
		{"early exit ends the wait", onSuccess, results(early("step-x")), nil, Decision{ActionSkip, ReasonEarlyExit}},
		{"early exit of a dependency", always, results(early("step-a"), ok("step-b")), nil, Decision{ActionSkip, ReasonEarlyExit}},
		{"early exit beats excluded", excluded, results(early("step-a")), nil, Decision{ActionSkip, ReasonEarlyExit}},
		{"early exit beats failure", onFailure, results(early("step-a"), bad("step-b")), nil, Decision{ActionSkip, ReasonEarlyExit}},
		{"excluded waits its turn", excluded, results(ok("step-a")), nil, Decision{ActionWait, ""}},
		{"excluded is skipped in its turn", excluded, results(ok("step-a"), bad("step-b")), nil, Decision{ActionSkip, ReasonSkipped}},
		{"a detached dependency: started is enough", detached, results(ok("step-a")), []string{"step-b"}, Decision{ActionRun, ""}},
		{"a detached dependency: a result is enough", detached, results(ok("step-a"), skipped("step-b")), nil, Decision{ActionRun, ""}},
		{"a detached dependency not started: wait", detached, results(ok("step-a")), nil, Decision{ActionWait, ""}},
		{"a non-detached dependency started only: wait", detached, nil, []string{"step-a", "step-b"}, Decision{ActionWait, ""}},
		{"exit 78 with failing false and a failure: early exit first", onSuccess, results(bad("step-a"), early("step-b")), nil, Decision{ActionSkip, ReasonEarlyExit}},
		{"a skipped result has no exit code", onSuccess, results(Result{Name: "step-a", State: StateSkipped}, ok("step-b")), nil, Decision{ActionRun, ""}},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			snap := Snapshot{Results: c.results, Started: map[string]bool{}}
			for _, name := range c.started {
				snap.Started[name] = true
			}
			if got := Decide(c.step, snap); got != c.want {
				t.Errorf("Decide = %+v, want %+v", got, c.want)
			}
		})
	}
}
