// Package server assembles a control plane: NATS (embedded unless an
// external URL is given), the object store, the API, and, on the lease
// holder only, the controllers and the scheduler.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/wire"
	"github.com/flotilla-edge/flotilla/controlplane/apiserver"
	"github.com/flotilla-edge/flotilla/controlplane/controllers"
	"github.com/flotilla-edge/flotilla/controlplane/lease"
	"github.com/flotilla-edge/flotilla/controlplane/natsembed"
	"github.com/flotilla-edge/flotilla/controlplane/store"
	"github.com/flotilla-edge/flotilla/wasmrt/modstore"
)

// Config configures a control-plane process.
type Config struct {
	// DataDir holds the embedded NATS's JetStream data and its token.
	DataDir string
	// NATSURL names an external NATS; empty embeds nats-server.
	NATSURL string
	// Token authenticates to NATS; for the embedded server, empty means
	// "load or create DataDir/token".
	Token string
	// NATSHost and NATSPort: where the embedded server listens
	// (default 0.0.0.0:4222, so boards can join).
	NATSHost string
	NATSPort int
	// Replicas of the JetStream buckets (an external cluster: 3).
	Replicas int
	// Identity names this process in the leader lease; default hostname+pid.
	Identity string
	Version  string
	// NodeMonitorGracePeriod: a node silent for this long goes NotReady.
	NodeMonitorGracePeriod time.Duration
	// LeaseTTL bounds how long a dead leader's lease lingers (default 10s).
	LeaseTTL time.Duration
	// ServiceCIDR is where Services' cluster IPs come from (default
	// 10.43.0.0/16).
	ServiceCIDR string
	Log         *slog.Logger
}

// Server is a running control-plane process.
type Server struct {
	cfg    Config
	embed  *natsembed.Server
	nc     *nats.Conn
	url    string
	token  string
	Store  *store.Store
	API    *apiserver.Server
	Lease  *lease.Elector
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start brings the control plane up and returns once the API answers.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Identity == "" {
		h, _ := os.Hostname()
		cfg.Identity = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	s := &Server{cfg: cfg, url: cfg.NATSURL, token: cfg.Token}
	if cfg.NATSURL == "" {
		if cfg.DataDir == "" {
			return nil, errors.New("server: a data dir is required for the embedded NATS")
		}
		if s.token == "" {
			tok, err := natsembed.LoadOrCreateToken(cfg.DataDir)
			if err != nil {
				return nil, fmt.Errorf("server: %w", err)
			}
			s.token = tok
		}
		host, port := cfg.NATSHost, cfg.NATSPort
		if host == "" {
			host = "0.0.0.0"
		}
		if port == 0 {
			port = 4222
		}
		e, err := natsembed.Start(natsembed.Options{Host: host, Port: port, StoreDir: filepath.Join(cfg.DataDir, "jetstream"), Token: s.token})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.embed = e
		s.url = e.URL()
	}
	opts := []nats.Option{nats.Name("flotilla-server " + cfg.Identity), nats.MaxReconnects(-1)}
	if s.token != "" {
		opts = append(opts, nats.Token(s.token))
	}
	nc, err := nats.Connect(s.url, opts...)
	if err != nil {
		s.stopEmbed()
		return nil, fmt.Errorf("server: connect %s: %w", s.url, err)
	}
	s.nc = nc
	if err := s.open(ctx); err != nil {
		nc.Close()
		s.stopEmbed()
		return nil, err
	}
	return s, nil
}

func (s *Server) open(ctx context.Context) error {
	cfg := s.cfg
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("server: jetstream: %w", err)
	}
	st, err := store.Open(ctx, js, cfg.Replicas)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.Store = st
	if err := ensureStorage(ctx, js, cfg.Replicas); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if _, err := st.Create(ctx, &api.Namespace{ObjectMeta: api.ObjectMeta{Name: api.DefaultNamespace}}); err != nil && !errors.Is(err, api.ErrAlreadyExists) {
		return fmt.Errorf("server: create default namespace: %w", err)
	}
	el, err := lease.New(ctx, js, lease.Config{Name: "controllers", Identity: cfg.Identity, TTL: cfg.LeaseTTL, Log: cfg.Log})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.Lease = el
	s.API = apiserver.New(s.nc, st, cfg.Log, cfg.Version, el.Holder)
	if err := s.API.EnableServices(ctx, js, cfg.ServiceCIDR, cfg.Replicas); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	apiErr := make(chan error, 1)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		apiErr <- s.API.Run(rctx)
	}()
	go func() {
		defer s.wg.Done()
		el.Run(rctx, func(lctx context.Context) {
			m := controllers.NewManager(st, js, controllers.Options{
				Log:                    cfg.Log,
				NodeMonitorGracePeriod: cfg.NodeMonitorGracePeriod,
			})
			if err := m.Run(lctx); err != nil && lctx.Err() == nil {
				cfg.Log.Error("controllers stopped", "err", err)
			}
		})
	}()
	// Wait until the API answers so callers can use it at once.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-apiErr:
			return fmt.Errorf("server: api: %w", err)
		default:
		}
		if _, err := s.nc.Request(wire.SubjectVersion, []byte("{}"), time.Second); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("server: api did not answer within 10s")
}

// ensureStorage creates the buckets and streams agents and the CLI use, so
// they exist before the first agent or push.
func ensureStorage(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas < 1 {
		replicas = 1
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: wire.AssignmentsBucket, History: 1, Storage: jetstream.FileStorage, Replicas: replicas}); err != nil {
		return fmt.Errorf("assignments bucket: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, LogStreamConfig(replicas)); err != nil {
		return fmt.Errorf("log stream: %w", err)
	}
	if _, err := modstore.Open(ctx, js); err != nil {
		return err
	}
	return nil
}

// LogStreamConfig bounds container logs by age and size.
func LogStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:      wire.LogStream,
		Subjects:  []string{wire.LogSubjects},
		Storage:   jetstream.FileStorage,
		MaxAge:    72 * time.Hour,
		MaxBytes:  256 << 20,
		Discard:   jetstream.DiscardOld,
		Replicas:  replicas,
		Retention: jetstream.LimitsPolicy,
	}
}

// URL is the NATS URL clients and agents use.
func (s *Server) URL() string { return s.url }

// Token is the NATS credential clients and agents use.
func (s *Server) Token() string { return s.token }

// Conn is the server's own NATS connection.
func (s *Server) Conn() *nats.Conn { return s.nc }

// Stop stops the API and controllers, hands over the lease, and stops the
// embedded NATS.
func (s *Server) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.nc != nil {
		s.nc.Close()
	}
	s.stopEmbed()
}

func (s *Server) stopEmbed() {
	if s.embed != nil {
		s.embed.Stop()
	}
}
