// Command localrun runs replica-tls locally without Docker: the real Lambda bootstraps under the AWS
// Lambda Runtime Interface Emulator, a real moto_server for Secrets Manager and EventBridge, and the
// Redis Enterprise cluster simulator over HTTPS.
//
//	localrun demo                                   # the main job on local defaults (make demo)
//	localrun invoke -fn <LogicalId> -event <file>   # one function on one event (make invoke)
//
// Both start everything they need and stop it again before exiting.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/replica-tls/replica-tls/infra/awslocal"
	"github.com/replica-tls/replica-tls/infra/dataplane"
	"github.com/replica-tls/replica-tls/infra/localrun"
	"github.com/replica-tls/replica-tls/infra/localstack"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: localrun demo | localrun invoke -fn <LogicalId> -event <file>")
		return 2
	}
	switch args[0] {
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "invoke":
		return invoke(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "unknown command %q: want demo or invoke\n", args[0])
		return 2
	}
}

func invoke(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fn := fs.String("fn", "", "function logical id in template.yaml")
	eventFile := fs.String("event", "", "event file (e.g. events/replica-created-replica-scope.json)")
	noRegister := fs.Bool("no-register", false, "do not register the simulated clusters (API secrets, pins, presented certificates) in Secrets Manager first")
	verbose := fs.Bool("v", false, "show the function's log")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *fn == "" || *eventFile == "" {
		fmt.Fprintln(stderr, "usage: localrun invoke -fn <LogicalId> -event <file>")
		return 2
	}
	event, err := os.ReadFile(*eventFile)
	if err != nil {
		fmt.Fprintln(stderr, "read event:", err)
		return 2
	}
	logs := io.Discard
	if *verbose {
		logs = stderr
	}
	sess, err := localrun.Start(ctx, localrun.Options{Logs: logs})
	if err != nil {
		fmt.Fprintln(stderr, "start local stack:", err)
		return 3
	}
	defer sess.Close(context.WithoutCancel(ctx))
	if !*noRegister {
		if err := registerClusters(ctx, sess.Stack); err != nil {
			fmt.Fprintln(stderr, err)
			return 3
		}
	}
	fmt.Fprintf(stdout, "moto_server %s, simulator clusters: %s\n", sess.Stack.MotoURL, clusterList(sess.Stack))
	inv, err := sess.Invoke(ctx, *fn, event)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 3
	}
	printResult(stdout, *fn, inv)
	printAudit(stdout, inv.Audit)
	if inv.Result.FunctionError != nil {
		return 1
	}
	return 0
}

// registerClusters leaves the simulated clusters as registering them does on AWS: the API secret
// (what the operator stores), then what ClusterRegisteredFunction adds before it touches any link:
// the API secret pinned to the cluster's FQDN and the syncer and proxy certificates each cluster
// presents recorded as AWSCURRENT (no key: a cluster does not give its keys away). Without the
// recorded certificates every reconciling function stops at no_certificate. The links are left as
// they are, so the invoked function is the one that secures them.
func registerClusters(ctx context.Context, st *localstack.Stack) error {
	if err := st.Register(ctx); err != nil {
		return err
	}
	if err := st.Pin(ctx); err != nil {
		return err
	}
	for _, c := range st.Sim.Clusters() {
		h := st.Sim.Cluster(c.Name)
		syncer, _ := h.SyncerCert()
		proxy, _ := h.ProxyCert()
		for kind, pemText := range map[secretstore.Kind]string{secretstore.Syncer: syncer, secretstore.Proxy: proxy} {
			if _, err := st.Store.PutCert(ctx, c.Name, kind, secretstore.PutCert{Certificate: pemText}); err != nil {
				return fmt.Errorf("record the %s certificate of cluster %s: %w", kind, c.Name, err)
			}
		}
	}
	return nil
}

