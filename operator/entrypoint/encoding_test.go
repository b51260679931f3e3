package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestQuoteIsPythonsJSON(t *testing.T) {
	// Expected strings are Python's json.dumps(s).
	cases := map[string]string{
		"plain":                `"plain"`,
		`quote " back \ slash`: `"quote \" back \\ slash"`,
		"a\nb\rc\td\be\ff":     `"a\nb\rc\td\be\ff"`,
		"\x00\x01\x1f\x7f":     `"\u0000\u0001\u001f\u007f"`,
		"<tag> & / done":       `"<tag> & / done"`,
		"café…":                `"caf\u00e9\u2026"`,
		"\u2028\u2029":         `"\u2028\u2029"`,
		"emoji 😀":              `"emoji \ud83d\ude00"`,
		"bad \xff utf-8":       `"bad \ufffd utf-8"`,
	}
	for in, want := range cases {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
		var back string
		if in != "bad \xff utf-8" && (json.Unmarshal([]byte(quote(in)), &back) != nil || back != in) {
			t.Errorf("quote(%q) does not read back: %q", in, back)
		}
	}
}

func TestEncodeResult(t *testing.T) {
	r := Result{Name: "step-b", State: StateSucceeded, ExitCode: intp(0), StartedAt: i64(1764579600123),
		FinishedAt: i64(1764579600456)}
	want := `{"name":"step-b","state":"succeeded","exitCode":0,"startedAt":1764579600123,"finishedAt":1764579600456,"reason":null,"message":null,"failing":false,"outputBytes":null}`
	if got := string(EncodeResult(r)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	s := Result{Name: "step-c", State: StateSkipped, FinishedAt: i64(5), Reason: reasonp(ReasonSkipped), Message: message("Skipped: é.")}
	want = `{"name":"step-c","state":"skipped","exitCode":null,"startedAt":null,"finishedAt":5,"reason":"Skipped","message":"Skipped: \u00e9.","failing":false,"outputBytes":null}`
	if got := string(EncodeResult(s)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var back Result
	if err := json.Unmarshal(EncodeResult(s), &back); err != nil || *back.Message != "Skipped: é." {
		t.Errorf("does not read back: %v", err)
	}
}

func TestEncodeMessage(t *testing.T) {
	failed := Result{Name: "step-b", State: StateFailed, ExitCode: intp(143), StartedAt: i64(1764579600123),
		FinishedAt: i64(1764579600456), Reason: reasonp(ReasonStepTimeout), Message: message("The step timed out."), Failing: true}
	skipped := Result{Name: "step-c", State: StateSkipped, FinishedAt: i64(1764579600456), Reason: reasonp(ReasonSkipped),
		Message: message("Skipped: why.")}
	ok := Result{Name: "step-a", State: StateSucceeded, ExitCode: intp(0), StartedAt: i64(1764579600123), FinishedAt: i64(1764579600124)}
	cases := []struct {
		r     Result
		limit int
		want  string
	}{
		{failed, 4096, `{"s":"failed","x":143,"a":1764579600123,"d":333,"r":"StepTimeout","m":"The step timed out."}`},
		{failed, 70, `{"s":"failed","x":143,"a":1764579600123,"d":333,"r":"StepTimeout"}`},
		{failed, 61, `{"s":"failed","x":143,"a":1764579600123,"d":333}`},
		{failed, 10, `{"s":"failed","x":143,"a":1764579600123,"d":333}`}, // the least it can say
		{skipped, 4096, `{"s":"skipped","f":1764579600456,"r":"Skipped","m":"Skipped: why."}`},
		{ok, 4096, `{"s":"succeeded","x":0,"a":1764579600123,"d":1}`},
	}
	for _, c := range cases {
		if got := string(EncodeMessage(c.r, c.limit)); got != c.want {
			t.Errorf("limit %d: got %s, want %s", c.limit, got, c.want)
		}
	}
	long := failed
	long.Message = message(strings.Repeat("€", 2000))
	if got := EncodeMessage(long, 4096); len(got) > 4096 || strings.Contains(string(got), `"m"`) {
		t.Errorf("a message of %d bytes was kept", len(got))
	}
}

func i64(i int64) *int64 { return &i }

// The output's byte count is in both forms, and is dropped from the termination message after the message and
// the reason when it does not fit.
func TestOutputBytesInBothForms(t *testing.T) {
	out := int64(12345)
	r := Result{Name: "step-a", State: StateSucceeded, ExitCode: intp(0), StartedAt: i64(1764579600123),
		FinishedAt: i64(1764579600456), OutputBytes: &out}
	if got := string(EncodeResult(r)); !strings.HasSuffix(got, `"failing":false,"outputBytes":12345}`) {
		t.Errorf("result file %s", got)
	}
	full := `{"s":"succeeded","x":0,"a":1764579600123,"d":333,"o":12345}`
	if got := string(EncodeMessage(r, 4096)); got != full {
		t.Errorf("message %s", got)
	}
	if got := string(EncodeMessage(r, len(full)-1)); got != `{"s":"succeeded","x":0,"a":1764579600123,"d":333}` {
		t.Errorf("cut message %s", got)
	}
}
