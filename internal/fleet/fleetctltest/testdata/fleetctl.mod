// Build module for the real fleetctl v1.0.0 (github.com/coreos/fleet), used by
// atoll.dev/atoll/internal/fleet/fleetctltest.Build. fleet v1.0.0 predates Go
// modules (it vendored with glide), so every dependency is pinned here by hand.
// glide.lock's exact commits are not served by the module proxy; each pin is
// the proxy-available version nearest to it that compiles with a current Go
// toolchain and does not panic at start-up. See ../doc.go for why each
// deviation from glide.lock was needed.
//
// Build by hand (the go tool needs a file named go.mod in the build
// directory; fleetctl.sum must sit next to it as go.sum):
//
//	d=$(mktemp -d) && cp fleetctl.mod $d/go.mod && cp fleetctl.sum $d/go.sum &&
//	(cd $d && CGO_ENABLED=0 go build -mod=readonly -trimpath \
//	  -ldflags '-s -w -X github.com/coreos/fleet/version.Version=v1.0.0' \
//	  -o fleetctl github.com/coreos/fleet/fleetctl)
module atoll.dev/atoll/fleetctl-v1.0.0-build

go 1.22

require (
	// The program itself, unmodified.
	github.com/coreos/fleet v1.0.0

	github.com/beorn7/perks v0.0.0-20160804104726-4c0e84591b9a // == glide.lock
	github.com/coreos/etcd v3.3.13+incompatible // glide: c31b1ab8 (v3.1 era); first 3.3 whose client/ uses json-iterator instead of ugorji
	github.com/coreos/go-semver v0.2.0 // glide: 8ab6407b
	github.com/coreos/go-systemd v0.0.0-20161114122254-48702e0da86b // glide: efa0506b
	github.com/gogo/protobuf v0.0.0-20170307180453-100ba4e88506 // glide: 8d70fb31
	github.com/golang/protobuf v0.0.0-20161109072736-4bd1920723d7 // glide: 8ee79997
	github.com/jonboulle/clockwork v0.1.0 // glide: bcac9884
	github.com/json-iterator/go v1.1.12 // etcd v3.3.13 client
	github.com/matttproud/golang_protobuf_extensions v1.0.1 // glide: c12348ce
	github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd // json-iterator
	github.com/modern-go/reflect2 v1.0.3-0.20250322232337-35a7c28c31ee // json-iterator; Go >= 1.24 safe
	github.com/prometheus/client_golang v0.8.0 // glide: 575f371f
	github.com/prometheus/client_model v0.0.0-20170216185247-6f3806018612 // glide: fa8ad6fe
	github.com/prometheus/common v0.0.0-20180110214958-89604d197083 // glide: 0d5de9d6
	github.com/prometheus/procfs v0.0.0-20180125133057-cb4147076ac7 // glide: abf152e5
	github.com/spf13/cobra v0.0.0-20170130214531-35136c09d8da // glide: 9495bc00
	github.com/spf13/pflag v0.0.0-20170130214245-9ff6c6923cff // glide: 5ccb023b
	github.com/vishvananda/netlink v0.0.0-20181108222139-023a6dafdcdf // glide: a4f22d8a
	github.com/vishvananda/netns v0.0.0-20180720170159-13995c7128cc // glide: 8ba1072b
	golang.org/x/crypto v0.0.0-20170512130425-ab89591268e0 // glide: ede567c8
	golang.org/x/net v0.0.0-20170114055629-f2499483f923 // glide: 6acef71e
	golang.org/x/sys v0.50.0 // netlink; not in glide.lock (was vendored inside netlink)
	google.golang.org/api v0.0.0-20171005000305-7a7376eff6a5 // glide: c8d75a8e; older proxy copies lack gensupport.SendRequest
	google.golang.org/grpc v1.0.5 // glide: 777daa17 (v1.0.4 era)
)
