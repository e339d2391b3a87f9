package pod

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// RunState is what the pod process records when the pod starts.
type RunState struct {
	// PID is the host PID of the pod's PID 1 (stage1); Supervisor is the
	// host PID of the `atoll pod run` process waiting on it.
	PID        int       `json:"pid"`
	Supervisor int       `json:"supervisor"`
	Started    time.Time `json:"started"`
	Cgroup     string    `json:"cgroup,omitempty"`
	// AppCgroups says, per app, where PID 1 puts the app.
	AppCgroups map[string]AppCgroup `json:"appCgroups,omitempty"`
	Networks   []Network            `json:"networks,omitempty"`
	// Finished and ExitCode are written when the pod process saw the pod end.
	Finished *time.Time `json:"finished,omitempty"`
	ExitCode *int       `json:"exitCode,omitempty"`
}

// AppCgroup is an app's own cgroup, below the pod's: its limits and its
// accounting.
type AppCgroup struct {
	// Path is the cgroup's path in every hierarchy (/atoll/UUID/app-NAME).
	Path string `json:"path"`
	// Tasks are the tasks files of its cgroup v1 hierarchies: the thread
	// that forks the app joins them first.
	Tasks []string `json:"tasks,omitempty"`
	// Dir is its cgroup v2 directory, if there is a v2 hierarchy, and
	// PID1Dir PID 1's: the app is moved from the one to the other as soon
	// as it starts.
	Dir     string `json:"dir,omitempty"`
	PID1Dir string `json:"pid1Dir,omitempty"`
}

// Network is one network the pod is attached to.
type Network struct {
	Name    string `json:"name"`
	IfName  string `json:"ifName"`
	IP      string `json:"ip"`
	Gateway string `json:"gateway,omitempty"`
}

// AppStatus is what the pod's PID 1 records about an app.
type AppStatus struct {
	Name string `json:"name"`
	// PID is the app's PID inside the pod's PID namespace.
	PID       int        `json:"pid,omitempty"`
	Started   *time.Time `json:"started,omitempty"`
	Finished  *time.Time `json:"finished,omitempty"`
	ExitCode  *int       `json:"exitCode,omitempty"`
	Signal    string     `json:"signal,omitempty"`
	OOMKilled bool       `json:"oomKilled,omitempty"`
	// Error is why the app could not be started.
	Error string `json:"error,omitempty"`
}

const runStateFile = "state.json"

// AppDir is the directory of app name inside the pod directory dir.
func AppDir(dir, name string) string { return filepath.Join(dir, "apps", name) }

// WriteRunState records the pod process's state.
func WriteRunState(dir string, st *RunState) error {
	return writeJSON(filepath.Join(dir, runStateFile), st)
}

// ReadRunState reads the pod process's state; nil when the pod never started.
func ReadRunState(dir string) (*RunState, error) {
	var st RunState
	if err := readJSON(filepath.Join(dir, runStateFile), &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	return &st, nil
}

// WriteAppStatus records an app's status.
func WriteAppStatus(dir string, st *AppStatus) error {
	return writeJSON(filepath.Join(AppDir(dir, st.Name), "status.json"), st)
}

// ReadAppStatus reads an app's status; a zero status when none was written.
func ReadAppStatus(dir, name string) (AppStatus, error) {
	st := AppStatus{Name: name}
	if err := readJSON(filepath.Join(AppDir(dir, name), "status.json"), &st); err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, err
	}
	return st, nil
}

// writeJSON replaces path by rename, without fsync: see the package doc.
func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}
