package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// The layout of the tools volume (docs/in-pod.md, "The pod").
const (
	binDir        = "bin"
	runDir        = "run"
	logsDir       = "logs"
	installedName = ".installed"
	entrypointBin = "entrypoint"
)

// Prepare's timings: how long it waits for the hook, and how long it lingers after, so the hook's own exit
// is never cut short by the container ending.
var (
	prepareTimeout = 60 * time.Second
	prepareLinger  = 1 * time.Second
)

// Install is the prepare container's postStart hook: it copies this binary to DIR/bin/entrypoint (mode
// 0755, through a temporary file and a rename, so no step ever runs half a binary), creates DIR/run and
// DIR/logs (mode 01777: steps running as any user write their results and output copies there) and then writes DIR/bin/.installed.
func Install(dir string) error {
	bin := filepath.Join(dir, binDir)
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	if err := copySelf(filepath.Join(bin, entrypointBin)); err != nil {
		return fmt.Errorf("copying the entrypoint: %v", err)
	}
	for _, sub := range []string{runDir, logsDir} {
		shared := filepath.Join(dir, sub)
		if err := os.Mkdir(shared, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if err := syscall.Chmod(shared, 0o1777); err != nil { // os.Chmod would need os.ModeSticky
			return fmt.Errorf("chmod %s: %v", shared, err)
		}
	}
	return writeAtomic(filepath.Join(bin, installedName), nil, 0o644)
}

func copySelf(target string) error {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer self.Close()
	tmp := filepath.Join(filepath.Dir(target), fmt.Sprintf(".%s.%d.tmp", filepath.Base(target), os.Getpid()))
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, self)
	if err == nil {
		err = out.Chmod(0o755)
	}
	if closeErr := out.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp, target)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Prepare is the prepare container's main process: it waits (inotify) until the hook has written
// DIR/bin/.installed, at most prepareTimeout, lingers prepareLinger, and returns. A SIGTERM (the pod is
// being stopped) ends it at once.
func Prepare(dir string) error {
	bin := filepath.Join(dir, binDir)
	if err := os.MkdirAll(bin, 0o755); err != nil { // the hook may not have made it yet
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), prepareTimeout)
	defer cancel()
	stops := make(chan os.Signal, 1)
	signal.Notify(stops, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(stops)
	go func() {
		select {
		case <-stops:
			cancel()
		case <-ctx.Done():
		}
	}()
	marker := filepath.Join(bin, installedName)
	err := watchDir(ctx, bin, func(name string) bool { return name == installedName }, func() (bool, error) {
		_, err := os.Stat(marker)
		return err == nil, nil
	})
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s did not appear within %s: did the postStart hook (install) run?", marker, prepareTimeout)
	case errors.Is(err, context.Canceled):
		return nil // stopped
	case err != nil:
		return err
	}
	select {
	case <-time.After(prepareLinger):
	case <-stops:
	}
	return nil
}
