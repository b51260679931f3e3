package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// watchDir calls check until it answers true, first right after arming an inotify watch on dir (so nothing
// written before or after is missed), then after each event naming a file for which relevant is true (or an
// overflow of the event queue). It returns ctx's error once ctx ends. The inotify file is non-blocking, so
// reads go through the runtime's poller and a read deadline interrupts them.
func watchDir(ctx context.Context, dir string, relevant func(name string) bool, check func() (bool, error)) error {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify: %v", err)
	}
	events := os.NewFile(uintptr(fd), "inotify")
	defer events.Close()
	const mask = syscall.IN_MOVED_TO | syscall.IN_CLOSE_WRITE | syscall.IN_CREATE | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF
	if _, err := syscall.InotifyAddWatch(fd, dir, mask); err != nil {
		return fmt.Errorf("cannot watch %s: %v", dir, err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = events.SetReadDeadline(time.Unix(1, 0))
		case <-done:
		}
	}()
	buf := make([]byte, 64*1024)
	for {
		if ok, err := check(); err != nil || ok {
			return err
		}
		for wake := false; !wake; {
			n, err := events.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("reading inotify events on %s: %v", dir, err)
			}
			names, overflow, gone := parseEvents(buf[:n])
			if gone {
				return fmt.Errorf("%s was removed while waiting", dir)
			}
			wake = overflow
			for _, name := range names {
				wake = wake || relevant(name)
			}
		}
	}
}

// parseEvents reads a buffer of inotify events: the file names, whether the queue overflowed, and whether
// the watched directory itself went away.
func parseEvents(buf []byte) (names []string, overflow, gone bool) {
	for offset := 0; offset+syscall.SizeofInotifyEvent <= len(buf); {
		event := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[offset]))
		start := offset + syscall.SizeofInotifyEvent
		end := start + int(event.Len)
		if end > len(buf) {
			break
		}
		if event.Mask&syscall.IN_Q_OVERFLOW != 0 {
			overflow = true
		}
		if event.Mask&(syscall.IN_DELETE_SELF|syscall.IN_MOVE_SELF|syscall.IN_IGNORED) != 0 {
			gone = true
		}
		if event.Len > 0 {
			names = append(names, strings.TrimRight(string(buf[start:end]), "\x00"))
		}
		offset = end
	}
	return names, overflow, gone
}
