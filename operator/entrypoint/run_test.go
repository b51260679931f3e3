package main

// Real tests: the test binary runs as the entrypoint itself (TestMain), with real processes, signals and a
// temporary run directory. No timing is asserted; waits have generous deadlines.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const beEntrypoint = "PODLINE_ENTRYPOINT_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(beEntrypoint) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const deadline = 60 * time.Second

// pod is a temporary run directory and a place for the termination messages.
type pod struct {
	t      *testing.T
	run    string
	logs   string
	marker string
}

func newPod(t *testing.T) *pod {
	dir := t.TempDir()
	p := &pod{t: t, run: filepath.Join(dir, "run"), logs: filepath.Join(dir, "logs"), marker: filepath.Join(dir, "podline-runner")}
	for _, d := range []string{p.run, p.logs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// step is one step container: a running entrypoint and its output.
type step struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	exit           int
	messageLimit   int
}

// start starts `run --name=NAME --run-dir=... ARGS` (ARGS end with -- and the command).
func (p *pod) start(name string, args ...string) *step {
	p.t.Helper()
	return p.startWith(nil, name, args...)
}

// startWith is start with more environment variables.
func (p *pod) startWith(env []string, name string, args ...string) *step {
	p.t.Helper()
	s := &step{name: name, done: make(chan struct{}), messageLimit: DefaultMessageLimit}
	for _, arg := range args {
		if limit := strings.TrimPrefix(arg, "--message-limit="); limit != arg {
			s.messageLimit, _ = strconv.Atoi(limit)
		}
	}
	argv := append([]string{"run", "--name=" + name, "--run-dir=" + p.run}, args...)
	s.cmd = exec.Command(os.Args[0], argv...)
	s.cmd.Env = append(os.Environ(), beEntrypoint+"=1", runnerMarkerEnv+"="+p.marker,
		terminationLogEnv+"="+filepath.Join(p.logs, name))
	s.cmd.Env = append(s.cmd.Env, env...)
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() {
		err := s.cmd.Wait()
		var exit *exec.ExitError
		if err != nil && !errorsAs(err, &exit) {
			s.exit = -1
		} else if exit != nil {
			s.exit = exit.ExitCode()
		}
		close(s.done)
	}()
	p.t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
	return s
}

// wait waits for the step's entrypoint to exit and returns its result file, after checking that the
// termination message is the same JSON.
func (p *pod) wait(s *step) Result {
	p.t.Helper()
	select {
	case <-s.done:
	case <-time.After(deadline):
		p.t.Fatalf("%s did not finish within %s (stderr: %s)", s.name, deadline, s.stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(p.run, s.name+".json"))
	if err != nil {
		p.t.Fatalf("%s: no result file: %v (stderr: %s)", s.name, err, s.stderr.String())
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		p.t.Fatalf("%s: result %q: %v", s.name, data, err)
	}
	if !bytes.Equal(data, EncodeResult(r)) {
		p.t.Errorf("%s: the result file %q is not in the contract's form", s.name, data)
	}
	message, err := os.ReadFile(filepath.Join(p.logs, s.name))
	if want := EncodeMessage(r, s.messageLimit); err != nil || !bytes.Equal(message, want) {
		p.t.Errorf("%s: the termination message %q is not %q (%v)", s.name, message, want, err)
	}
	if r.Name != s.name || s.exit != r.ExitStatus() {
		p.t.Errorf("%s: result for %q, exit %d, want %d", s.name, r.Name, s.exit, r.ExitStatus())
	}
	return r
}

// run starts a step and waits for it.
func (p *pod) runStep(name string, args ...string) (*step, Result) {
	s := p.start(name, args...)
	return s, p.wait(s)
}

func (p *pod) waitForFile(path string) {
	p.t.Helper()
	for end := time.Now().Add(deadline); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	p.t.Fatalf("%s did not appear within %s", path, deadline)
}

// waitForInotify waits until the process has an inotify descriptor open: it is waiting for its turn.
func waitForInotify(t *testing.T, pid int) {
	t.Helper()
	for end := time.Now().Add(deadline); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); target == "anon_inode:inotify" {
				return
			}
		}
	}
	t.Fatalf("process %d never waited on inotify", pid)
}

