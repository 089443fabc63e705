package codeshape

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Limits a newcomer can hold in their head; docs/architecture.md states them.
const (
	maxFuncLines  = 100
	maxGoDocLines = 60
)

// root is the repository, two levels up from this package.
const root = "../.."

func TestFunctionLength(t *testing.T) {
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
			if n := end.Line - start.Line + 1; n > maxFuncLines {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d: %s is %d lines; want at most %d", rel, start.Line, fn.Name.Name, n, maxFuncLines)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGoDocFitsAScreen(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go doc for each package")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	for _, pkg := range []string{"sigv4", "kvs", "awskvs", "signaling", "diagnose", "vend", "emulator"} {
		t.Run(pkg, func(t *testing.T) {
			cmd := exec.Command(goTool, "doc", "./"+pkg)
			cmd.Dir = root
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go doc ./%s: %v", pkg, err)
			}
			if n := strings.Count(string(out), "\n"); n > maxGoDocLines {
				t.Errorf("go doc ./%s is %d lines; want at most %d (move prose to docs/, unexport what users do not need)", pkg, n, maxGoDocLines)
			}
		})
	}
}
