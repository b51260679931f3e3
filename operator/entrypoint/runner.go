package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultPath is the PATH a command is looked up in when the container has none (the one runc and
// Docker give).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// KillGrace is how long a timed-out step's processes have between SIGTERM and SIGKILL.
const KillGrace = 5 * time.Second

// ProcessRunner is the real Runner.
//
// It does not use os/exec's Cmd.Wait: the entrypoint is PID 1 of its container (and a child subreaper
// outside one, see setSubreaper), so orphans of the step are re-parented to it and must be reaped. It reaps
// with wait4(-1) on each SIGCHLD, which collects the command's own status among them instead of losing it
// to a second waiter.
type ProcessRunner struct {
	KillGrace time.Duration
	// DrainGrace bounds the read of the output once the command has ended (0: the DrainGrace constant).
	DrainGrace time.Duration
	// Output, when set, gets the command's stdout and stderr, merged in the order written (one pipe, as
	// Drone's log has them), instead of the container's own; it is flushed once the command has ended.
	Output OutputSink
}

// OutputSink is where a step's output goes through the entrypoint (the masker, see masking.go).
type OutputSink interface {
	io.Writer
	Flush() error
	Bytes() int64 // what reached the container log so far
}

// DrainGrace bounds how long the output is still read once the command has ended, when something that
// left the command's process group keeps the pipe open. It is not a wait: when the command and its group
// are gone, the pipe has no writer left and the read ends at once, at its end of file.
const DrainGrace = 200 * time.Millisecond

func (p ProcessRunner) Run(command []string, timeout time.Duration, stops <-chan os.Signal) Outcome {
	path, notStarted := lookPath(command[0], pathEnv())
	if notStarted != nil {
		return *notStarted
	}
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	defer signal.Stop(children)

	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return Outcome{ExitCode: 126, NotStarted: ReasonCommandNotExecutable, Detail: fmt.Sprintf("Cannot open %s: %v.", os.DevNull, err)}
	}
	files := []uintptr{devnull.Fd(), os.Stdout.Fd(), os.Stderr.Fd()}
	relay := p.startRelay()
	if relay != nil {
		files[1], files[2] = relay.writer.Fd(), relay.writer.Fd()
	}
	pid, err := syscall.ForkExec(path, command, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	devnull.Close()
	if relay != nil {
		relay.writer.Close() // the command has its own copy; the pipe ends when it and its children close theirs
	}
	if err != nil {
		if relay != nil {
			relay.finish(p.drainGrace())
		}
		return startFailure(command[0], path, err)
	}
	outcome := p.wait(pid, timeout, stops, children)
	if relay != nil {
		relay.finish(p.drainGrace())
		written := relay.sink.Bytes()
		outcome.Output = &written
	}
	return outcome
}

func (p ProcessRunner) drainGrace() time.Duration {
	if p.DrainGrace > 0 {
		return p.DrainGrace
	}
	return DrainGrace
}

// wait waits for the command (pid) to end, forwarding stops and enforcing the timeout, and reaps what it
// leaves behind in its group.
func (p ProcessRunner) wait(pid int, timeout time.Duration, stops <-chan os.Signal, children <-chan os.Signal) Outcome {

	var outcome Outcome
	var deadline, kill <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		deadline = timer.C
	}
	grace := p.KillGrace
	if grace <= 0 {
		grace = KillGrace
	}
	for {
		if status, exited := reap(pid); exited {
			outcome.ExitCode, outcome.Signal = exitCode(status)
			break
		}
		select {
		case <-children:
		case sig := <-stops:
			if s, ok := sig.(syscall.Signal); ok {
				outcome.Stopped = signalName(sig)
				_ = syscall.Kill(-pid, s)
			}
		case <-deadline:
			outcome.TimedOut = true
			_ = syscall.Kill(-pid, syscall.SIGTERM)
			timer := time.NewTimer(grace)
			defer timer.Stop()
			kill = timer.C
		case <-kill:
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	// What the command left behind in its group ends with it, as it would when a container's main process
	// exits.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	reap(pid)
	return outcome
}

// relay copies the command's output from a pipe to an OutputSink.
type relay struct {
	reader, writer *os.File
	sink           OutputSink
	done           chan struct{}
}

// startRelay starts copying, or returns nil when there is no Output (or no pipe: the output then goes
// straight to the container's stdout and stderr).
func (p ProcessRunner) startRelay() *relay {
	if p.Output == nil {
		return nil
	}
	reader, writer, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "podline-entrypoint: no pipe for the step's output (%v); it is not masked\n", err)
		return nil
	}
	r := &relay{reader: reader, writer: writer, sink: p.Output, done: make(chan struct{})}
	go r.copy()
	return r
}

// copy reads to the end of the output; if the sink fails, it goes on reading (the command must never
// block on a full pipe) and drops what it reads.
func (r *relay) copy() {
	defer close(r.done)
	buf := make([]byte, 32*1024)
	sinkFailed := false
	for {
		n, err := r.reader.Read(buf)
		if n > 0 && !sinkFailed {
			if _, werr := r.sink.Write(buf[:n]); werr != nil {
				sinkFailed = true
			}
		}
		if err != nil {
			return
		}
	}
}

