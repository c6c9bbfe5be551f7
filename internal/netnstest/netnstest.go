// Package netnstest runs test code inside a named network namespace (one
// made with `ip netns add`): sockets created there stay in it, wherever
// they are used from afterwards.
package netnstest

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Path is where `ip netns` keeps namespace ns.
func Path(ns string) string { return "/var/run/netns/" + ns }

// Do runs fn on an OS thread switched into namespace ns and returns its
// error. The thread is thrown away afterwards (its goroutine exits still
// locked), so no other goroutine ever runs in the namespace by accident.
func Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := Enter(ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Enter switches the calling thread, which must be locked to its
// goroutine (runtime.LockOSThread) and never unlocked, into namespace ns.
func Enter(ns string) error {
	f, err := os.Open(Path(ns))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	return nil
}
