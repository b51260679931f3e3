package main

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"
)

// argsTable is tests/core/testdata/entrypoint-args.json: argument cases that the core's stepping.parse_args
// (tests/core/test_stepping_args.py) must read exactly as ParseRun does.
const argsTable = "../../tests/core/testdata/entrypoint-args.json"

type tableStep struct {
	Name           string   `json:"name"`
	After          []string `json:"after"`
	Detached       []string `json:"detached"`
	OnSuccess      bool     `json:"onSuccess"`
	OnFailure      bool     `json:"onFailure"`
	IgnoreFailure  bool     `json:"ignoreFailure"`
	Detach         bool     `json:"detach"`
	Excluded       bool     `json:"excluded"`
	TimeoutSeconds float64  `json:"timeoutSeconds"`
	RunDir         string   `json:"runDir"`
	TerminationLog string   `json:"terminationLog"`
	MessageLimit   int      `json:"messageLimit"`
	Command        []string `json:"command"`
}

func (t tableStep) step() Step {
	nonNil := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	return Step{Name: t.Name, After: nonNil(t.After), Detached: nonNil(t.Detached), OnSuccess: t.OnSuccess,
		OnFailure: t.OnFailure, IgnoreFailure: t.IgnoreFailure, Detach: t.Detach, Excluded: t.Excluded,
		Timeout: time.Duration(t.TimeoutSeconds * float64(time.Second)), RunDir: t.RunDir,
		TerminationLog: t.TerminationLog, MessageLimit: t.MessageLimit, Command: nonNil(t.Command)}
}

func TestParseRunTable(t *testing.T) {
	raw, err := os.ReadFile(argsTable)
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Defaults json.RawMessage `json:"defaults"`
		Cases    []struct {
			Args  []string        `json:"args"`
			Step  json.RawMessage `json:"step"`
			Error string          `json:"error"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	defaults := Step{RunDir: DefaultRunDir, TerminationLog: DefaultTerminationLog, MessageLimit: DefaultMessageLimit}
	for _, c := range table.Cases {
		got, err := ParseRun(c.Args, defaults, false)
		if c.Error != "" {
			if err == nil {
				t.Errorf("%q: accepted (%+v), want refused: %s", c.Args, got, c.Error)
			}
			continue
		}
		var want tableStep
		if err := json.Unmarshal(table.Defaults, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(c.Step, &want); err != nil { // the case's fields over the defaults
			t.Fatal(err)
		}
		if err != nil {
			t.Errorf("%q: %v", c.Args, err)
		} else if !reflect.DeepEqual(got, want.step()) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.Args, got, want.step())
		}
	}
	if len(table.Cases) < 20 {
		t.Fatalf("only %d cases read from %s", len(table.Cases), argsTable)
	}
}
