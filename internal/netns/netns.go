// Package netns runs code inside a named network namespace (one made
// with `ip netns add`): sockets created there stay in it, wherever they
// are used from afterwards. The userspace proxy uses it to serve a test's
// namespace; tests use it to place servers and clients.
package netns

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Path is where `ip netns` keeps namespace ns.
func Path(ns string) string { return "/var/run/netns/" + ns }

// Do runs fn on an OS thread switched into namespace ns and returns its
// error. The thread goes back to its own namespace before it serves other
// goroutines; if it cannot, it is thrown away.
func Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		leave, err := Enter(ns)
		if err != nil {
			errc <- err
			return
		}
		err = fn()
		if leave() == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Enter switches the calling thread, which must be locked to its
// goroutine (runtime.LockOSThread), into namespace ns. leave switches it
// back; only after leave succeeds may the thread be unlocked. A thread
// left in another namespace must never be unlocked: if it is the main
// thread, the runtime cannot end it, and /proc/self/ns/net would name
// that namespace for the rest of the process.
func Enter(ns string) (leave func() error, err error) {
	back, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	f, err := os.Open(Path(ns))
	if err != nil {
		back.Close()
		return nil, err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		back.Close()
		return nil, fmt.Errorf("setns %s: %w", ns, err)
	}
	return func() error {
		defer back.Close()
		return unix.Setns(int(back.Fd()), unix.CLONE_NEWNET)
	}, nil
}