func (p *pod) expect(r Result, state State, exitCode *int, reason Reason) {
	p.t.Helper()
	if r.State != state || !reflect.DeepEqual(r.ExitCode, exitCode) || deref(r.Reason) != reason {
		p.t.Errorf("%s: %s exit %v reason %q (message %v), want %s exit %v reason %q",
			r.Name, r.State, show(r.ExitCode), deref(r.Reason), show(r.Message), state, show(exitCode), reason)
	}
}

func show[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*target = e
	return ok
}

func TestChainInOrder(t *testing.T) {
	p := newPod(t)
	// Started in reverse order: each waits for the one before.
	c := p.start("step-c", "--after=step-b", "--", "sh", "-c", "echo c")
	b := p.start("step-b", "--after=step-a", "--", "sh", "-c", "echo b; echo to-stderr >&2")
	_, a := p.runStep("step-a", "--", "echo", "a")
	rb, rc := p.wait(b), p.wait(c)
	for _, r := range []Result{a, rb, rc} {
		p.expect(r, StateSucceeded, code(0), "")
		if r.Message != nil || r.Failing || r.StartedAt == nil || *r.FinishedAt < *r.StartedAt {
			t.Errorf("%+v", r)
		}
	}
	if *rb.StartedAt < *a.FinishedAt || *rc.StartedAt < *rb.FinishedAt {
		t.Errorf("out of order: a ended %d, b started %d, b ended %d, c started %d", *a.FinishedAt, *rb.StartedAt, *rb.FinishedAt, *rc.StartedAt)
	}
	// Output reaches the container's stdout, stderr merged into it in the order written (as in Drone's log);
	// the entrypoint itself says nothing.
	if b.stdout.String() != "b\nto-stderr\n" || b.stderr.String() != "" || c.stdout.String() != "c\n" {
		t.Errorf("output: %q %q %q", b.stdout.String(), b.stderr.String(), c.stdout.String())
	}
	for _, name := range []string{"step-a", "step-b", "step-c"} {
		if data, err := os.ReadFile(filepath.Join(p.run, name+".started")); err != nil || len(data) != 13 {
			t.Errorf("started marker of %s: %q %v", name, data, err)
		}
	}
	entries, _ := os.ReadDir(p.run)
	for _, entry := range entries {
		if strings.HasPrefix(entry.Name(), ".") {
			t.Errorf("a temporary file was left: %s", entry.Name())
		}
	}
}

func TestMessageLimit(t *testing.T) {
	p := newPod(t)
	p.runStep("step-a", "--message-limit=61", "--", "sh", "-c", "exit 3")
	message, _ := os.ReadFile(filepath.Join(p.logs, "step-a"))
	var compact map[string]any
	if err := json.Unmarshal(message, &compact); err != nil || len(message) > 61 || compact["s"] != "failed" || compact["x"] != 3.0 {
		t.Errorf("termination message %q (%d bytes): %v", message, len(message), err)
	}
	if _, has := compact["m"]; has {
		t.Errorf("the message was kept: %q", message)
	}
}

