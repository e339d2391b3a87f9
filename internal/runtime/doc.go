// Package runtime is atoll's container runtime, after rkt's model: pods with
// no daemon. `atoll pod run` is the pod's own process (stage0): it prepares
// the pod, starts the pod's PID 1 (stage1) in new namespaces, puts it in
// the pod's cgroup, attaches its networks, waits for it and cleans up; so a
// unit that runs it is supervised like any other service, and restarting
// `atoll node` kills no pod. Every other command (list, status, stop, enter,
// gc) works from the pod state on disk.
//
// Runtime wires the parts, which live in subpackages:
//
//   - layer: applies one image layer (a tar stream) to a directory, safely;
//   - image: the content-addressed image store (import, fetch, names, gc);
//   - trust: OpenPGP keys by image-name prefix, and signature checks;
//   - pod: pod state on disk (a directory per phase, flock, atomic rename);
//   - stage1: the pod's PID 1 and the setup of each app (overlayfs root,
//     capabilities, seccomp), and enter;
//   - seccomp, caps: the default confinement and its loosening;
//   - network: the default bridge network, CNI networks and port mappings.
//
// Choices made where rkt's model left room:
//
//   - Isolation is our own stage1 rather than runc's libcontainer: one Go
//     process start per pod instead of libcontainer's re-exec with a cgo
//     nsenter constructor (which would also make the atoll binary need cgo);
//     bench/README.md has the measured start times against runc.
//   - Each app has its own cgroup with its own --memory, --cpu and
//     --pids-limit, as rkt's isolators were per app: /atoll/<uuid>/app-<name>,
//     beside PID 1's /atoll/<uuid>/pid1, under the pod's /atoll/<uuid>, which
//     holds the device rules and no process. So PID 1's threads count
//     against no app's pids limit, an OOM kill is told apart per app, and
//     cgroup v2's rule that only leaves hold processes is kept. PID 1 joins
//     the app's v1 hierarchies from the thread that forks the app (its tasks
//     file), so the app starts in them. v2 moves whole processes only, and
//     cloning into a cgroup takes clone3, which the app's seccomp filter
//     refuses (Docker's does, as seccomp cannot read its flags): on a
//     unified host PID 1 moves the app as soon as it has started, then
//     whatever it forked meanwhile. That leaves a window of microseconds
//     in which the app runs in PID 1's cgroup, without its limits;
//     this machine type is a v1/v2 hybrid, where the v1 hierarchies hold
//     the controllers and the path is tested by moving in the v2 one too.
//   - The pod runs until all its apps have exited, or until one fails: then
//     the others get SIGTERM and, after the stop timeout, SIGKILL. The pod's
//     exit code is that of the first app that failed (128+N for a signal),
//     or 0.
//   - The stage1 binary is executed through a read-only bind mount of the
//     running atoll binary that is detached as soon as it started, so that a
//     process in the pod cannot write the host's binary through
//     /proc/<pid>/exe (runc's CVE-2019-5736) without copying the binary on
//     every start; stage1 is also not dumpable.
package runtime
