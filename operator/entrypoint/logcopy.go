package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The copy of a step's output on the pod's volume (--log-dir): <dir>/<name>.log, the masked output as the
// container's log has it, so the run's record does not depend on the node's log pipeline (docs/in-pod.md).

// DefaultLogLimit is how many bytes of output the copy keeps when --log-limit is not given.
const DefaultLogLimit = 64 << 20

// LogCopy writes at most Limit bytes of output to a file; what comes after is counted, not kept, and Close
// ends the file with a line saying so (TruncationNote).
type LogCopy struct {
	file    *os.File
	Limit   int64
	written int64
	dropped int64
	failed  error
}

// TruncationNote is the last line of a copy that was cut at limit bytes, dropped bytes after it.
func TruncationNote(limit, dropped int64) string {
	return fmt.Sprintf("\n[podline: output truncated: %d more bytes after the first %d were not kept (PODLINE_LOG_LIMIT)]\n", dropped, limit)
}

// CreateLogCopy creates (or empties) <dir>/<name>.log, mode 0644.
func CreateLogCopy(dir, name string, limit int64) (*LogCopy, error) {
	file, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	_ = file.Chmod(0o644) // whatever the umask
	return &LogCopy{file: file, Limit: limit}, nil
}

// Write keeps what fits under the limit. It never fails: a copy that cannot be written must not stop the
// step or its container log (Close reports it).
func (c *LogCopy) Write(p []byte) (int, error) {
	keep := int64(len(p))
	if room := c.Limit - c.written; keep > room {
		keep = room
	}
	if keep > 0 && c.failed == nil {
		if _, err := c.file.Write(p[:keep]); err != nil {
			c.failed = err
		}
	}
	c.written += keep
	c.dropped += int64(len(p)) - keep
	return len(p), nil
}

// Close adds the truncation note if output was dropped, and closes the file.
func (c *LogCopy) Close() error {
	if c.dropped > 0 && c.failed == nil {
		_, c.failed = io.WriteString(c.file, TruncationNote(c.Limit, c.dropped))
	}
	if err := c.file.Close(); c.failed == nil {
		c.failed = err
	}
	return c.failed
}

// stepOutput is where a step's output goes: masked, then to the container's stdout and to the copy.
type stepOutput struct {
	*Masker
	copy    *LogCopy // nil: no --log-dir
	counted *counter // what reached the container's stdout
}

// Bytes is how many bytes of (masked) output reached the container's stdout.
func (o stepOutput) Bytes() int64 { return o.counted.n }

// counter counts what is written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Flush ends the output: what the masker held back, then the copy's truncation note.
func (o stepOutput) Flush() error {
	err := o.Masker.Flush()
	if o.copy != nil {
		if cerr := o.copy.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("the copy of the output: %v", cerr)
		}
	}
	return err
}

// tee writes to every writer, whatever one of them answers; it fails only when all do.
type tee []io.Writer

func (t tee) Write(p []byte) (int, error) {
	var last error
	ok := false
	for _, w := range t {
		if _, err := w.Write(p); err != nil {
			last = err
		} else {
			ok = true
		}
	}
	if !ok && last != nil {
		return 0, last
	}
	return len(p), nil
}

// outputFor is a step's output sink: the masker of its --mask values, writing to stdout and, with --log-dir,
// to the copy. A copy that cannot be created is said on stderr; the step runs anyway.
func outputFor(step Step, stdout, stderr io.Writer) stepOutput {
	var copy *LogCopy
	counted := &counter{w: stdout}
	sinks := tee{counted}
	if step.LogDir != "" {
		var err error
		if copy, err = CreateLogCopy(step.LogDir, step.Name, step.LogLimit); err != nil {
			fmt.Fprintf(stderr, "podline-entrypoint: no copy of the output: %v\n", err)
			copy = nil
		} else {
			sinks = append(sinks, copy)
		}
	}
	return stepOutput{Masker: maskerFor(sinks, step.Mask), copy: copy, counted: counted}
}