func TestResultFileShape(t *testing.T) {
	p := newPod(t)
	p.runStep("step-a", "--", "true")
	data, _ := os.ReadFile(filepath.Join(p.run, "step-a.json"))
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for key := range fields {
		keys = append(keys, key)
	}
	want := []string{"exitCode", "failing", "finishedAt", "message", "name", "outputBytes", "reason", "startedAt", "state"}
	if got := strings.Join(sortStrings(keys), ","); got != strings.Join(want, ",") {
		t.Errorf("keys %s", got)
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestFailureSkipsOnSuccessAndRunsOnFailure(t *testing.T) {
	p := newPod(t)
	_, a := p.runStep("step-a", "--", "sh", "-c", "exit 3")
	_, b := p.runStep("step-b", "--after=step-a", "--on=success", "--", "sh", "-c", "echo never")
	notify, n := p.runStep("notify", "--after=step-b", "--on=failure", "--", "echo", "notified")
	_, always := p.runStep("always", "--after=notify", "--on=success,failure", "--", "true")
	p.expect(a, StateFailed, code(3), "")
	p.expect(b, StateSkipped, nil, ReasonSkipped)
	p.expect(n, StateSucceeded, code(0), "")
	p.expect(always, StateSucceeded, code(0), "")
	if !a.Failing || b.Failing || b.StartedAt != nil || notify.stdout.String() != "notified\n" {
		t.Errorf("a %+v b %+v", a, b)
	}
	if _, err := os.Stat(filepath.Join(p.run, "step-b.started")); err == nil {
		t.Errorf("a skipped step wrote a started marker")
	}
}

func TestIgnoredFailure(t *testing.T) {
	p := newPod(t)
	_, a := p.runStep("step-a", "--ignore-failure", "--", "sh", "-c", "exit 5")
	_, b := p.runStep("step-b", "--after=step-a", "--", "true")
	p.expect(a, StateFailed, code(5), "")
	p.expect(b, StateSucceeded, code(0), "")
	if a.Failing {
		t.Errorf("an ignored failure is failing")
	}
}

func TestEarlyExit(t *testing.T) {
	p := newPod(t)
	// step-z never comes: the early exit alone wakes step-c.
	c := p.start("step-c", "--after=step-z", "--on=success,failure", "--", "echo", "never")
	_, a := p.runStep("step-a", "--", "sh", "-c", "exit 78")
	_, b := p.runStep("step-b", "--after=step-a", "--", "echo", "never")
	rc := p.wait(c)
	p.expect(a, StateSucceeded, code(78), "")
	p.expect(b, StateSkipped, nil, ReasonEarlyExit)
	p.expect(rc, StateSkipped, nil, ReasonEarlyExit)
	if c.stdout.Len() != 0 || a.Failing {
		t.Errorf("ran anyway: %q", c.stdout.String())
	}
}

func TestExcluded(t *testing.T) {
	p := newPod(t)
	p.runStep("step-a", "--", "true")
	s, b := p.runStep("step-b", "--after=step-a", "--excluded", "--", "echo", "never")
	p.expect(b, StateSkipped, nil, ReasonSkipped)
	if s.stdout.Len() != 0 {
		t.Errorf("ran anyway")
	}
}

func TestExcludedWithoutCommand(t *testing.T) {
	p := newPod(t)
	p.runStep("step-a", "--", "true")
	// As the core gives it: the runner image, no command.
	_, b := p.runStep("step-b", "--after=step-a", "--excluded", "--")
	p.expect(b, StateSkipped, nil, ReasonSkipped)
	_, c := p.runStep("step-c", "--after=step-b", "--", "true")
	p.expect(c, StateSucceeded, code(0), "")
}

func TestDetachedDependency(t *testing.T) {
	p := newPod(t)
	// A detached service-like step that runs until stopped.
	ready := filepath.Join(t.TempDir(), "ready")
	svc := p.start("db", "--detach", "--", "sh", "-c", "echo db up; touch "+ready+"; exec sleep 300")
	_, b := p.runStep("step-b", "--after=db", "--detached=db", "--", "echo", "b")
	p.expect(b, StateSucceeded, code(0), "")
	if _, err := os.Stat(filepath.Join(p.run, "db.json")); err == nil {
		t.Errorf("the detached step ended before its dependent")
	}
	p.waitForFile(ready)
	// The pod is being stopped: the kubelet sends SIGTERM to the container's PID 1.
	if err := svc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := p.wait(svc)
	p.expect(r, StateFailed, code(143), ReasonStopped)
	if r.Failing || svc.stdout.String() != "db up\n" {
		t.Errorf("a detached step's failure is not failing: %+v %q", r, svc.stdout.String())
	}
}

func TestDetachedDependencySkipped(t *testing.T) {
	p := newPod(t)
	p.runStep("db", "--detach", "--excluded", "--", "sleep", "300")
	_, b := p.runStep("step-b", "--after=db", "--detached=db", "--", "true")
	p.expect(b, StateSucceeded, code(0), "")
}

func TestStandIn(t *testing.T) {
	p := newPod(t)
	flag := filepath.Join(t.TempDir(), "ran")
	p.runStep("step-a", "--", "true")
	// From here on the steps run on the runner image (the marker is shared by the steps of this fake pod).
	if err := os.WriteFile(p.marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, b := p.runStep("step-b", "--after=step-a", "--", "touch", flag)
	_, c := p.runStep("step-c", "--after=step-b", "--", "touch", flag)
	_, d := p.runStep("step-d", "--after=step-c", "--on=failure", "--", "touch", flag)
	p.expect(b, StateFailed, code(1), ReasonImagePullFailed)
	p.expect(c, StateSkipped, nil, ReasonSkipped) // dependents go on, in order
	p.expect(d, StateFailed, code(1), ReasonImagePullFailed)
	if _, err := os.Stat(flag); err == nil {
		t.Errorf("the stand-in ran the command")
	}
	if !b.Failing || b.StartedAt == nil || b.Message == nil || !strings.Contains(*b.Message, "killed.podline.dev/step-b") {
		t.Errorf("%+v", b)
	}
}

func TestCommandNotFoundOrNotExecutable(t *testing.T) {
	script := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(garbage, []byte("\x00\x01\x02 not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	noInterpreter := filepath.Join(t.TempDir(), "nointerp")
	if err := os.WriteFile(noInterpreter, []byte("#!/no/such/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir() // in PATH: one executable, one not
	if err := os.WriteFile(filepath.Join(bin, "hello-podline"), []byte("#!/bin/sh\necho found \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "noexec-podline"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	for _, c := range []struct {
		command  string
		exitCode int
		reason   Reason
	}{
		{"no-such-command-podline", 127, ReasonCommandNotFound},
		{"/no/such/file", 127, ReasonCommandNotFound},
		{script, 126, ReasonCommandNotExecutable},
		{t.TempDir(), 126, ReasonCommandNotExecutable},
		{garbage, 126, ReasonCommandNotExecutable},
		{noInterpreter, 127, ReasonCommandNotFound},
		{"noexec-podline", 126, ReasonCommandNotExecutable},
	} {
		t.Run(filepath.Base(c.command), func(t *testing.T) {
			p := newPod(t)
			_, r := p.runStep("step-a", "--", c.command, "x")
			p.expect(r, StateFailed, code(c.exitCode), c.reason)
			if r.Message == nil || !strings.Contains(*r.Message, c.command) || r.StartedAt == nil {
				t.Errorf("message %v", show(r.Message))
			}
		})
	}
	p := newPod(t)
	s, r := p.runStep("step-a", "--", "hello-podline", "x")
	p.expect(r, StateSucceeded, code(0), "")
	if s.stdout.String() != "found x\n" {
		t.Errorf("output %q", s.stdout.String())
	}
}

func TestTimeout(t *testing.T) {
	p := newPod(t)
	_, a := p.runStep("step-a", "--timeout=0.2", "--", "sleep", "300")
	p.expect(a, StateFailed, code(143), ReasonStepTimeout)
	if a.Message == nil || !strings.Contains(*a.Message, "timed out after 200ms") {
		t.Errorf("message %v", show(a.Message))
	}
	// The whole process group gets the SIGTERM, not only the shell.
	_, b := p.runStep("step-b", "--timeout=0.2", "--on=success,failure", "--", "sh", "-c", "sleep 300; echo after")
	p.expect(b, StateFailed, code(143), ReasonStepTimeout)
}

func TestTimeoutThenKill(t *testing.T) {
	if testing.Short() {
		t.Skip("waits the 5 s grace period")
	}
	p := newPod(t)
	// SIGTERM is ignored (inherited by sleep): SIGKILL follows 5 s later.
	_, a := p.runStep("step-a", "--timeout=0.2", "--", "sh", "-c", "trap '' TERM; sleep 300")
	p.expect(a, StateFailed, code(137), ReasonStepTimeout)
}

func TestStoppedWhileRunning(t *testing.T) {
	p := newPod(t)
	ready := filepath.Join(t.TempDir(), "ready")
	s := p.start("step-a", "--", "sh", "-c", "trap 'echo got TERM; exit 7' TERM; touch "+ready+"; while :; do sleep 0.05; done")
	p.waitForFile(ready)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := p.wait(s)
	p.expect(r, StateFailed, code(7), ReasonStopped)
	// (the shell may say on stderr, merged into the output, that its sleep was Terminated)
	if !strings.HasSuffix(s.stdout.String(), "got TERM\n") {
		t.Errorf("output %q", s.stdout.String())
	}
}

func TestStoppedWhileWaiting(t *testing.T) {
	p := newPod(t)
	s := p.start("step-b", "--after=step-a", "--", "echo", "never")
	waitForInotify(t, s.cmd.Process.Pid) // it is waiting (and has its signal handler)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := p.wait(s)
	p.expect(r, StateSkipped, nil, ReasonStopped)
	if s.stdout.Len() != 0 {
		t.Errorf("ran anyway")
	}
}

func TestSIGINTIsForwarded(t *testing.T) {
	p := newPod(t)
	s := p.start("step-a", "--", "sleep", "300")
	p.waitForFile(filepath.Join(p.run, "step-a.started")) // a signal before the command starts is kept for it
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.expect(p.wait(s), StateFailed, code(130), ReasonStopped)
}

func TestOrphansAreReapedWithoutStealingTheStatus(t *testing.T) {
	p := newPod(t)
	// The subshell exits at once, orphaning its child, which the entrypoint (a subreaper, as PID 1 would
	// be) reaps when it exits 9; the command's own status is 4.
	_, a := p.runStep("step-a", "--", "sh", "-c", `(sh -c "exit 9" &); (sh -c "sleep 0.1; exit 9" &); sleep 0.3; exit 4`)
	p.expect(a, StateFailed, code(4), "")
}

func TestStdinIsDevNull(t *testing.T) {
	p := newPod(t)
	reader, writer, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	// An entrypoint whose own stdin stays open: the command still reads end-of-file at once.
	argv := []string{"run", "--name=step-a", "--run-dir=" + p.run, "--", "sh", "-c", "cat; echo eof"}
	cmd := exec.Command(os.Args[0], argv...)
	cmd.Env = append(os.Environ(), beEntrypoint+"=1", runnerMarkerEnv+"="+p.marker, terminationLogEnv+"="+filepath.Join(p.logs, "step-a"))
	cmd.Stdin = reader
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reader.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || out.String() != "eof\n" {
			t.Errorf("%v, output %q", err, out.String())
		}
	case <-time.After(deadline):
		_ = cmd.Process.Kill()
		t.Fatal("the command read the entrypoint's stdin")
	}
}

func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--name=step-a", "--wait-for=x", "--", "true"}, "unknown flag --wait-for"},
		{[]string{"run", "--name=step-a", "--timeout=x", "--", "true"}, "--timeout"},
		{[]string{"run", "--name=step-a"}, "no command"},
		{[]string{"frobnicate"}, "unknown subcommand"},
		{[]string{}, "usage"},
		{[]string{"install"}, "exactly one argument"},
	} {
		cmd := exec.Command(os.Args[0], c.args...)
		cmd.Env = append(os.Environ(), beEntrypoint+"=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		exit, _ := err.(*exec.ExitError)
		if exit == nil || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: %v, stderr %q (want exit 2 and %q)", c.args, err, stderr.String(), c.want)
		}
	}
}

func TestMissingRunDir(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "run", "--name=step-a", "--run-dir="+filepath.Join(dir, "missing"), "--", "true")
	cmd.Env = append(os.Environ(), beEntrypoint+"=1", terminationLogEnv+"="+filepath.Join(dir, "log"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	exit, _ := err.(*exec.ExitError)
	if exit == nil || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "missing") {
		t.Errorf("%v, stderr %q", err, stderr.String())
	}
	data, _ := os.ReadFile(filepath.Join(dir, "log"))
	if !strings.Contains(string(data), `"s":"failed"`) {
		t.Errorf("termination message %q", data)
	}
}

func TestDecideSubcommand(t *testing.T) {
	in := `{"args": ["run", "--name=step-b", "--after=step-a", "--on=failure", "--", "true"],
		"results": {"step-a": {"name": "step-a", "state": "failed", "exitCode": 1, "startedAt": 1, "finishedAt": 2,
		"reason": null, "message": "x", "failing": true}}, "started": ["step-a"]}`
	cmd := exec.Command(os.Args[0], "decide")
	cmd.Env = append(os.Environ(), beEntrypoint+"=1")
	cmd.Stdin = strings.NewReader(in)
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != `{"action":"run","reason":null,"mask":[],"logDir":"","logLimit":67108864}` {
		t.Errorf("%v: %s", err, out)
	}
	cmd = exec.Command(os.Args[0], "decide")
	cmd.Env = append(os.Environ(), beEntrypoint+"=1")
	cmd.Stdin = strings.NewReader(`{"args": ["--name=step-b", "--after=step-a", "--mask=A,B", "--mask=C", "--log-dir=/l", "--log-limit=5"], "results": {}, "started": []}`)
	if out, err = cmd.Output(); err != nil || strings.TrimSpace(string(out)) != `{"action":"wait","reason":null,"mask":["A,B","C"],"logDir":"/l","logLimit":5}` {
		t.Errorf("%v: %s", err, out)
	}
}

func TestEncodeSubcommand(t *testing.T) {
	cmd := exec.Command(os.Args[0], "encode")
	cmd.Env = append(os.Environ(), beEntrypoint+"=1")
	cmd.Stdin = strings.NewReader(`{"result": {"name": "step-a", "state": "skipped", "exitCode": null, "startedAt": null,
		"finishedAt": 7, "reason": "Skipped", "message": "caf\u00e9", "failing": false, "outputBytes": null}, "limit": 4096}`)
	out, err := cmd.Output()
	want := `{"name":"step-a","state":"skipped","exitCode":null,"startedAt":null,"finishedAt":7,"reason":"Skipped","message":"caf\u00e9","failing":false,"outputBytes":null}` +
		"\n" + `{"s":"skipped","f":7,"r":"Skipped","m":"caf\u00e9"}` + "\n"
	if err != nil || string(out) != want {
		t.Errorf("%v:\n%s\nwant\n%s", err, out, want)
	}
}

func TestInstallAndPrepare(t *testing.T) {
	tools := t.TempDir()
	env := append(os.Environ(), beEntrypoint+"=1")
	prepare := exec.Command(os.Args[0], "prepare", tools)
	prepare.Env = env
	var prepareErr bytes.Buffer
	prepare.Stderr = &prepareErr
	if err := prepare.Start(); err != nil {
		t.Fatal(err)
	}
	prepared := make(chan error, 1)
	go func() { prepared <- prepare.Wait() }()
	install := exec.Command(os.Args[0], "install", tools)
	install.Env = env
	if out, err := install.CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("install: %v %q", err, out)
	}
	select {
	case err := <-prepared:
		if err != nil {
			t.Fatalf("prepare: %v %q", err, prepareErr.String())
		}
	case <-time.After(deadline):
		_ = prepare.Process.Kill()
		t.Fatal("prepare did not end after install")
	}
	info, err := os.Stat(filepath.Join(tools, "bin", "entrypoint"))
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("bin/entrypoint: %v %v", info, err)
	}
	self, _ := os.ReadFile(os.Args[0])
	copied, _ := os.ReadFile(filepath.Join(tools, "bin", "entrypoint"))
	if !bytes.Equal(self, copied) {
		t.Errorf("bin/entrypoint is not a copy of the binary")
	}
	for _, sub := range []string{"run", "logs"} {
		info, err = os.Stat(filepath.Join(tools, sub))
		if err != nil || info.Mode().Perm() != 0o777 || info.Mode()&os.ModeSticky == 0 || !info.IsDir() {
			t.Errorf("%s: %v %v", sub, info.Mode(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(tools, "bin", ".installed")); err != nil {
		t.Errorf(".installed: %v", err)
	}
	// The installed copy works as a step.
	cmd := exec.Command(filepath.Join(tools, "bin", "entrypoint"), "run", "--name=step-a", "--run-dir="+filepath.Join(tools, "run"), "--", "echo", "hi")
	cmd.Env = append(env, terminationLogEnv+"="+filepath.Join(tools, "log"))
	if out, err := cmd.Output(); err != nil || string(out) != "hi\n" {
		t.Errorf("%v %q", err, out)
	}
	// Installing again (a restarted hook) is harmless.
	again := exec.Command(os.Args[0], "install", tools)
	again.Env = env
	if out, err := again.CombinedOutput(); err != nil {
		t.Errorf("install again: %v %s", err, out)
	}
}

func TestPrepareAfterInstall(t *testing.T) {
	// The hook may finish before the main process looks.
	tools := t.TempDir()
	env := append(os.Environ(), beEntrypoint+"=1")
	for _, sub := range []string{"install", "prepare"} {
		cmd := exec.Command(os.Args[0], sub, tools)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", sub, err, out)
		}
	}
}

// The values of the --mask variables (each line, and the base64 form) never reach the container's output,
// however the command writes them (stdout, stderr, one value in two writes); the result is untouched.
func TestSecretsAreMasked(t *testing.T) {
	p := newPod(t)
	script := `printf '%s\n' "token=$TOKEN"; printf '%s' "$TOKEN" | base64; printf 'pem: %s\n' "$PEM" >&2
printf 'split: %s' "$(printf '%s' "$TOKEN" | cut -c1-5)"; sleep 0.2; printf '%s\n' "$(printf '%s' "$TOKEN" | cut -c6-)"
echo "plain $PLAIN"; exit 3`
	s := p.startWith([]string{"TOKEN=tok-1234567890", "PEM=-----BEGIN-----\nMIIBxyz\n-----END-----", "PLAIN=seen"},
		"step-a", "--mask=TOKEN", "--mask=PEM", "--mask=UNSET", "--", "sh", "-c", script)
	r := p.wait(s)
	p.expect(r, StateFailed, code(3), "")
	want := "token=******\n******=\npem: ******\n******\n******\nsplit: ******\nplain seen\n"
	if s.stdout.String() != want || s.stderr.String() != "" {
		t.Errorf("output %q (stderr %q), want %q", s.stdout.String(), s.stderr.String(), want)
	}
}

// Without --mask the output is relayed as written, and output that ends without a newline is not lost; the
// result counts the bytes that reached the container log (masked), for the archive to tell a gap.
func TestOutputWithoutNewlineIsKept(t *testing.T) {
	p := newPod(t)
	s, r := p.runStep("step-a", "--", "sh", "-c", "printf 'no newline'; printf ' at all' >&2")
	p.expect(r, StateSucceeded, code(0), "")
	if s.stdout.String() != "no newline at all" || r.OutputBytes == nil || *r.OutputBytes != 17 {
		t.Errorf("output %q, counted %v", s.stdout.String(), show(r.OutputBytes))
	}
	_, skipped := p.runStep("step-b", "--excluded", "--", "true")
	if skipped.OutputBytes != nil {
		t.Errorf("a step that ran nothing has no count: %v", *skipped.OutputBytes)
	}
}

// The copy on the volume holds the output exactly as the container's log has it (masked), every byte.
func TestOutputIsCopiedToTheLogDir(t *testing.T) {
	p := newPod(t)
	logs := t.TempDir()
	script := `i=0; while [ $i -lt 2000 ]; do echo "line $i $TOKEN"; echo "err $i" >&2; i=$((i+1)); done; printf tail`
	s := p.startWith([]string{"TOKEN=tok-1234567890"}, "step-a", "--log-dir="+logs, "--mask=TOKEN", "--", "sh", "-c", script)
	r := p.wait(s)
	p.expect(r, StateSucceeded, code(0), "")
	data, err := os.ReadFile(filepath.Join(logs, "step-a.log"))
	if err != nil || string(data) != s.stdout.String() {
		t.Fatalf("copy (%v) differs from the output: %d vs %d bytes", err, len(data), s.stdout.Len())
	}
	if !strings.HasPrefix(string(data), "line 0 ******\nerr 0\n") || !strings.HasSuffix(string(data), "err 1999\ntail") ||
		strings.Contains(string(data), "tok-") {
		t.Errorf("copy %.60q...%q", data, data[len(data)-20:])
	}
}

// Past --log-limit the copy keeps nothing more and ends with a note saying how much was dropped; the
// container's log still has it all.
func TestLogCopyIsLimited(t *testing.T) {
	p := newPod(t)
	logs := t.TempDir()
	s, r := p.runStep("step-a", "--log-dir="+logs, "--log-limit=10", "--", "sh", "-c", "echo 0123456789abcdef")
	p.expect(r, StateSucceeded, code(0), "")
	data, _ := os.ReadFile(filepath.Join(logs, "step-a.log"))
	if want := "0123456789" + TruncationNote(10, 7); string(data) != want || s.stdout.String() != "0123456789abcdef\n" {
		t.Errorf("copy %q, want %q; output %q", data, want, s.stdout.String())
	}
}

func TestLogCopyCounts(t *testing.T) {
	path := t.TempDir()
	c, err := CreateLogCopy(path, "step-x", 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []string{"ab", "cd", "", "ef", "g"} {
		if n, err := c.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Errorf("write %q: %d %v", chunk, n, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(path, "step-x.log"))
	if string(data) != "abcd"+TruncationNote(4, 3) {
		t.Errorf("%q", data)
	}
	info, _ := os.Stat(filepath.Join(path, "step-x.log"))
	if info.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", info.Mode())
	}
}

// A log directory that is not there costs the copy, not the step.
func TestMissingLogDirStillRunsTheStep(t *testing.T) {
	p := newPod(t)
	s, r := p.runStep("step-a", "--log-dir=/nonexistent/podline-logs", "--", "echo", "hi")
	p.expect(r, StateSucceeded, code(0), "")
	if s.stdout.String() != "hi\n" || !strings.Contains(s.stderr.String(), "no copy of the output") {
		t.Errorf("output %q, stderr %q", s.stdout.String(), s.stderr.String())
	}
}
