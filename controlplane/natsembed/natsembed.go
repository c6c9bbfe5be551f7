// Package natsembed runs nats-server with JetStream inside the Flotilla
// process, the default when no external NATS is named.
package natsembed

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server. Zero values are usable: a random
// loopback port, no auth.
type Options struct {
	Host     string // default 127.0.0.1
	Port     int    // default -1: pick a free port
	StoreDir string // JetStream data; required
	Token    string // client auth token; empty = no auth
	// MaxMemory and MaxStore bound JetStream; 0 = server defaults.
	MaxMemory int64
	MaxStore  int64
}

// Server is a running embedded NATS.
type Server struct {
	*server.Server
}

// Start starts nats-server and waits until it accepts clients.
func Start(o Options) (*Server, error) {
	if o.StoreDir == "" {
		return nil, fmt.Errorf("embedded nats: StoreDir is required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = -1
	}
	if o.Port > 0 {
		// nats-server only logs a taken port and never becomes ready; say so
		// plainly and at once instead.
		l, err := net.Listen("tcp", net.JoinHostPort(o.Host, strconv.Itoa(o.Port)))
		if err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
		l.Close()
	}
	if err := os.MkdirAll(o.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	opts := &server.Options{
		ServerName:         "flotilla",
		Host:               o.Host,
		Port:               o.Port,
		JetStream:          true,
		StoreDir:           o.StoreDir,
		JetStreamMaxMemory: o.MaxMemory,
		JetStreamMaxStore:  o.MaxStore,
		Authorization:      o.Token,
		NoSigs:             true,
		MaxPayload:         8 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 10s")
	}
	return &Server{s}, nil
}

// URL is the client URL of the running server.
func (s *Server) URL() string { return s.ClientURL() }

// Stop shuts the server down and waits for it.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// LoadOrCreateToken returns the token kept in dir/token, making a random one
// on first use, so a restarted server keeps its clients' credentials.
func LoadOrCreateToken(dir string) (string, error) {
	path := filepath.Join(dir, "token")
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(buf)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write token: %w", err)
	}
	return tok, nil
}
