package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/pki"
	"atoll.dev/atoll/internal/store"
)

// proc is a process the benchmark started and must stop.
type proc struct {
	cmd *exec.Cmd
}

func start(logFile string, name string, args ...string) (*proc, error) {
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &proc{cmd: cmd}, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func stopAll(procs []*proc) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.stop)
	}
	wg.Wait()
}

// memory reads a process's resident and proportional set sizes in MiB.
func memory(pid int) (rss, pss float64, err error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "Rss:":
			rss = kb / 1024
		case "Pss:":
			pss = kb / 1024
		}
	}
	return rss, pss, sc.Err()
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitServing polls endpoint with a linearizable read until it answers.
func waitServing(ctx context.Context, endpoint string, tls *pki.Files) error {
	cli, err := store.Dial(store.ClientOptions{Endpoints: []string{endpoint}, TLS: tls})
	if err != nil {
		return err
	}
	defer cli.Close()
	return pollRead(ctx, cli)
}

func pollRead(ctx context.Context, cli *clientv3.Client) error {
	for {
		probeCtx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Get(probeCtx, "health")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// durabilityFlags give the peer etcd the settings atoll's store runs with.
func durabilityFlags() []string {
	return []string{
		"--snapshot-count", strconv.Itoa(store.DefaultSnapshotCount),
		"--quota-backend-bytes", strconv.Itoa(store.DefaultQuotaBackendBytes),
		"--auto-compaction-mode", "periodic",
		"--auto-compaction-retention", store.DefaultAutoCompactionRetention.String(),
		"--heartbeat-interval", strconv.Itoa(int(store.DefaultHeartbeatInterval / time.Millisecond)),
		"--election-timeout", strconv.Itoa(int(store.DefaultElectionTimeout / time.Millisecond)),
		"--logger", "zap", "--log-level", "warn",
	}
}
