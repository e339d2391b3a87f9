package builtin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"atoll.dev/atoll/internal/service"
)

// dropIn is one drop-in file: its path under UnitDir
// (web.service.d/10-limits.conf) and its content.
type dropIn struct {
	path    string
	content []byte
}

// unitSource is what a unit is read from: its file (its template's for
// an instance) and its drop-ins in the order they apply.
type unitSource struct {
	content []byte
	dropins []dropIn
}

// text is the unit as loaded, as systemctl cat shows it: the file, then
// each drop-in after a comment naming it. Without drop-ins it is the file
// as it is.
func (s unitSource) text() []byte {
	if len(s.dropins) == 0 {
		return s.content
	}
	var b bytes.Buffer
	b.Write(s.content)
	for _, d := range s.dropins {
		if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "\n# %s\n", d.path)
		b.Write(d.content)
	}
	return b.Bytes()
}

// dropInDirs are the directories under UnitDir whose *.conf files are
// drop-ins of unit name, most specific first, as systemd's
// unit_file_find_dirs walks them (systemd.unit(5)): the unit's own, its
// template's, those of its name cut after each "-" (web-api@1.service:
// web-@1.service, web-@.service, web-.service), then the type's
// (service.d).
func dropInDirs(name string) []string {
	dot := strings.LastIndexByte(name, '.')
	typ := name[dot+1:]
	prefix, instance, at := strings.Cut(name[:dot], "@")
	var names []string
	var walk func(prefix, instance string, at bool)
	walk = func(prefix, instance string, at bool) {
		n := prefix
		if at {
			n += "@" + instance
		}
		names = append(names, n+"."+typ)
		if instance != "" {
			walk(prefix, "", true)
		}
		p, chopped := prefix, false
		for {
			dash := strings.LastIndexByte(p, '-')
			if dash <= 0 {
				return
			}
			if dash != len(p)-1 || chopped {
				p = p[:dash+1]
				break
			}
			p, chopped = p[:dash], true // a trailing dash is cut once
		}
		walk(p, instance, instance != "")
	}
	walk(prefix, instance, at)
	dirs := make([]string, 0, len(names)+1)
	for _, n := range names {
		if !slices.Contains(dirs, n+".d") {
			dirs = append(dirs, n+".d")
		}
	}
	return append(dirs, typ+".d")
}

// dropInsFor are name's drop-ins among those read from UnitDir: of two
// files of the same name the one in the more specific directory, all
// sorted by file name. Called with m.mu held.
func (m *Manager) dropInsFor(name string) []dropIn {
	chosen := map[string]dropIn{}
	var bases []string
	for _, dir := range dropInDirs(name) {
		for _, d := range m.dropins[dir] {
			base := filepath.Base(d.path)
			if _, ok := chosen[base]; !ok {
				chosen[base] = d
				bases = append(bases, base)
			}
		}
	}
	slices.Sort(bases)
	out := make([]dropIn, 0, len(bases))
	for _, b := range bases {
		if d := chosen[b]; len(d.content) > 0 { // empty: masked by /dev/null
			out = append(out, d)
		}
	}
	return out
}

// sourceOf is what unit name is read from, false when it has no file.
// Called with m.mu held.
func (m *Manager) sourceOf(name string) (unitSource, bool) {
	content, ok := m.fileOf(name)
	if !ok {
		return unitSource{}, false
	}
	return m.sourceWith(name, content), true
}

// sourceWith is name's source with content as its file. Called with m.mu
// held.
func (m *Manager) sourceWith(name string, content []byte) unitSource {
	return unitSource{content: content, dropins: m.dropInsFor(name)}
}

// checkDropIns parses each drop-in on its own, so that an error names
// the drop-in and its line.
func (m *Manager) checkDropIns(name string, src unitSource) error {
	for _, d := range src.dropins {
		if _, err := m.parse(name, d.path, d.content); err != nil {
			return fmt.Errorf("drop-in %s: %w", d.path, err)
		}
	}
	return nil
}

// defineSource is define over a unit's file and drop-ins.
func (m *Manager) defineSource(name string, src unitSource) *definition {
	if len(bytes.TrimSpace(src.content)) == 0 || len(src.dropins) == 0 {
		return m.define(name, src.content)
	}
	if err := m.checkDropIns(name, src); err != nil {
		return &definition{content: src.text(), load: service.LoadError, err: err}
	}
	return m.define(name, src.text())
}

