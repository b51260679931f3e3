package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRun(t *testing.T) {
	defaults := Step{RunDir: DefaultRunDir, TerminationLog: DefaultTerminationLog, MessageLimit: DefaultMessageLimit}
	base := func(edit func(*Step)) Step {
		s := defaults
		s.Name, s.OnSuccess, s.Command = "step-b", true, []string{"sh", "-c", "echo hi"}
		edit(&s)
		return s
	}
	cases := []struct {
		desc string
		args []string
		want Step
	}{
		{"minimal: on success by default", []string{"--name=step-b", "--", "sh", "-c", "echo hi"}, base(func(*Step) {})},
		{"every flag", []string{"--name=step-b", "--after=step-a,step-c", "--detached=step-c", "--on=success,failure",
			"--ignore-failure", "--detach", "--excluded", "--timeout=30", "--run-dir=/r", "--termination-log=/t", "--message-limit=61",
			"--", "sh", "-c", "echo hi"},
			base(func(s *Step) {
				s.After, s.Detached, s.OnFailure = []string{"step-a", "step-c"}, []string{"step-c"}, true
				s.IgnoreFailure, s.Detach, s.Excluded, s.Timeout, s.RunDir, s.TerminationLog = true, true, true, 30*time.Second, "/r", "/t"
				s.MessageLimit = 61
			})},
		{"values as the next argument", []string{"--name", "step-b", "--after", "step-a", "--", "sh", "-c", "echo hi"},
			base(func(s *Step) { s.After = []string{"step-a"} })},
		{"repeated lists add up", []string{"--name=step-b", "--after=step-a", "--after=step-c", "--", "sh", "-c", "echo hi"},
			base(func(s *Step) { s.After = []string{"step-a", "step-c"} })},
		{"empty on: never", []string{"--name=step-b", "--on=", "--", "sh", "-c", "echo hi"},
			base(func(s *Step) { s.OnSuccess = false })},
		{"on failure only", []string{"--name=step-b", "--on=failure", "--", "sh", "-c", "echo hi"},
			base(func(s *Step) { s.OnSuccess, s.OnFailure = false, true })},
		{"empty after", []string{"--name=step-b", "--after=", "--", "sh", "-c", "echo hi"}, base(func(*Step) {})},
		{"booleans with values", []string{"--name=step-b", "--detach=false", "--excluded=true", "--", "sh", "-c", "echo hi"},
			base(func(s *Step) { s.Excluded = true })},
		{"fractional timeout", []string{"--name=step-b", "--timeout=0.5", "--", "sh", "-c", "echo hi"},
			base(func(s *Step) { s.Timeout = 500 * time.Millisecond })},
		{"an excluded step needs no command", []string{"--name=step-b", "--excluded", "--"},
			base(func(s *Step) { s.Excluded, s.Command = true, nil })},
		{"the command keeps its own flags", []string{"--name=step-b", "--", "ls", "--all", "--", "-x"},
			base(func(s *Step) { s.Command = []string{"ls", "--all", "--", "-x"} })},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			got, err := ParseRun(c.args, defaults, true)
			if err != nil {
				t.Fatalf("ParseRun: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("ParseRun =\n %+v\nwant\n %+v", got, c.want)
			}
		})
	}
}

func TestParseRunErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"--nmae=step-b", "--", "true"}, "--nmae"},
		{[]string{"--", "true"}, "--name is required"},
		{[]string{"--name=Step_B", "--", "true"}, "--name"},
		{[]string{"--name=step-b"}, "no command"},
		{[]string{"--name=step-b", "--"}, "no command"},
		{[]string{"--name=step-b", "--excluded"}, "no command"},
		{[]string{"--name=step-b", "--", ""}, "empty"},
		{[]string{"--name=step-b", "true"}, `"true"`},
		{[]string{"--name=step-b", "--timeout=-1", "--", "true"}, "--timeout"},
		{[]string{"--name=step-b", "--timeout=soon", "--", "true"}, "--timeout"},
		{[]string{"--name=step-b", "--timeout=NaN", "--", "true"}, "--timeout"},
		{[]string{"--name=step-b", "--on=sometimes", "--", "true"}, "--on"},
		{[]string{"--name=step-b", "--message-limit=-1", "--", "true"}, "--message-limit"},
		{[]string{"--name=step-b", "--message-limit=4k", "--", "true"}, "--message-limit"},
		{[]string{"--name=step-b", "--after=step-b", "--", "true"}, "itself"},
		{[]string{"--name=step-b", "--after=step-a,step-a", "--", "true"}, "twice"},
		{[]string{"--name=step-b", "--after=a/b", "--", "true"}, "--after"},
		{[]string{"--name=step-b", "--after=step-a", "--detached=step-c", "--", "true"}, "--detached"},
		{[]string{"--name=step-b", "--name=step-c", "--", "true"}, "twice"},
		{[]string{"--name=step-b", "--detach=maybe", "--", "true"}, "--detach"},
		{[]string{"--name=step-b", "--run-dir", "--", "true"}, "--run-dir needs a value"},
		{[]string{"--name=step-b", "--run-dir="}, "--run-dir"},
		{[]string{"--name"}, "--name needs a value"},
		{[]string{"-x", "--", "true"}, `"-x"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			_, err := ParseRun(c.args, Step{RunDir: DefaultRunDir}, true)
			if err == nil {
				t.Fatalf("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestParseRunWithoutCommandForDecide(t *testing.T) {
	step, err := ParseRun([]string{"--name=step-b", "--after=step-a"}, Step{}, false)
	if err != nil || step.Name != "step-b" || len(step.Command) != 0 {
		t.Fatalf("ParseRun = %+v, %v", step, err)
	}
}
