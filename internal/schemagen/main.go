// Command schemagen turns Apple's device-management schema (the YAML files of
// the "Device Management Client Schema" release kept in shared/apple-schema)
// into the compact JSON file that package mdm/schema embeds.
//
// mockmdm must not read ../shared at run time: the binary has to work from any
// directory and on machines that never saw the schema checkout. So the facts a
// validator needs (types, presence, allowed values, ranges, formats, OS
// support) are extracted here, once, into mdm/schema/schema.json, and the
// input is recorded so a reader can tell which release the data came from.
//
// Usage (from mdm/schema, through go generate):
//
//	go run ../../internal/schemagen -src ../../../shared/apple-schema -out schema.json
//
// What is read: mdm/profiles, mdm/commands, mdm/checkin, mdm/errors and other
// (the *.yaml files directly in each), declarative/** (unless -declarative=false),
// and README.md for the OS-version table. Prose (title, description, content,
// notes) is dropped. The output is deterministic: files in sorted order, keys
// in schema order, maps with sorted keys, so running the generator twice over
// the same input gives byte-identical files.
//
// The digest recorded in "source.sha256" is SHA-256 over, for every input file
// in sorted slash-separated relative path order: the path, a NUL byte, the
// decimal length of the content, a NUL byte, and the content.
//
// YAML anchors: Apple's files share subkey lists through anchors and aliases,
// and two of them (com.apple.homescreenlayout, com.apple.applicationaccess.new)
// are recursive (a folder holds pages that hold icons that may be folders).
// A key list that is the target of an alias is written once into the top-level
// "keylists" array and referenced by index ("subkeysref", "payloadkeysref",
// "responsekeysref"), which keeps recursion finite and the file small. Any other
// alias (a shared supportedOS object, say) is expanded in place.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	src := flag.String("src", "../../../shared/apple-schema", "directory of Apple's schema release (holds README.md, mdm/, other/, declarative/)")
	out := flag.String("out", "schema.json", "JSON file to write")
	goOut := flag.String("go", "", "Go file recording the provenance (default: zz_generated.go next to -out; \"-\" to skip)")
	pkg := flag.String("pkg", "schema", "package name for the -go file")
	ddm := flag.Bool("declarative", true, "include declarative/** (declarations, status items, protocol, credentials)")
	flag.Parse()

	if *goOut == "" {
		*goOut = filepath.Join(filepath.Dir(*out), "zz_generated.go")
	}
	if err := run(config{src: *src, out: *out, goOut: *goOut, pkg: *pkg, declarative: *ddm}); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

type config struct {
	src         string // as given: it is recorded verbatim, so keep it relative
	out         string
	goOut       string // "-" means do not write
	pkg         string
	declarative bool
}

func run(c config) error {
	in, err := collect(c.src, c.declarative)
	if err != nil {
		return err
	}
	doc, err := convertAll(in)
	if err != nil {
		return err
	}
	doc.Source.Path = filepath.ToSlash(c.src)
	data, err := encodeDocument(doc)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(c.out, data); err != nil {
		return err
	}
	if c.goOut != "-" {
		code, err := provenanceGo(c.pkg, filepath.Base(c.out), doc.Source)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(c.goOut, code); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic replaces path with data through a temporary file in the same
// directory, so an interrupted go generate never leaves half a schema behind.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
