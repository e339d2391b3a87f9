package config

import (
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts
// Marshal writes back in a form Parse reads to an equal Config.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		fullFile,
		"name: m1\nnmae: x\n",
		"store: {role: client, endpoints: 'https://a:2379,https://b:2379'}\n",
		"store:\n  role: auto\n  discovery: http://10.0.0.254:7001/3f9a0c\n",
		"store:\n  join: [https://10.0.0.1:2379]\n  quota-backend-bytes: 100MB\n",
		"metadata: {a: 1, b: true, c: ~, d: 'x y', e: \"\\u00e9\"}\n",
		"x: &b {client-port: 2379}\nstore: {<<: *b, peer-port: 2380}\n",
		"store: &s\n  <<: *s\n",
		"- a\n",
		"a: [\n",
		"name: a\n---\nname: b\n",
		"store:\n  initial-cluster: m1=https://a:2380,m1=http://[fd00::1]:2380\n  initial-cluster-token: t\n",
		"store: {heartbeat-interval: 50ms, election-timeout: 250ms, auto-compaction-retention: 2h30m}\n",
		"store: {snapshot-count: 18446744073709551615, quota-backend-bytes: 64GiB, client-port: '+2379'}\n",
		"metadata:\n  k: \"a\\u2028b\"\n",
		"tls-dir: \"/etc/atoll/tls dir\"\nlog-level: debug\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		if err := Validate(cfg); err != nil {
			t.Fatalf("Parse accepted %q but Validate refuses %+v: %v", data, cfg, err)
		}
		out, err := Marshal(cfg)
		if err != nil {
			t.Fatalf("Marshal(%+v) of accepted %q: %v", cfg, data, err)
		}
		again, warnings, err := Parse("marshaled.yaml", out)
		if err != nil {
			t.Fatalf("Parse(Marshal(cfg)) error = %v, want none; input %q; YAML:\n%s", err, data, out)
		}
		if len(warnings) != 0 {
			t.Errorf("Parse(Marshal(cfg)) warnings = %v, want none; YAML:\n%s", warnings, out)
		}
		if !reflect.DeepEqual(again, cfg) {
			t.Fatalf("Parse(Marshal(cfg)) =\n%#v\nwant\n%#v\ninput %q; YAML:\n%s", again, cfg, data, out)
		}
	})
}
