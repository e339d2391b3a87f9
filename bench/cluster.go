package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"atoll.dev/atoll/internal/pki"
	"atoll.dev/atoll/internal/playground"

	"atoll.dev/atoll/bench/internal/report"
)

// clusterBench times cluster start for 3 and 10 machines, atoll against
// etcd, and reads idle memory from the 10-machine clusters.
func clusterBench(o options) ([]row, error) {
	sizes := []int{3, 10}
	atollUp := map[int][]float64{}
	etcdUp := map[int][]float64{}
	var mem memoryFigures
	for round := 1; round <= o.rounds; round++ {
		for _, n := range sizes {
			readMem := o.only != "up" && n == 10 && round == o.rounds
			if o.only == "memory" && !readMem {
				continue
			}
			secs, err := atollCluster(o, n, readMem, &mem)
			if err != nil {
				return nil, err
			}
			atollUp[n] = append(atollUp[n], secs)
			secs, err = etcdCluster(o, n, readMem, &mem)
			if err != nil {
				return nil, err
			}
			etcdUp[n] = append(etcdUp[n], secs)
			fmt.Fprintf(os.Stderr, "round %d, %d machines: atoll %.2fs, etcd %.2fs\n", round, n, atollUp[n][len(atollUp[n])-1], secs)
		}
	}
	var rows []row
	targets := map[int]float64{3: 5, 10: 15}
	for _, n := range sizes {
		if len(atollUp[n]) == 0 {
			continue
		}
		a := report.Median(atollUp[n])
		rows = append(rows, row{
			what:  fmt.Sprintf("cluster up to all healthy, %d machines (etcd: 3 members%s)", n, map[bool]string{true: " + 7 gRPC proxies", false: ""}[n == 10]),
			atoll: a, peer: report.Median(etcdUp[n]), unit: "s",
			target: fmt.Sprintf("≤ %.0f s", targets[n]), met: a <= targets[n],
		})
	}
	if mem.memberRSS > 0 {
		rows = append(rows,
			row{what: fmt.Sprintf("idle RSS, store member (PSS %.1f MiB; etcd PSS %.1f MiB)", mem.memberPSS, mem.etcdPSS),
				atoll: mem.memberRSS, peer: mem.etcdRSS, unit: "MiB", target: "≤ 40 MiB", met: mem.memberRSS <= 40},
			row{what: fmt.Sprintf("idle RSS, store client (PSS %.1f MiB; etcd gRPC proxy PSS %.1f MiB)", mem.clientPSS, mem.proxyPSS),
				atoll: mem.clientRSS, peer: mem.proxyRSS, unit: "MiB", target: "≤ 20 MiB", met: mem.clientRSS <= 20},
		)
	}
	return rows, nil
}

type memoryFigures struct {
	memberRSS, memberPSS, clientRSS, clientPSS float64
	etcdRSS, etcdPSS, proxyRSS, proxyPSS       float64
}

// atollCluster runs atoll cluster up for n machines and returns how long
// it took to have every machine healthy.
func atollCluster(o options, n int, readMem bool, mem *memoryFigures) (float64, error) {
	dir := filepath.Join(o.workDir, "pg")
	name := "bench" + strconv.Itoa(n)
	down := func() {
		exec.Command(o.atoll, "cluster", "down", "--name", name, "--dir", dir).Run()
	}
	down()
	defer down()
	start := time.Now()
	out, err := exec.Command(o.atoll, "cluster", "up", "--name", name, "--dir", dir, "--machines", strconv.Itoa(n)).CombinedOutput()
	took := time.Since(start).Seconds()
	if err != nil {
		return 0, fmt.Errorf("atoll cluster up: %w: %s", err, out)
	}
	if readMem {
		time.Sleep(o.settle)
		c, err := playground.Load(playground.Options{Dir: dir}, name)
		if err != nil {
			return 0, err
		}
		var memberRSS, memberPSS, clientRSS, clientPSS []float64
		for _, m := range c.Machines {
			rss, pss, err := memory(m.PID)
			if err != nil {
				return 0, err
			}
			if m.Member {
				memberRSS, memberPSS = append(memberRSS, rss), append(memberPSS, pss)
			} else {
				clientRSS, clientPSS = append(clientRSS, rss), append(clientPSS, pss)
			}
		}
		mem.memberRSS, mem.memberPSS = report.Median(memberRSS), report.Median(memberPSS)
		mem.clientRSS, mem.clientPSS = report.Median(clientRSS), report.Median(clientPSS)
	}
	return took, nil
}