func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "show the functions' logs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logs := io.Discard
	if *verbose {
		logs = stderr
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	say("replica-tls demo: securing a Redis Enterprise Replica Of link, locally and without Docker")
	say("")
	say("[1] Starting moto_server (Secrets Manager, EventBridge), the cluster simulator and the Lambda emulator ...")
	started := time.Now()
	opts := localrun.Options{Logs: logs}
	plane, err := dataplane.New(ctx, dataplane.Options{})
	switch {
	case errors.Is(err, dataplane.ErrNoRedisServer):
		say("    data plane: SIMULATED link rules only (redis-server not installed: %s)", dataplane.InstallHint)
	case err != nil:
		fmt.Fprintln(stderr, "demo: data plane:", err)
		return 3
	default:
		say("    data plane: one real redis-server per database; the link is real replication")
		opts.Stack.Sim.DataPlane = plane
	}
	sess, err := localrun.Start(ctx, opts)
	if err != nil {
		if plane != nil {
			_ = plane.Close()
		}
		fmt.Fprintln(stderr, "demo: start:", err)
		return 3
	}
	defer func() {
		sess.Close(context.WithoutCancel(ctx))
		if plane != nil {
			_ = plane.Close()
		}
		say("")
		say("Stopped everything the demo started (moto_server, simulator, emulators, redis-servers).")
	}()
	st := sess.Stack
	say("    moto_server  %s", st.MotoURL)
	for _, c := range st.Sim.Clusters() {
		say("    cluster %-5s %s  REST API %s (self-signed, pinned)", c.Name, c.FQDN, c.URL)
	}
	say("    ready in %s", time.Since(started).Round(time.Millisecond))
	say("")
	say("[2] The Replica Of link before replica-tls: west/1 copies east/1")
	before, err := readLink(st)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 3
	}
	before.print(stdout)
	if plane != nil {
		if err := proveReplication(ctx, stdout, plane, "before"); err != nil {
			say("    replication check failed: %v", err)
			return 1
		}
	}
	say("")
	say("[3] Registering both clusters in Secrets Manager (%sclusters/<name>/api: URL, credentials, pinned API cert)", st.Prefix)
	if err := st.Register(ctx); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 3
	}
	say("")
	const fn, eventFile = "ReplicaCreatedFunction", "events/replica-created-replica-scope.json"
	say("[4] A \"Replica Database Created\" event arrives: invoking %s (real bootstrap under the RIE)", fn)
	say("    with %s", eventFile)
	event, err := os.ReadFile(eventFile)
	if err != nil {
		fmt.Fprintln(stderr, "demo: read event:", err)
		return 3
	}
	callsBefore := totalCalls(st)
	inv, err := sess.Invoke(ctx, fn, event)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 3
	}
	firstCalls := totalCalls(st) - callsBefore
	printResult(stdout, fn, inv)
	say("    cold start (emulator start to first answer, including moto's audit delivery): %s; cluster API calls: %d",
		sess.ColdStarts[fn].Round(time.Millisecond), firstCalls)
	say("")
	say("[5] The link after replica-tls")
	after, err := readLink(st)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 3
	}
	after.print(stdout)
	if plane != nil {
		if err := proveReplication(ctx, stdout, plane, "after"); err != nil {
			say("RESULT: FAILED: %v", err)
			return 1
		}
	}
	say("")
	say("[6] Audit trail on the %s bus", st.AuditBus)
	printAudit(stdout, inv.Audit)
	say("")
	say("[7] The same event again (EventBridge delivers at least once): it must change nothing")
	callsBefore = totalCalls(st)
	again, err := sess.Invoke(ctx, fn, event)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 3
	}
	var resp struct {
		Writes int `json:"cluster_api_writes"`
	}
	_ = json.Unmarshal(again.Result.Payload, &resp)
	say("    %d cluster API calls, %d writes; audit: %s", totalCalls(st)-callsBefore, resp.Writes, outcomes(again.Audit))
	say("")

	if again.Result.FunctionError != nil || inv.Result.FunctionError != nil {
		say("RESULT: FAILED: the function returned an error")
		return 1
	}
	// The verdict reads the link again, giving a replica that reconnected a moment to report in-sync.
	var verdict error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		final, err := readLink(st)
		if err == nil {
			err = final.secured()
		}
		if verdict = err; verdict == nil || time.Now().After(deadline) {
			break
		}
	}
	if verdict != nil {
		say("RESULT: FAILED: %v", verdict)
		return 1
	}
	if resp.Writes != 0 {
		say("RESULT: FAILED: the repeated event wrote %d times", resp.Writes)
		return 1
	}
	say("RESULT: OK: the link is in-sync over TLS (source tls_mode=%s, client authentication enforced, destination encryption on)", after.Source.TLSMode)
	return 0
}

