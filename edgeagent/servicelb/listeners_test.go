package servicelb

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
)

type fakeLocal struct{ m sync.Map }

func (f *fakeLocal) LocalHTTPHandler(a netip.AddrPort) http.Handler {
	if h, ok := f.m.Load(a); ok {
		return h.(http.Handler)
	}
	return nil
}

// A Local listener whose backend is served in-process hands the
// connection to the handler (the backend port itself has no listener, so
// a relay would fail), keep-alive included; a Cluster listener relays.
func TestLocalListenerHandsOver(t *testing.T) {
	backend := netip.MustParseAddrPort("127.0.0.1:1") // nothing listens there
	var mu sync.Mutex
	var seen []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RemoteAddr)
		mu.Unlock()
		_, _ = io.WriteString(w, "in-process")
	})
	l := Listener{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Protocol: "TCP", Backends: []netip.AddrPort{backend}, Local: true}
	local := &fakeLocal{}
	local.m.Store(backend, h)
	p, err := startProxy(l, slog.New(slog.DiscardHandler), local)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	url := "http://" + p.closer.(net.Listener).Addr().String() + "/"
	c := &http.Client{Transport: &http.Transport{}}
	for range 3 {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "in-process" {
			t.Fatalf("body %q", b)
		}
	}
	saw := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
	if s := saw(); len(s) != 3 || s[0] != s[2] {
		t.Fatalf("handler saw %v (want one kept-alive client connection)", s)
	}
	// The pod goes: a kept-alive connection is closed, not answered by a
	// stale handler; the next connection is relayed (and fails here).
	local.m.Delete(backend)
	if _, err := c.Get(url); err == nil {
		t.Fatal("answered after the backend left the registry")
	}
	if s := saw(); len(s) != 3 {
		t.Fatalf("stale handler served: %v", s)
	}
	c.CloseIdleConnections()

	l.Local = false
	p.set(l)
	if _, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(url); err == nil {
		t.Fatal("Cluster listener answered without relaying to a backend")
	}
}
