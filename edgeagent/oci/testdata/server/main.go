// Command server is the test payload of Flotilla's OCI runtime tests: a
// tiny static program baked into the test images built by package ocitest.
// It uses only os, os/signal, strconv and syscall (no fmt, flag or net) so
// that a cold cross-compile for another architecture stays quick.
//
// Modes:
//
//	(none)            HTTP server on $BIND:$PORT (BIND defaults to
//	                  127.0.0.1) answering "<POD_NAME|HOSTNAME> v=<VERSION>",
//	                  followed by " remote=<client ip:port>" when
//	                  ECHO_REMOTE=1; logs "request <path>" on stdout and
//	                  "listening on ..." on stderr
//	-ignore-term      like the default, but SIGTERM is ignored (needs SIGKILL)
//	-hog              allocate and touch memory until killed
//	-exit N           print "exiting with N" and exit with code N
//	-exec-echo S      print S on stdout and exit 0 (used through Exec)
//	-exec-exit N      print "exec" on stderr and exit N (used through Exec)
//	-pwd              print "pwd <working dir>" on stdout, then go on
//	-cat PATH         print the file PATH on stdout, then go on
//	-get IP:PORT      a client instead of a server: every 300 ms, GET / from
//	                  IP:PORT and print "get ok <first body line>" or
//	                  "get err <error>" on stdout
package main

import (
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func say(f *os.File, s ...string) { f.WriteString(strings.Join(s, "") + "\n") }

func fail(s ...string) {
	say(os.Stderr, append([]string{"server: "}, s...)...)
	os.Exit(1)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail("bad number ", s)
	}
	return n
}

func main() {
	ignoreTerm := false
	args := os.Args[1:]
	for len(args) > 0 {
		a := args[0]
		arg := func() string {
			if len(args) < 2 {
				fail(a, " needs a value")
			}
			args = args[1:]
			return args[0]
		}
		switch a {
		case "-ignore-term":
			ignoreTerm = true
		case "-hog":
			hog()
		case "-exit":
			n := arg()
			say(os.Stdout, "exiting with ", n)
			os.Exit(atoi(n))
		case "-exec-echo":
			say(os.Stdout, arg())
			return
		case "-pwd":
			wd, err := os.Getwd()
			if err != nil {
				fail("getwd: ", err.Error())
			}
			say(os.Stdout, "pwd ", wd)
		case "-cat":
			b, err := os.ReadFile(arg())
			if err != nil {
				fail("cat: ", err.Error())
			}
			os.Stdout.Write(b)
		case "-get":
			getLoop(arg())
		case "-exec-exit":
			n := arg()
			say(os.Stderr, "exec")
			os.Exit(atoi(n))
		default:
			fail("unknown argument ", a)
		}
		args = args[1:]
	}

	// As PID 1 in its PID namespace, the process gets no default action for
	// SIGTERM: handle (or ignore) it explicitly.
	if ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	} else {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			s := <-ch
			say(os.Stdout, "got ", s.String(), ", exiting")
			os.Exit(0)
		}()
	}
	serve()
}

var sink [][]byte

func hog() {
	say(os.Stdout, "hogging memory")
	for {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = byte(i)
		}
		sink = append(sink, b)
		if len(sink)%16 == 0 {
			say(os.Stdout, "allocated ", strconv.Itoa(len(sink)), " MiB")
		}
		time.Sleep(time.Millisecond)
	}
}

func serve() {
	name := os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	port := 8080
	if p := os.Getenv("PORT"); p != "" {
		port = atoi(p)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		fail("socket: ", err.Error())
	}
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	bind := "127.0.0.1"
	if b := os.Getenv("BIND"); b != "" {
		bind = b
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: ipv4(bind)}); err != nil {
		fail("bind: ", err.Error())
	}
	if err := syscall.Listen(fd, 64); err != nil {
		fail("listen: ", err.Error())
	}
	say(os.Stderr, "listening on ", bind, ":", strconv.Itoa(port))
	echoRemote := os.Getenv("ECHO_REMOTE") == "1"
	for {
		c, sa, err := syscall.Accept(fd)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			fail("accept: ", err.Error())
		}
		remote := ""
		if in4, ok := sa.(*syscall.SockaddrInet4); echoRemote && ok {
			a := in4.Addr
			remote = " remote=" + strconv.Itoa(int(a[0])) + "." + strconv.Itoa(int(a[1])) + "." +
				strconv.Itoa(int(a[2])) + "." + strconv.Itoa(int(a[3])) + ":" + strconv.Itoa(in4.Port)
		}
		go answer(c, name, remote)
	}
}

// ipv4 parses a dotted-quad address.
func ipv4(s string) [4]byte {
	var a [4]byte
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		fail("bad IPv4 address ", s)
	}
	for i, p := range parts {
		n := atoi(p)
		if n < 0 || n > 255 {
			fail("bad IPv4 address ", s)
		}
		a[i] = byte(n)
	}
	return a
}

// answer reads one HTTP/1.x request head and writes the reply.
func answer(fd int, name, remote string) {
	defer syscall.Close(fd)
	tv := syscall.Timeval{Sec: 5}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	var req []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(req), "\r\n\r\n") && len(req) < 64<<10 {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue // Go's runtime preempts goroutines with signals
		}
		if err != nil || n <= 0 {
			return
		}
		req = append(req, buf[:n]...)
	}
	path := "/"
	if f := strings.Fields(strings.SplitN(string(req), "\n", 2)[0]); len(f) >= 2 {
		path = f[1]
	}
	say(os.Stdout, "request ", path)
	body := name + " v=" + os.Getenv("VERSION") + remote + "\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) +
		"\r\nConnection: close\r\n\r\n" + body
	for b := []byte(resp); len(b) > 0; {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		b = b[n:]
	}
}

// getLoop is the client mode: it never returns.
func getLoop(addr string) {
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		fail("-get wants IP:PORT, not ", addr)
	}
	sa := &syscall.SockaddrInet4{Addr: ipv4(host), Port: atoi(port)}
	for {
		if line, err := get(sa); err != nil {
			say(os.Stdout, "get err ", err.Error())
		} else {
			say(os.Stdout, "get ok ", line)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// get makes one HTTP/1.0 request and returns the first line of the body.
func get(sa *syscall.SockaddrInet4) (string, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer syscall.Close(fd)
	tv := syscall.Timeval{Sec: 2}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	for {
		err = syscall.Connect(fd, sa)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return "", err
	}
	req := []byte("GET / HTTP/1.0\r\nHost: flotilla\r\n\r\n")
	for len(req) > 0 {
		n, err := syscall.Write(fd, req)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return "", err
		}
		req = req[n:]
	}
	var resp []byte
	buf := make([]byte, 4096)
	for len(resp) < 64<<10 {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return "", err
		}
		if n <= 0 {
			break
		}
		resp = append(resp, buf[:n]...)
	}
	_, body, ok := strings.Cut(string(resp), "\r\n\r\n")
	if !ok {
		return "", syscall.EPROTO
	}
	line, _, _ := strings.Cut(body, "\n")
	return line, nil
}