func printResult(w io.Writer, fn string, inv localrun.Invocation) {
	if fe := inv.Result.FunctionError; fe != nil {
		fmt.Fprintf(w, "    %s returned an error (%s): %s\n", fn, fe.Type, fe.Message)
		return
	}
	var pretty any
	if json.Unmarshal(inv.Result.Payload, &pretty) == nil {
		b, _ := json.MarshalIndent(pretty, "    ", "  ")
		fmt.Fprintf(w, "    %s answered in %s:\n    %s\n", fn, inv.Result.Duration.Round(time.Millisecond), b)
	}
}

func printAudit(w io.Writer, evs []awslocal.Captured) {
	if len(evs) == 0 {
		fmt.Fprintln(w, "    (no audit events)")
		return
	}
	for _, e := range evs {
		ev := e.Event
		where := ev.Cluster
		if ev.Database != 0 {
			where = fmt.Sprintf("%s/%d", ev.Cluster, ev.Database)
		}
		line := fmt.Sprintf("    %s  %-26s %-9s %-8s", ev.Time.Format("15:04:05.000"), ev.Step, ev.Outcome, where)
		if ev.Error != nil {
			line += " " + ev.Error.Code + ": " + ev.Error.Message
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		if ev.Outcome == "started" || ev.Outcome == "planned" {
			for _, c := range ev.Changes {
				fmt.Fprintf(w, "        - %s\n", c)
			}
		}
	}
}

func outcomes(evs []awslocal.Captured) string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Event.Step+"="+string(e.Event.Outcome))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func clusterList(st *localstack.Stack) string {
	var out []string
	for _, c := range st.Sim.Clusters() {
		out = append(out, c.Name+"="+c.URL)
	}
	return strings.Join(out, " ")
}

func totalCalls(st *localstack.Stack) int {
	n := 0
	for _, c := range st.Sim.Clusters() {
		n += st.Sim.Cluster(c.Name).TotalCalls()
	}
	return n
}

// link is the demo link's security state as the clusters report it.
type link struct {
	Source struct {
		TLSMode     string `json:"tls_mode"`
		ClientAuth  string `json:"enforce_client_authentication"`
		ClientCerts []struct {
			ClientCert string `json:"client_cert"`
		} `json:"authentication_ssl_client_certs"`
	}
	Dest struct {
		ReplicaSources []struct {
			Encryption bool   `json:"encryption"`
			ServerCert string `json:"server_cert"`
			Status     string `json:"status"`
			LastError  string `json:"last_error"`
		} `json:"replica_sources"`
	}
	westSyncer, eastProxy string
}

func readLink(st *localstack.Stack) (link, error) {
	var l link
	src, err := st.Sim.Cluster("east").DB(1)
	if err != nil {
		return l, err
	}
	dst, err := st.Sim.Cluster("west").DB(1)
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(src, &l.Source); err != nil {
		return l, err
	}
	if err := json.Unmarshal(dst, &l.Dest); err != nil {
		return l, err
	}
	if len(l.Dest.ReplicaSources) != 1 {
		return l, fmt.Errorf("west/1 has %d replica sources, want 1", len(l.Dest.ReplicaSources))
	}
	l.westSyncer, _ = st.Sim.Cluster("west").SyncerCert()
	l.eastProxy, _ = st.Sim.Cluster("east").ProxyCert()
	return l, nil
}

func describe(pemText string) string {
	c, err := certs.ParseOne(pemText)
	if err != nil {
		return "unparsable certificate"
	}
	return fmt.Sprintf("sha256 %s… %s, expires %s", c.Fingerprint[:12], c.X509.Subject, c.X509.NotAfter.Format("2006-01-02"))
}