// finish waits for the end of the output and flushes it. The copy ends as soon as the pipe reports its end
// of file, which it does once every process holding it has closed it: at the command's end, as its group is
// killed with it. Only a process that left the group (setsid, a daemon) can keep it open; the read
// deadline then ends the copy grace after the command's end, and what the masker held back is still
// flushed (masked as far as it is complete).
func (r *relay) finish(grace time.Duration) {
	_ = r.reader.SetReadDeadline(time.Now().Add(grace))
	<-r.done
	_ = r.sink.Flush()
	r.reader.Close()
}

// reap collects every child that has exited; it tells whether pid was among them, and its status.
func reap(pid int) (syscall.WaitStatus, bool) {
	var found syscall.WaitStatus
	exited := false
	for {
		var status syscall.WaitStatus
		got, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || got <= 0 {
			return found, exited
		}
		if got == pid && (status.Exited() || status.Signaled()) {
			found, exited = status, true
		}
	}
}

func exitCode(status syscall.WaitStatus) (int, syscall.Signal) {
	if status.Signaled() {
		return 128 + int(status.Signal()), status.Signal()
	}
	return status.ExitStatus(), 0
}

func pathEnv() string {
	if path, ok := os.LookupEnv("PATH"); ok {
		return path
	}
	return DefaultPath
}

// lookPath finds the command as a shell does: a name with a slash is used as it is; any other is looked up
// in PATH, the first executable regular file winning. It returns a not-started outcome (127, or 126 when
// only files that cannot be executed were found) instead of a path.
func lookPath(name, path string) (string, *Outcome) {
	if strings.Contains(name, "/") {
		if why := notExecutable(name); why != nil {
			if errors.Is(why, os.ErrNotExist) {
				return "", notFound(fmt.Sprintf("The command %s was not found: no such file.", name))
			}
			return "", cannotExecute(fmt.Sprintf("The command %s cannot be executed: %v.", name, why))
		}
		return name, nil
	}
	var found string
	var why error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		candidate := filepath.Join(dir, name)
		err := notExecutable(candidate)
		if err == nil {
			return candidate, nil
		}
		if !errors.Is(err, os.ErrNotExist) && found == "" {
			found, why = candidate, err
		}
	}
	if found != "" {
		return "", cannotExecute(fmt.Sprintf("The command %s was found as %s, which cannot be executed: %v.", name, found, why))
	}
	return "", notFound(fmt.Sprintf("The command %s was not found in PATH (%s).", name, path))
}

// notExecutable is nil for an executable regular file, else why not.
func notExecutable(file string) error {
	info, err := os.Stat(file)
	switch {
	case err != nil:
		if errors.Is(err, os.ErrNotExist) {
			return os.ErrNotExist
		}
		return err
	case info.IsDir():
		return errors.New("it is a directory")
	case info.Mode()&0o111 == 0:
		return errors.New("it has no execute permission")
	}
	if err := syscall.Access(file, 1 /* X_OK */); err != nil {
		return fmt.Errorf("no execute permission for this user (%v)", err)
	}
	return nil
}

func startFailure(name, path string, err error) Outcome {
	if errors.Is(err, syscall.ENOENT) {
		// The file is there: what is missing is its interpreter (#!) or its dynamic loader.
		return *notFound(fmt.Sprintf("The command %s (%s) cannot start: its interpreter or dynamic loader was not found (%v).", name, path, err))
	}
	return *cannotExecute(fmt.Sprintf("The command %s (%s) cannot be executed: %v.", name, path, err))
}

func notFound(detail string) *Outcome {
	return &Outcome{ExitCode: 127, NotStarted: ReasonCommandNotFound, Detail: detail}
}

func cannotExecute(detail string) *Outcome {
	return &Outcome{ExitCode: 126, NotStarted: ReasonCommandNotExecutable, Detail: detail}
}

var signalNames = map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT",
	syscall.SIGKILL: "SIGKILL", syscall.SIGHUP: "SIGHUP", syscall.SIGQUIT: "SIGQUIT", syscall.SIGABRT: "SIGABRT",
	syscall.SIGSEGV: "SIGSEGV", syscall.SIGBUS: "SIGBUS", syscall.SIGPIPE: "SIGPIPE", syscall.SIGUSR1: "SIGUSR1",
	syscall.SIGUSR2: "SIGUSR2"}

func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if name, known := signalNames[s]; known {
			return name
		}
		return fmt.Sprintf("signal %d", int(s))
	}
	return sig.String()
}

// setSubreaper makes the entrypoint the reaper of its command's orphans even when it is not PID 1 (tests,
// or a pod sharing its process namespace): PR_SET_CHILD_SUBREAPER.
func setSubreaper() {
	const prSetChildSubreaper = 36
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
}
