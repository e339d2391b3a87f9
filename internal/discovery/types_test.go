package discovery

import (
	"reflect"
	"strings"
	"testing"
)

func TestInitialCluster(t *testing.T) {
	tests := []struct {
		name  string
		state State
		want  string
	}{
		{"no members", State{Size: 3}, ""},
		{"one member", State{Size: 1, Members: []Entry{
			{MachineID: testMachineID(0), Registration: Registration{Name: "m1", PeerURLs: []string{"https://a:2380"}}},
		}}, "m1=https://a:2380"},
		{"registration order, every peer URL", State{Size: 3, Members: []Entry{
			{Registration: Registration{Name: "m2", PeerURLs: []string{"https://b:2380"}}},
			{Registration: Registration{Name: "m1", PeerURLs: []string{"https://a:2380", "http://[fd00::1]:2380"}}},
			{Registration: Registration{Name: "m3", PeerURLs: []string{"https://c:2380"}}},
		}, Clients: []Entry{
			{Registration: Registration{Name: "c1", PeerURLs: []string{"https://d:2380"}}},
		}}, "m2=https://b:2380,m1=https://a:2380,m1=http://[fd00::1]:2380,m3=https://c:2380"},
	}
	for _, tt := range tests {
		if got := tt.state.InitialCluster(); got != tt.want {
			t.Errorf("%s: InitialCluster() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMemberClientURLsAndFull(t *testing.T) {
	st := State{Size: 2, Members: []Entry{
		{Registration: Registration{Name: "m1", ClientURLs: []string{"https://a:2379", "http://127.0.0.1:2379"}}},
	}, Clients: []Entry{
		{Registration: Registration{Name: "c1", ClientURLs: []string{"https://c:2379"}}},
	}}
	if got, want := st.MemberClientURLs(), []string{"https://a:2379", "http://127.0.0.1:2379"}; !reflect.DeepEqual(got, want) {
		t.Errorf("MemberClientURLs() = %v, want %v", got, want)
	}
	if st.Full() {
		t.Errorf("Full() with 1 of 2 members = true, want false")
	}
	st.Members = append(st.Members, Entry{Registration: Registration{Name: "m2"}})
	if !st.Full() {
		t.Errorf("Full() with 2 of 2 members = false, want true")
	}
	if (State{}).Full() {
		t.Errorf("Full() of the zero State = true, want false")
	}
}

func TestCheckEndpointURL(t *testing.T) {
	valid := []string{
		"https://10.0.0.1:2380",
		"http://node-1.example.com:2379",
		"http://[fd00::1]:2380",
		"https://etcd_1.local.:1",
		"http://localhost:65535",
	}
	invalid := []string{
		"", "10.0.0.1:2380", "https://10.0.0.1", "https://10.0.0.1:", "https://:2380",
		"ftp://10.0.0.1:2380", "HTTPS://10.0.0.1:2380", "https://10.0.0.1:2380/",
		"https://10.0.0.1:2380?x", "https://10.0.0.1:2380#f", "https://u:p@10.0.0.1:2380",
		"https://10.0.0.1:0", "https://10.0.0.1:65536", "https://10.0.0.1:02380",
		"https://a,b:2380", "https://a=b:2380", "https://fd00::1:2380", "https://[zz]:2380",
		"https://a..b:2380", "unix:///run/etcd.sock", "https://" + strings.Repeat("a", 600) + ":1",
	}
	for _, raw := range valid {
		if err := checkEndpointURL(raw); err != nil {
			t.Errorf("checkEndpointURL(%q) = %v, want nil", raw, err)
		}
	}
	for _, raw := range invalid {
		if err := checkEndpointURL(raw); err == nil {
			t.Errorf("checkEndpointURL(%q) = nil, want an error", raw)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, name := range []string{"m", "m1", "Node_1.a-b", "9", strings.Repeat("x", 63)} {
		if err := checkName(name); err != nil {
			t.Errorf("checkName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "-m", ".m", "_m", "m 1", "m=1", "m,1", "m/1", "mé", strings.Repeat("x", 64)} {
		if err := checkName(name); err == nil {
			t.Errorf("checkName(%q) = nil, want an error", name)
		}
	}
}

func TestParseTokenURL(t *testing.T) {
	token := strings.Repeat("0f", 16)
	for _, raw := range []string{"http://h:7001/" + token, "https://d.example/base/" + token} {
		if _, err := parseTokenURL(raw); err != nil {
			t.Errorf("parseTokenURL(%q) = %v, want nil", raw, err)
		}
	}
	for _, raw := range []string{"", "h:7001/" + token, "http://h:7001", "http://h:7001/new", "http://h/" + token + "?x=1", "ftp://h/" + token} {
		if _, err := parseTokenURL(raw); err == nil {
			t.Errorf("parseTokenURL(%q) = nil, want an error", raw)
		}
	}
}
