package node

import (
	"path/filepath"
	"reflect"
	"testing"

	"atoll.dev/atoll/internal/node/config"
)

func TestPlanStore(t *testing.T) {
	eps := []string{"https://10.0.0.1:2379"}
	tests := []struct {
		name    string
		cfg     config.Store
		hasData bool
		saved   *savedRole
		want    storePlan
	}{
		{"nothing set: a cluster of one", config.Store{}, false, nil, storePlan{kind: planStatic}},
		{"static", config.Store{InitialCluster: "m1=https://10.0.0.1:2380"}, false, nil, storePlan{kind: planStatic}},
		{"data wins over bootstrap settings", config.Store{Discovery: "http://d/x"}, true, nil, storePlan{kind: planRestart}},
		{"client", config.Store{Role: config.RoleClient, Endpoints: eps}, false, nil, storePlan{kind: planClient, endpoints: eps}},
		{"discovery", config.Store{Discovery: "http://d/x"}, false, nil, storePlan{kind: planDiscovery}},
		{"client by discovery, remembered", config.Store{Discovery: "http://d/x"}, false,
			&savedRole{Role: config.RoleClient, Endpoints: eps, Reason: reasonDiscovery}, storePlan{kind: planClient, endpoints: eps}},
		{"join", config.Store{Join: eps}, false, nil, storePlan{kind: planJoin}},
		{"join ignored once data exists", config.Store{Join: eps}, true, nil, storePlan{kind: planRestart}},
		{"left: client, data moved aside", config.Store{InitialCluster: "m1=https://10.0.0.1:2380"}, true,
			&savedRole{Role: config.RoleClient, Endpoints: eps, Reason: reasonLeft}, storePlan{kind: planClient, endpoints: eps, moveDataAside: true}},
		{"left after joining: the old join setting is not a request to join again", config.Store{Join: eps}, true,
			&savedRole{Role: config.RoleClient, Endpoints: eps, Reason: reasonLeft}, storePlan{kind: planClient, endpoints: eps, moveDataAside: true}},
	}
	for _, tt := range tests {
		got := planStore(tt.cfg, tt.hasData, tt.saved)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: planStore = %+v (%v), want %+v (%v)", tt.name, got, got.kind, tt.want, tt.want.kind)
		}
	}
}

func TestSavedRoleRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store-role.json")
	if r, err := loadSavedRole(path); r != nil || err != nil {
		t.Fatalf("loadSavedRole on a missing file = %v, %v; want nil, nil", r, err)
	}
	want := savedRole{Role: config.RoleClient, Endpoints: []string{"https://10.0.0.1:2379"}, Reason: reasonLeft}
	if err := saveRole(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadSavedRole(path)
	if err != nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("loadSavedRole = %+v, %v; want %+v", got, err, want)
	}
}
