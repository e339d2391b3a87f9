package unit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	gsunit "github.com/coreos/go-systemd/v22/unit"
)

// ApplyDropIns returns f with the options of each drop-in appended, in the
// order given, which is how systemd applies drop-ins: a later assignment
// overrides an earlier one for single-valued directives, adds to the list
// for list directives, and an empty assignment resets a list (Values
// applies that rule). Pass drop-ins in the order LoadDropIns returns them:
// sorted by file name across all their directories. Positions are kept, so
// warnings and errors about the result still name the drop-in and line.
func ApplyDropIns(f *File, dropins ...*File) *File {
	c := f.clone()
	for _, d := range dropins {
		for _, opt := range d.Options {
			c.add(&gsunit.UnitOption{Section: opt.Section, Name: opt.Name, Value: opt.Value}, d.pos[opt])
		}
	}
	return c
}

// LoadDropIns reads the drop-ins of unit unitName from the unit search
// path searchPath (most important directory first, for example
// /etc/systemd/system then /run/systemd/system then /lib/systemd/system),
// following systemd's src/shared/dropin.c and systemd.unit(5). In each
// directory it looks, most specific first, in
//
//	<unit>.d/                 web-api@1.service.d/
//	<template>.d/             web-api@.service.d/
//	<dash prefixes>.d/        web-@1.service.d/, web-@.service.d/, web-.service.d/
//
// then in each directory's <type>.d/ (service.d/). Every *.conf file in
// them that does not start with "." counts; the result is sorted by file
// name across all directories, and of two files with the same name the one
// in the more important place (earlier directory, more specific name)
// hides the other; a drop-in linked to /dev/null is empty and so masks the
// others of its name. Missing directories are skipped. A drop-in that
// cannot be read or parsed is an error, since systemd does not load a unit
// whose drop-in is broken.
func LoadDropIns(unitName string, searchPath ...string) ([]*File, []Warning, error) {
	name, err := ParseName(unitName)
	if err != nil {
		return nil, nil, err
	}
	var dirs []string
	for _, root := range searchPath {
		for _, n := range dropInNames(name) {
			dirs = append(dirs, filepath.Join(root, n+".d"))
		}
	}
	for _, root := range searchPath {
		dirs = append(dirs, filepath.Join(root, name.Type+".d"))
	}

	chosen := make(map[string]string) // file name → path
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue // most units have no drop-in directory
		}
		if err != nil {
			return nil, nil, fmt.Errorf("unit: drop-ins of %s: %w", unitName, err)
		}
		for _, e := range entries {
			base := e.Name()
			if !strings.HasSuffix(base, ".conf") || strings.HasPrefix(base, ".") || chosen[base] != "" {
				continue
			}
			path := filepath.Join(dir, base)
			if info, err := os.Stat(path); err != nil || info.IsDir() {
				continue // a dangling link or a directory is not a drop-in
			}
			chosen[base] = path
		}
	}
	bases := make([]string, 0, len(chosen))
	for base := range chosen {
		bases = append(bases, base)
	}
	sort.Strings(bases)

	var files []*File
	var warnings []Warning
	for _, base := range bases {
		path := chosen[base]
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("unit: drop-in of %s: %w", unitName, err)
		}
		f, w, err := parse(path, base, name.Type, data)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, f)
		warnings = append(warnings, w...)
	}
	return files, warnings, nil
}

// dropInNames returns the unit names whose "<name>.d" directories hold
// drop-ins for n, most specific first, as systemd's unit_file_find_dirs
// walks them: the name, its template, then the name with its prefix cut
// after each "-" from the right (keeping the instance), recursively.
func dropInNames(n Name) []string {
	names := []string{n.String()}
	if n.IsInstance() {
		template := n
		template.Instance, template.Template = "", true
		names = append(names, dropInNames(template)...)
	}
	prefix, chopped := n.Prefix, false
	for {
		dash := strings.LastIndexByte(prefix, '-')
		if dash <= 0 {
			return names
		}
		if dash != len(prefix)-1 || chopped {
			prefix = prefix[:dash+1]
			break
		}
		prefix, chopped = prefix[:dash], true // a trailing dash is cut once
	}
	return append(names, dropInNames(Name{Prefix: prefix, Instance: n.Instance, Type: n.Type})...)
}