// defineTimerSource is defineTimer over a timer's file and drop-ins.
func (m *Manager) defineTimerSource(name string, src unitSource) *timerDef {
	if len(bytes.TrimSpace(src.content)) == 0 || len(src.dropins) == 0 {
		return m.defineTimer(name, src.content)
	}
	if err := m.checkDropIns(name, src); err != nil {
		return &timerDef{content: src.text(), load: service.LoadError, err: err}
	}
	return m.defineTimer(name, src.text())
}

// readUnitDir reads the unit files and drop-ins under UnitDir: files
// named as units, and the *.conf files of directories named NAME.d.
func (m *Manager) readUnitDir() (map[string][]byte, map[string][]dropIn, error) {
	entries, err := os.ReadDir(m.opts.UnitDir)
	if err != nil {
		return nil, nil, err
	}
	files := map[string][]byte{}
	dropins := map[string][]dropIn{}
	for _, e := range entries {
		path := filepath.Join(m.opts.UnitDir, e.Name())
		if dir, ok := strings.CutSuffix(e.Name(), ".d"); ok && (checkName(dir) == nil || isTypeDir(dir)) {
			confs, err := os.ReadDir(path)
			if err != nil {
				continue // not a directory
			}
			for _, c := range confs {
				if !strings.HasSuffix(c.Name(), ".conf") || strings.HasPrefix(c.Name(), ".") {
					continue
				}
				content, err := os.ReadFile(filepath.Join(path, c.Name()))
				if err != nil {
					continue // a dangling link or a directory is not a drop-in
				}
				dropins[e.Name()] = append(dropins[e.Name()], dropIn{path: e.Name() + "/" + c.Name(), content: content})
			}
			continue
		}
		if checkName(e.Name()) != nil {
			continue
		}
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() && fi.Mode()&os.ModeCharDevice == 0 {
			continue // a link to /dev/null masks: it reads empty
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		files[e.Name()] = content
	}
	return files, dropins, nil
}

// isTypeDir reports whether name is a unit type, as in service.d.
func isTypeDir(name string) bool { return slices.Contains(unitTypes, name) }

// DaemonReload reads every unit file and drop-in under UnitDir again, as
// `systemctl daemon-reload` does, for files changed there by hand: a new
// file makes a unit that can be started; a changed one applies at once
// to a unit that is not running and at its next start (or restart) to
// one that is, as Load does; a unit whose file is gone is unloaded if it
// is not running, and otherwise stays, with LoadState not-found, until
// it stops. A file that does not read (a syntax error, a bad setting)
// makes a unit in LoadState error or bad-setting, and the error, naming
// the file and line, is returned with the others once every file is
// loaded.
func (m *Manager) DaemonReload(ctx context.Context) error {
	files, dropins, err := m.readUnitDir()
	if err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errDetached
	}
	m.files, m.dropins = files, dropins
	var errs []error
	report := func(name string, loadErr error) {
		if loadErr != nil {
			errs = append(errs, fmt.Errorf("unit %s: %w", name, loadErr))
		}
	}
	type serviceUpdate struct {
		u   *unit
		def *definition
	}
	type timerUpdate struct {
		t   *timerUnit
		def *timerDef
	}
	var services []serviceUpdate
	var timers []timerUpdate
	var goneServices []*unit
	var goneTimers []*timerUnit
	for name, u := range m.units {
		src, ok := m.sourceOf(name)
		if !ok {
			goneServices = append(goneServices, u)
			continue
		}
		def := m.defineSource(name, src)
		if !bytes.Equal(def.content, u.loadedContent()) {
			services = append(services, serviceUpdate{u, def})
			report(name, loadError(def.spec == nil && def.load != service.Masked, def.err))
		}
	}
	for name, t := range m.timers {
		src, ok := m.sourceOf(name)
		if !ok {
			goneTimers = append(goneTimers, t)
			continue
		}
		def := m.defineTimerSource(name, src)
		if !bytes.Equal(def.content, t.loadedContent()) {
			timers = append(timers, timerUpdate{t, def})
			report(name, loadError(def.spec == nil && def.load != service.Masked, def.err))
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if isTemplate(name) || m.units[name] != nil || m.timers[name] != nil {
			continue
		}
		src, _ := m.sourceOf(name)
		if isTimer(name) {
			def := m.defineTimerSource(name, src)
			report(name, loadError(def.spec == nil && def.load != service.Masked, def.err))
			t := m.newTimer(name, def)
			m.timers[name] = t
			t.publish()
			go t.loop()
			continue
		}
		def := m.defineSource(name, src)
		report(name, loadError(def.spec == nil && def.load != service.Masked, def.err))
		u := m.newUnit(name, def)
		m.units[name] = u
		u.publish()
		go u.loop()
	}
	m.mu.Unlock()

	for _, up := range services {
		if err := up.u.ask(ctx, "load", up.def); err != nil {
			errs = append(errs, fmt.Errorf("unit %s: %w", up.u.name, err))
		}
	}
	for _, up := range timers {
		if err := up.t.ask(ctx, "load", up.def); err != nil {
			errs = append(errs, fmt.Errorf("unit %s: %w", up.t.name, err))
		}
	}
	for _, u := range goneServices {
		if running(u) {
			// Stays until it stops (dropOrphan), its file not found.
			old := u.loadedDefinition()
			def := &definition{content: old.content, load: service.NotFound, err: errors.New("unit file removed")}
			if err := u.ask(ctx, "load", def); err != nil {
				errs = append(errs, fmt.Errorf("unit %s: %w", u.name, err))
			}
			continue
		}
		m.dropOrphan(u.name)
	}
	for _, t := range goneTimers {
		if timerActiveState(t.snapshot().Sub) == service.Active {
			old := t.loadedDef()
			def := &timerDef{content: old.content, load: service.NotFound, err: errors.New("unit file removed")}
			if err := t.ask(ctx, "load", def); err != nil {
				errs = append(errs, fmt.Errorf("unit %s: %w", t.name, err))
			}
			continue
		}
		m.dropOrphanTimer(ctx, t)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}

// loadError is err when failed.
func loadError(failed bool, err error) error {
	if failed {
		return err
	}
	return nil
}

// dropOrphan unloads service name if its file is gone and it does not
// run: after DaemonReload, at once or when it stops. Its enablement
// links stay, as the file's removal by hand left them.
func (m *Manager) dropOrphan(name string) {
	m.mu.Lock()
	u := m.units[name]
	_, has := m.fileOf(name)
	closed := m.closed
	m.mu.Unlock()
	if u == nil || has || closed || running(u) {
		return
	}
	if err := u.ask(context.Background(), "unload", nil); err != nil {
		return
	}
	m.mu.Lock()
	if m.units[name] == u {
		delete(m.units, name)
	}
	m.mu.Unlock()
}

// dropOrphanTimerNamed is dropOrphanTimer by name.
func (m *Manager) dropOrphanTimerNamed(name string) {
	m.mu.Lock()
	t := m.timers[name]
	m.mu.Unlock()
	if t != nil {
		m.dropOrphanTimer(context.Background(), t)
	}
}

// dropOrphanTimer is dropOrphan for a timer.
func (m *Manager) dropOrphanTimer(ctx context.Context, t *timerUnit) {
	m.mu.Lock()
	_, has := m.fileOf(t.name)
	closed := m.closed
	m.mu.Unlock()
	if has || closed || timerActiveState(t.snapshot().Sub) == service.Active {
		return
	}
	if err := t.ask(ctx, "unload", nil); err != nil {
		return
	}
	m.mu.Lock()
	if m.timers[t.name] == t {
		delete(m.timers, t.name)
	}
	m.mu.Unlock()
}

// loadedContent is the text of the file loaded last into the unit.
func (u *unit) loadedContent() []byte { return u.loadedDefinition().content }

// loadedDefinition is the definition loaded last; safe from any
// goroutine.
func (u *unit) loadedDefinition() *definition {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.loaded
}

func (t *timerUnit) loadedContent() []byte { return t.loadedDef().content }

// loadedDef is the timer's definition loaded last; safe from any
// goroutine.
func (t *timerUnit) loadedDef() *timerDef {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.loaded
}
