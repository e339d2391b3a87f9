package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every package says what it does in a doc comment.
func TestEveryPackageHasADocComment(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		documented := map[string]bool{} // package name -> has a doc comment
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(path, name), nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				return err
			}
			pkg := f.Name.Name
			documented[pkg] = documented[pkg] || (f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "")
		}
		for pkg, ok := range documented {
			if !ok {
				t.Errorf("package %s in %s has no doc comment", pkg, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
