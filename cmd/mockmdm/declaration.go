package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mockmdm/mockmdm/ddm"
)

const declarationUsage = `mockmdm declaration — declarative device management declarations

Usage:
  mockmdm declaration lint FILE|-   check a declaration (Apple's JSON: Type,
                                    Identifier, Payload) against Apple's
                                    declarative schemas, as PUT
                                    /v1/declarations/{identifier} does; print
                                    its kind and ServerToken, or what is wrong
`

// declarationCmd runs "mockmdm declaration …".
func declarationCmd(_ context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprint(stdout, declarationUsage)
		return nil
	}
	if args[0] != "lint" {
		return usageError{fmt.Errorf("unknown declaration command %q (see mockmdm declaration -h)", args[0])}
	}
	if len(args) != 2 {
		return usageError{errors.New("declaration lint takes one FILE (or - for standard input)")}
	}
	var raw []byte
	var err error
	if args[1] == "-" {
		raw, err = io.ReadAll(io.LimitReader(stdin, ddm.MaxDeclarationSize+1))
	} else {
		raw, err = os.ReadFile(args[1])
	}
	if err != nil {
		return err
	}
	d, err := ddm.ParseDeclaration(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", args[1], err)
	}
	out, _ := json.Marshal(d.Payload)
	fmt.Fprintf(stdout, "ok: %s %s (%s)\n  ServerToken %s\n  Payload %s\n", ddm.KindOf(d.Type), d.Identifier, d.Type, d.ServerToken, out)
	return nil
}