func (l link) print(w io.Writer) {
	fmt.Fprintf(w, "    source east/1       tls_mode=%-11s client authentication=%s\n", l.Source.TLSMode, orNone(l.Source.ClientAuth))
	if len(l.Source.ClientCerts) == 0 {
		fmt.Fprintln(w, "                        trusted client certificates: none")
	}
	for _, c := range l.Source.ClientCerts {
		mark := ""
		if certs.SameCert(c.ClientCert, l.westSyncer) {
			mark = "  <- west's syncer certificate"
		}
		fmt.Fprintf(w, "                        trusts %s%s\n", describe(c.ClientCert), mark)
	}
	rs := l.Dest.ReplicaSources[0]
	enc := "off"
	if rs.Encryption {
		enc = "on"
	}
	fmt.Fprintf(w, "    destination west/1  encryption=%s\n", enc)
	if rs.ServerCert == "" {
		fmt.Fprintln(w, "                        server_cert: none")
	} else {
		mark := ""
		if certs.SameCert(rs.ServerCert, l.eastProxy) {
			mark = "  <- east's proxy certificate"
		}
		fmt.Fprintf(w, "                        server_cert %s%s\n", describe(rs.ServerCert), mark)
	}
	status := rs.Status
	if rs.LastError != "" {
		status += " (" + rs.LastError + ")"
	}
	fmt.Fprintf(w, "    link status: %s\n", status)
}

func (l link) secured() error {
	rs := l.Dest.ReplicaSources[0]
	var problems []string
	if l.Source.TLSMode != "replica_ssl" && l.Source.TLSMode != "enabled" {
		problems = append(problems, "source TLS is "+l.Source.TLSMode)
	}
	if l.Source.ClientAuth != "enabled" {
		problems = append(problems, "client authentication is not enforced")
	}
	trusted := false
	for _, c := range l.Source.ClientCerts {
		trusted = trusted || certs.SameCert(c.ClientCert, l.westSyncer)
	}
	if !trusted {
		problems = append(problems, "the source does not trust west's syncer certificate")
	}
	if !rs.Encryption || !certs.SameCert(rs.ServerCert, l.eastProxy) {
		problems = append(problems, "the destination does not encrypt with east's proxy certificate")
	}
	if rs.Status != "in-sync" {
		problems = append(problems, "the link is "+rs.Status)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// proveReplication writes a key on the source database and waits for it on the replica, then says
// which of the source's ports the replica follows (the TLS port once the link is secured).
func proveReplication(ctx context.Context, w io.Writer, plane *dataplane.Plane, label string) error {
	src, err := plane.Endpoint("east", 1)
	if err != nil {
		return err
	}
	dst, err := plane.Endpoint("west", 1)
	if err != nil {
		return err
	}
	srcClient := redis.NewClient(&redis.Options{Addr: src.PlainAddr, Password: src.Password, MaxRetries: -1})
	defer srcClient.Close()
	dstClient := redis.NewClient(&redis.Options{Addr: dst.PlainAddr, Password: dst.Password, MaxRetries: -1})
	defer dstClient.Close()
	key, val := "replica-tls:demo:"+label, time.Now().Format(time.RFC3339Nano)
	if err := srcClient.Set(ctx, key, val, 0).Err(); err != nil {
		return fmt.Errorf("write %s on the source (%s): %w", key, src.PlainAddr, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := dstClient.Get(ctx, key).Result()
		if err == nil && got == val {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("key %s written on east/1 did not reach west/1 within 15s", key)
		}
		time.Sleep(50 * time.Millisecond)
	}
	info, err := dstClient.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("INFO replication on the replica: %w", err)
	}
	port := ""
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "master_port:"); ok {
			port = v
		}
	}
	how := "plain text"
	if strings.HasSuffix(src.TLSAddr, ":"+port) {
		how = "TLS (mutually authenticated)"
	}
	fmt.Fprintf(w, "    on the wire: a key written on east/1 arrived on west/1; the replica follows port %s: %s\n", port, how)
	if label == "after" && how == "plain text" {
		return fmt.Errorf("the replica still replicates in plain text")
	}
	return nil
}
