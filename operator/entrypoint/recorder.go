package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// FileRecorder is the real Recorder: <RunDir>/<Name>.started, <RunDir>/<Name>.json (each written to a
// temporary file first, then renamed, so a reader never sees half a file), and the termination message.
type FileRecorder struct {
	RunDir         string
	Name           string
	TerminationLog string
	MessageLimit   int // bytes
}

func (f FileRecorder) Started(at time.Time) error {
	return writeAtomic(filepath.Join(f.RunDir, f.Name+startedSuffix), []byte(strconv.FormatInt(at.UnixMilli(), 10)), 0o644)
}

// Result writes the termination message (the compact form) first, so it is in place when the next step
// starts, then the result file.
func (f FileRecorder) Result(r Result) error {
	data := EncodeResult(r)
	var failed []error
	if f.TerminationLog != "" {
		if err := os.WriteFile(f.TerminationLog, EncodeMessage(r, f.MessageLimit), 0o644); err != nil {
			failed = append(failed, fmt.Errorf("termination message: %v", err))
		}
	}
	if err := writeAtomic(filepath.Join(f.RunDir, f.Name+resultSuffix), data, 0o644); err != nil {
		failed = append(failed, fmt.Errorf("result file: %v", err))
	}
	if len(failed) > 0 {
		return fmt.Errorf("cannot record the result: %v", failed)
	}
	return nil
}

// writeAtomic writes data to path through a temporary file (a dot name in the same directory, which the
// waiters ignore) and a rename; the file gets exactly mode, whatever the umask.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), os.Getpid()))
	file, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = file.Write(data)
	if err == nil {
		err = file.Chmod(mode)
	}
	if closeErr := file.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