// etcdCluster starts 3 etcd members, with TLS like the playground's, and
// n-3 gRPC proxies at once, and returns how long until every one of them
// answers a linearizable read.
func etcdCluster(o options, n int, readMem bool, mem *memoryFigures) (float64, error) {
	dir, err := os.MkdirTemp(o.workDir, "etcd-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ca, err := pki.CreateCA(filepath.Join(dir, "ca"), pki.CAOptions{})
	if err != nil {
		return 0, err
	}
	certPEM, keyPEM, err := ca.Issue(pki.IssueRequest{CommonName: "etcd", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Client: true})
	if err != nil {
		return 0, err
	}
	tls, err := ca.WriteIdentity(filepath.Join(dir, "tls"), "node", certPEM, keyPEM)
	if err != nil {
		return 0, err
	}
	ports, err := freePorts(9 + n)
	if err != nil {
		return 0, err
	}
	// The members also listen on plain HTTP on loopback for their proxies:
	// etcd 3.4's gRPC proxy refuses a client certificate with a Common Name.
	var initial, clientURLs, proxyURLs []string
	for i := range 3 {
		initial = append(initial, fmt.Sprintf("e%d=https://127.0.0.1:%d", i+1, ports[2*i+1]))
		clientURLs = append(clientURLs, fmt.Sprintf("https://127.0.0.1:%d", ports[2*i]))
		proxyURLs = append(proxyURLs, fmt.Sprintf("http://127.0.0.1:%d", ports[6+i]))
	}
	tlsFlags := []string{
		"--cert-file", tls.Cert, "--key-file", tls.Key, "--trusted-ca-file", tls.CA, "--client-cert-auth",
		"--peer-cert-file", tls.Cert, "--peer-key-file", tls.Key, "--peer-trusted-ca-file", tls.CA, "--peer-client-cert-auth",
	}
	began := time.Now()
	var procs []*proc
	defer func() { stopAll(procs) }()
	for i := range 3 {
		args := append([]string{
			"--name", fmt.Sprintf("e%d", i+1), "--data-dir", filepath.Join(dir, fmt.Sprintf("e%d", i+1)),
			"--listen-client-urls", clientURLs[i] + "," + proxyURLs[i], "--advertise-client-urls", clientURLs[i],
			"--listen-peer-urls", strings.SplitN(initial[i], "=", 2)[1], "--initial-advertise-peer-urls", strings.SplitN(initial[i], "=", 2)[1],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-token", "bench", "--initial-cluster-state", "new",
		}, append(tlsFlags, durabilityFlags()...)...)
		p, err := start(filepath.Join(dir, fmt.Sprintf("e%d.log", i+1)), o.etcd, args...)
		if err != nil {
			return 0, err
		}
		procs = append(procs, p)
	}
	endpoints := append([]string(nil), clientURLs...)
	var proxies []*proc
	for i := 3; i < n; i++ {
		listen := fmt.Sprintf("127.0.0.1:%d", ports[9+i])
		p, err := start(filepath.Join(dir, fmt.Sprintf("proxy%d.log", i)), o.etcd, "grpc-proxy", "start",
			"--endpoints", strings.Join(proxyURLs, ","), "--listen-addr", listen)
		if err != nil {
			return 0, err
		}
		procs = append(procs, p)
		proxies = append(proxies, p)
		endpoints = append(endpoints, "http://"+listen)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(endpoints))
	for i, ep := range endpoints {
		wg.Go(func() {
			var files *pki.Files
			if strings.HasPrefix(ep, "https") {
				files = &tls
			}
			errs[i] = waitServing(ctx, ep, files)
		})
	}
	wg.Wait()
	took := time.Since(began).Seconds()
	for i, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("etcd endpoint %s: %w (logs in %s)", endpoints[i], err, dir)
		}
	}
	if readMem {
		time.Sleep(o.settle)
		var rss, pss, prss, ppss []float64
		for _, p := range procs[:3] {
			r, s, err := memory(p.pid())
			if err != nil {
				return 0, err
			}
			rss, pss = append(rss, r), append(pss, s)
		}
		for _, p := range proxies {
			r, s, err := memory(p.pid())
			if err != nil {
				return 0, err
			}
			prss, ppss = append(prss, r), append(ppss, s)
		}
		mem.etcdRSS, mem.etcdPSS = report.Median(rss), report.Median(pss)
		mem.proxyRSS, mem.proxyPSS = report.Median(prss), report.Median(ppss)
	}
	return took, nil
}
