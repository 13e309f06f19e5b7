// Command cluster-sim runs the Redis Enterprise cluster simulator until SIGINT or SIGTERM: one HTTPS
// API per cluster on 127.0.0.1, with each cluster's API certificate and a clusters.json (URLs, users,
// CA files) written to a folder.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/certs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster-sim:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cluster-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	topoPath := fs.String("topology", "", "topology JSON file (default: the embedded demo: east -> west)")
	dir := fs.String("dir", "", "folder for the API CA files and clusters.json (default: a new temporary folder)")
	actionDuration := fs.Duration("action-duration", 50*time.Millisecond, "how long a database change runs before it completes")
	syncDelay := fs.Duration("sync-delay", 0, "how long a (re)connected link shows syncing before in-sync")
	rsa := fs.Bool("rsa", false, "generate RSA 2048 certificates like a real cluster (default ECDSA P-256)")
	verbose := fs.Bool("v", false, "log every API call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	var topo simulator.Topology
	var err error
	if *topoPath == "" {
		topo, err = simulator.DemoTopology()
	} else {
		topo, err = simulator.LoadTopology(*topoPath)
	}
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts := simulator.Options{
		ActionDuration: *actionDuration,
		SyncDelay:      *syncDelay,
		Logger:         slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	if *rsa {
		opts.KeyType = certs.RSA2048
	}
	sim, err := simulator.New(topo, opts)
	if err != nil {
		return err
	}

	if err := sim.Start(ctx); err != nil {
		return err
	}
	defer sim.Close()

	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "cluster-sim-"); err != nil {
			return fmt.Errorf("create output folder: %w", err)
		}
	}
	clustersFile, err := sim.WriteFiles(*dir)
	if err != nil {
		return err
	}
	// Print what was written, read back: what a user copies is what the file says.
	b, err := os.ReadFile(clustersFile)
	if err != nil {
		return fmt.Errorf("read back clusters.json: %w", err)
	}
	var written simulator.ClustersFile
	if err := json.Unmarshal(b, &written); err != nil {
		return fmt.Errorf("read back clusters.json: %w", err)
	}
	for _, c := range written.Clusters {
		fmt.Fprintf(stdout, "cluster %-8s fqdn %-24s url %-26s ca %s\n", c.Name, c.FQDN, c.URL, c.CAFile)
	}
	fmt.Fprintf(stdout, "clusters.json %s (holds the API passwords)\n", clustersFile)
	fmt.Fprintln(stdout, "ready; Ctrl-C to stop")

	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping")
	return sim.Close()
}
