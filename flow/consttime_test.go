package flow_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// secretName matches the names of values an attacker must not learn by
// timing: numbers, MACs, signatures, secrets, states, verifiers.
var secretName = regexp.MustCompile(`(?i)(mac|sig|signature|secret|code|state|verifier|nonce|token)$`)

// publicBytesEqual lists the files allowed bytes.Equal, with why.
var publicBytesEqual = map[string]string{
	// compares the bot's own state data, to skip a write that changes nothing
	filepath.Join("botstate", "merge.go"): "state data",
	// the store contract suite compares the values a store gave back
	filepath.Join("storetest", "values.go"): "stored test values",
	// the log store checks a file's magic string, a constant
	filepath.Join("logstore", "record.go"): "file magic",
}

// TestSecretsComparedInConstantTime reads the engine's source and fails on a
// comparison of two secret-named values with == or !=, or a use of
// bytes.Equal outside the files that compare public data with it: secrets
// must go through hmac.Equal or subtle.ConstantTimeCompare, which take the
// same time wherever the inputs differ.
func TestSecretsComparedInConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Equal" {
					if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "bytes" && publicBytesEqual[path] == "" {
						t.Errorf("%s: bytes.Equal is not constant-time", fset.Position(n.Pos()))
					}
				}
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && secretOperand(n.X) && secretOperand(n.Y) {
					t.Errorf("%s: secret values compared with %s", fset.Position(n.Pos()), n.Op)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// secretOperand reports whether e names a secret value; literals, nil and
// lengths do not.
func secretOperand(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name != "nil" && secretName.MatchString(e.Name)
	case *ast.SelectorExpr:
		return secretName.MatchString(e.Sel.Name)
	case *ast.CallExpr:
		if fn, ok := e.Fun.(*ast.Ident); ok && fn.Name == "string" && len(e.Args) == 1 {
			return secretOperand(e.Args[0])
		}
	}
	return false
}
