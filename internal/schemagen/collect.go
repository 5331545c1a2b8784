package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Schema kinds, by the directory a file lives in. The names are the ones
// package mdm/schema exposes as Schema.Kind.
const (
	kindProfile     = "profile"
	kindCommand     = "command"
	kindCheckin     = "checkin"
	kindError       = "error"
	kindOther       = "other"
	kindDeclaration = "declaration"
	kindStatus      = "status"
	kindDDMProtocol = "ddm-protocol"
	kindCredential  = "credential"
)

// dirKinds maps a source directory to its kind. Flat directories are read one
// level deep (as Apple lays them out); recursive ones are walked.
var dirKinds = []struct {
	dir         string
	kind        string
	recursive   bool
	declarative bool
}{
	{"mdm/profiles", kindProfile, false, false},
	{"mdm/commands", kindCommand, false, false},
	{"mdm/checkin", kindCheckin, false, false},
	{"mdm/errors", kindError, false, false},
	{"other", kindOther, false, false},
	// credentials live under declarations but describe credential asset
	// data, not declarations; they are listed first so they win.
	{"declarative/declarations/assets/credentials", kindCredential, true, true},
	{"declarative/declarations", kindDeclaration, true, true},
	{"declarative/status", kindStatus, true, true},
	{"declarative/protocol", kindDDMProtocol, true, true},
}

// inputFile is one YAML file to convert.
type inputFile struct {
	rel  string // slash-separated, relative to the source directory
	kind string
	data []byte
}

// input is everything the generator reads.
type input struct {
	files      []inputFile // sorted by rel
	osVersions map[string]string
	digest     string
}

// maxInputFile bounds a single input file; Apple's largest is well under 1 MiB.
const maxInputFile = 16 << 20

func collect(src string, declarative bool) (*input, error) {
	if st, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("source directory: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("source %s is not a directory", src)
	}
	readme, err := readBounded(filepath.Join(src, "README.md"))
	if err != nil {
		return nil, fmt.Errorf("reading the release's README.md (for its OS-version table): %w", err)
	}
	osv, err := parseOSVersions(readme)
	if err != nil {
		return nil, fmt.Errorf("README.md: %w", err)
	}

	seen := map[string]bool{}
	var files []inputFile
	for _, dk := range dirKinds {
		if dk.declarative && !declarative {
			continue
		}
		root := filepath.Join(src, filepath.FromSlash(dk.dir))
		var rels []string
		if dk.recursive {
			err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".yaml") {
					r, err := filepath.Rel(src, p)
					if err != nil {
						return err
					}
					rels = append(rels, filepath.ToSlash(r))
				}
				return nil
			})
		} else {
			var ents []fs.DirEntry
			ents, err = os.ReadDir(root)
			for _, e := range ents {
				if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".yaml") {
					rels = append(rels, dk.dir+"/"+e.Name())
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", dk.dir, err)
		}
		if len(rels) == 0 {
			return nil, fmt.Errorf("no *.yaml files in %s: is -src the root of Apple's schema release?", root)
		}
		for _, r := range rels {
			if seen[r] {
				continue
			}
			seen[r] = true
			data, err := readBounded(filepath.Join(src, filepath.FromSlash(r)))
			if err != nil {
				return nil, err
			}
			files = append(files, inputFile{rel: r, kind: dk.kind, data: data})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })

	// The digest covers the README too: the OS table recorded with the data
	// comes from it.
	all := append([]inputFile{{rel: "README.md", data: readme}}, files...)
	sort.Slice(all, func(i, j int) bool { return all[i].rel < all[j].rel })
	return &input{files: files, osVersions: osv, digest: digest(all)}, nil
}

func readBounded(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxInputFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if n > maxInputFile {
		return nil, fmt.Errorf("%s is larger than %d bytes; refusing to read it", p, maxInputFile)
	}
	return buf.Bytes(), nil
}

// digest is the recorded SHA-256 over the input files (see the package doc).
func digest(files []inputFile) string {
	h := sha256.New()
	for _, f := range files {
		h.Write([]byte(f.rel))
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(len(f.data))))
		h.Write([]byte{0})
		h.Write(f.data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// parseOSVersions reads the "## OS Versions" Markdown table of the release
// README ("| iOS | 18.1 |" rows).
func parseOSVersions(readme []byte) (map[string]string, error) {
	sc := bufio.NewScanner(bytes.NewReader(readme))
	in := false
	out := map[string]string{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			if in && len(out) > 0 {
				break
			}
			in = strings.EqualFold(strings.TrimSpace(strings.TrimLeft(line, "#")), "OS Versions")
			continue
		}
		if !in || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 2 {
			continue
		}
		name, ver := strings.TrimSpace(cells[0]), strings.TrimSpace(cells[1])
		if name == "" || ver == "" || strings.Trim(name, "-: ") == "" || strings.EqualFold(name, "OS") {
			continue
		}
		out[name] = ver
	}
	if len(out) == 0 {
		return nil, errors.New(`no "OS Versions" table found`)
	}
	return out, nil
}

// fileBase is the file name without directory and .yaml suffix.
func fileBase(rel string) string {
	return strings.TrimSuffix(path.Base(rel), ".yaml")
}
