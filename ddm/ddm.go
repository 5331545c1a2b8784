// Package ddm is mockmdm's declarative device management server: the
// declarations a tester defines, which enrollments have which, and the
// DeclarativeManagement check-in endpoints a device syncs them through
// (tokens, declaration-items, declaration/<kind>/<identifier>, status).
//
// Sources: PROTOCOL.md §10; Apple's schemas declarative/protocol/
// tokensresponse.yaml, declarationitemsresponse.yaml and statusreport.yaml
// (the wire shapes, validated here against the embedded copies),
// declarative/declarations/* (each declaration type and its payload keys)
// and mdm/checkin/declarativemanagement.yaml (the check-in carrying
// Endpoint and Data).
//
// A declaration's ServerToken is a hash of its type, identifier and
// payload, so it changes exactly when the content does; an enrollment's
// DeclarationsToken is a hash of its declarations' identifiers and server
// tokens, so it changes when the set or any member changes. State lives in
// the store's documents, so it survives a restart on SQLite.
package ddm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/store"
)

// Document kinds in the store.
const (
	KindDeclaration = "ddm-declaration" // by identifier
	KindAssignment  = "ddm-assignment"  // by enrollment ID: the identifiers it has
	KindStatus      = "ddm-status"      // by enrollment ID: the status it reported
)

// MaxDeclarationSize bounds one declaration (and a status report).
const MaxDeclarationSize = 1 << 20

// Declaration is one declaration, as a device receives it; it is the
// API's wire type, so the tester sees what the device gets.
type Declaration = api.Declaration

// stored is a declaration with its last change.
type stored struct {
	Declaration
	UpdatedAt time.Time `json:"updated_at"`
}

// assignment is an enrollment's declarations.
type assignment struct {
	Identifiers []string  `json:"identifiers"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Status is what an enrollment last reported (the API's wire type): the
// last report as sent, and every report's StatusItems merged, dictionaries
// key by key, later values (arrays included) replacing earlier ones.
type Status = api.DeclarativeStatus

// Service keeps declarations and serves them. Create it with New.
type Service struct {
	docs store.Documents
	log  *slog.Logger
	now  func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock sets the clock.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns a Service over docs.
func New(docs store.Documents, opts ...Option) *Service {
	if docs == nil {
		panic("ddm.New: nil Documents")
	}
	s := &Service{docs: docs, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// kinds maps a declaration type's prefix to its kind: the word of the
// declaration/<kind>/<identifier> endpoint and the declaration-items key.
var kinds = []struct{ prefix, kind, items string }{
	{"com.apple.activation.", "activation", "Activations"},
	{"com.apple.configuration.", "configuration", "Configurations"},
	{"com.apple.asset.", "asset", "Assets"},
	{"com.apple.management.", "management", "Management"},
}

// KindOf is the kind of a declaration type ("" when none).
func KindOf(declarationType string) string {
	for _, k := range kinds {
		if strings.HasPrefix(declarationType, k.prefix) {
			return k.kind
		}
	}
	return ""
}

func badRequest(format string, args ...any) error {
	return httperr.New(http.StatusBadRequest, format, args...)
}

// ParseDeclaration decodes and checks a declaration a tester defines: JSON
// with Type (a declaration type in Apple's schemas), Identifier (up to 256
// characters, no "/") and Payload (a dictionary valid for the type). A
// ServerToken given is replaced by the one the content hashes to.
func ParseDeclaration(body []byte) (*Declaration, error) {
	if len(body) > MaxDeclarationSize {
		return nil, httperr.New(http.StatusRequestEntityTooLarge, "the declaration is %d bytes; at most %d", len(body), MaxDeclarationSize)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw struct {
		Type        string         `json:"Type"`
		Identifier  string         `json:"Identifier"`
		ServerToken string         `json:"ServerToken"`
		Payload     map[string]any `json:"Payload"`
	}
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, badRequest("the declaration is not the JSON object Apple defines (Type, Identifier, Payload): %v", err)
	}
	if err := onlyOne(dec); err != nil {
		return nil, badRequest("the declaration %v", err)
	}
	d := &Declaration{Type: raw.Type, Identifier: raw.Identifier, Payload: raw.Payload}
	if err := checkIdentifier(d.Identifier); err != nil {
		return nil, err
	}
	if KindOf(d.Type) == "" {
		return nil, badRequest("Type %q is not a declaration type: it starts with com.apple.activation., com.apple.configuration., com.apple.asset. or com.apple.management.", clip(d.Type))
	}
	s, ok := schema.Declaration(d.Type)
	if !ok {
		return nil, badRequest("Type %q is not a declaration type in Apple's schemas", clip(d.Type))
	}
	if d.Payload == nil {
		d.Payload = map[string]any{}
	}
	d.Payload = schema.FromJSON(d.Payload).(map[string]any)
	if probs := schema.ValidateDict(s.PayloadKeys, d.Payload, "Payload"); len(probs) > 0 {
		msgs := make([]string, 0, len(probs))
		for _, p := range probs {
			msgs = append(msgs, p.String())
		}
		return nil, badRequest("%s breaks Apple's schema (%s): %s", d.Type, s.File, strings.Join(msgs, "; "))
	}
	d.ServerToken = serverToken(d)
	return d, nil
}

// onlyOne checks that dec has nothing left but white space.
func onlyOne(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("is followed by more than white space after its JSON object")
	}
	return nil
}

func checkIdentifier(id string) error {
	switch {
	case id == "":
		return badRequest("Identifier is missing: name the declaration, e.g. com.example.passcode")
	case len(id) > 256:
		return badRequest("Identifier is %d characters; at most 256", len(id))
	case strings.ContainsAny(id, "/\x00"):
		return badRequest("Identifier %q has a / or NUL: it is a path segment of declaration/<kind>/<identifier>", clip(id))
	}
	return nil
}

func serverToken(d *Declaration) string {
	b, _ := json.Marshal(struct {
		T, I string
		P    map[string]any
	}{d.Type, d.Identifier, d.Payload}) // map keys marshal sorted
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Put stores a declaration, replacing the one with its identifier.
func (s *Service) Put(ctx context.Context, d *Declaration) error {
	b, err := json.Marshal(stored{Declaration: *d, UpdatedAt: s.now().UTC()})
	if err != nil {
		return err
	}
	return s.docs.PutDocument(ctx, KindDeclaration, d.Identifier, b)
}

// Get returns a declaration or a 404.
func (s *Service) Get(ctx context.Context, identifier string) (*Declaration, error) {
	st, err := s.get(ctx, identifier)
	if err != nil {
		return nil, err
	}
	return &st.Declaration, nil
}

func (s *Service) get(ctx context.Context, identifier string) (*stored, error) {
	b, err := s.docs.GetDocument(ctx, KindDeclaration, identifier)
	if errors.Is(err, store.ErrNotFound) {
		return nil, httperr.New(http.StatusNotFound, "no declaration %q", clip(identifier))
	}
	if err != nil {
		return nil, err
	}
	var st stored
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("ddm: declaration %s: %w", identifier, err)
	}
	return &st, nil
}

// List returns every declaration, by identifier.
func (s *Service) List(ctx context.Context) ([]*Declaration, error) {
	docs, err := s.docs.ListDocuments(ctx, KindDeclaration)
	if err != nil {
		return nil, err
	}
	out := make([]*Declaration, 0, len(docs))
	for _, doc := range docs {
		var st stored
		if err := json.Unmarshal(doc.Data, &st); err != nil {
			return nil, fmt.Errorf("ddm: declaration %s: %w", doc.ID, err)
		}
		out = append(out, &st.Declaration)
	}
	return out, nil
}

// Delete removes a declaration; enrollments that had it no longer do.
func (s *Service) Delete(ctx context.Context, identifier string) error {
	if _, err := s.get(ctx, identifier); err != nil {
		return err
	}
	return s.docs.DeleteDocument(ctx, KindDeclaration, identifier)
}

// Assign gives an enrollment exactly these declarations (each must exist).
func (s *Service) Assign(ctx context.Context, enrollmentID string, identifiers []string) error {
	if enrollmentID == "" {
		return badRequest("no enrollment ID")
	}
	ids, err := s.definedAll(ctx, identifiers)
	if err != nil {
		return err
	}
	b, err := json.Marshal(assignment{Identifiers: ids, UpdatedAt: s.now().UTC()})
	if err != nil {
		return err
	}
	if err := s.docs.PutDocument(ctx, KindAssignment, enrollmentID, b); err != nil {
		return err
	}
	s.log.DebugContext(ctx, "declarations assigned", "enrollment_id", enrollmentID, "declarations", len(ids))
	return nil
}

// definedAll returns identifiers sorted and without repeats, or a 400 that
// names those not defined.
func (s *Service) definedAll(ctx context.Context, identifiers []string) ([]string, error) {
	ids := slices.Clone(identifiers)
	sort.Strings(ids)
	ids = slices.Compact(ids)
	var missing []string
	for _, id := range ids {
		if _, err := s.get(ctx, id); err != nil {
			if httperr.StatusOf(err) != http.StatusNotFound {
				return nil, err
			}
			missing = append(missing, clip(id))
		}
	}
	if len(missing) > 0 {
		return nil, badRequest("no declaration %s: define it first (PUT /v1/declarations/{identifier})", strings.Join(missing, ", "))
	}
	return ids, nil
}

// Assigned returns an enrollment's declarations that still exist, and the
// latest change among them and the assignment.
func (s *Service) Assigned(ctx context.Context, enrollmentID string) ([]*Declaration, time.Time, error) {
	a, err := s.assignment(ctx, enrollmentID)
	if err != nil {
		return nil, time.Time{}, err
	}
	latest := a.UpdatedAt
	var out []*Declaration
	for _, id := range a.Identifiers {
		st, err := s.get(ctx, id)
		if httperr.StatusOf(err) == http.StatusNotFound {
			continue // deleted since
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		if st.UpdatedAt.After(latest) {
			latest = st.UpdatedAt
		}
		out = append(out, &st.Declaration)
	}
	return out, latest, nil
}

// assignment reads an enrollment's assignment (empty when it has none).
func (s *Service) assignment(ctx context.Context, enrollmentID string) (*assignment, error) {
	b, err := s.docs.GetDocument(ctx, KindAssignment, enrollmentID)
	if errors.Is(err, store.ErrNotFound) {
		return &assignment{}, nil
	}
	if err != nil {
		return nil, err
	}
	var a assignment
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("ddm: assignment of %s: %w", enrollmentID, err)
	}
	return &a, nil
}

// DeclarationsToken is the token of a set of declarations.
func DeclarationsToken(ds []*Declaration) string {
	h := sha256.New()
	for _, d := range ds { // Assigned keeps identifier order
		fmt.Fprintf(h, "%s\x00%s\x00", d.Identifier, d.ServerToken)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Status returns what an enrollment last reported (a 404 before any).
func (s *Service) Status(ctx context.Context, enrollmentID string) (*Status, error) {
	b, err := s.docs.GetDocument(ctx, KindStatus, enrollmentID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, httperr.New(http.StatusNotFound, "enrollment %q has sent no declarative status report", clip(enrollmentID))
	}
	if err != nil {
		return nil, err
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("ddm: status of %s: %w", enrollmentID, err)
	}
	return &st, nil
}

// Serve answers a DeclarativeManagement check-in of enrollmentID: the JSON
// body for tokens, declaration-items and a declaration, nothing for status.
func (s *Service) Serve(ctx context.Context, enrollmentID, endpoint string, data []byte) ([]byte, error) {
	switch {
	case endpoint == "tokens":
		ds, latest, err := s.Assigned(ctx, enrollmentID)
		if err != nil {
			return nil, err
		}
		if latest.IsZero() {
			latest = time.Unix(0, 0)
		}
		return json.Marshal(map[string]any{"SyncTokens": map[string]string{
			"DeclarationsToken": DeclarationsToken(ds),
			"Timestamp":         latest.UTC().Format(time.RFC3339),
		}})
	case endpoint == "declaration-items":
		ds, _, err := s.Assigned(ctx, enrollmentID)
		if err != nil {
			return nil, err
		}
		items := map[string][]map[string]string{}
		for _, k := range kinds {
			items[k.items] = []map[string]string{}
		}
		for _, d := range ds {
			for _, k := range kinds {
				if k.kind == KindOf(d.Type) {
					items[k.items] = append(items[k.items], map[string]string{"Identifier": d.Identifier, "ServerToken": d.ServerToken})
				}
			}
		}
		return json.Marshal(map[string]any{"Declarations": items, "DeclarationsToken": DeclarationsToken(ds)})
	case strings.HasPrefix(endpoint, "declaration/"):
		kind, id, ok := strings.Cut(strings.TrimPrefix(endpoint, "declaration/"), "/")
		if !ok || kind == "" || id == "" {
			return nil, badRequest("endpoint %q: want declaration/<kind>/<identifier>", clip(endpoint))
		}
		// One declaration read, not the whole set: a sync fetches each.
		a, err := s.assignment(ctx, enrollmentID)
		if err != nil {
			return nil, err
		}
		if _, assigned := slices.BinarySearch(a.Identifiers, id); !assigned {
			return nil, httperr.New(http.StatusNotFound, "enrollment %s has no declaration %q", enrollmentID, clip(id))
		}
		st, err := s.get(ctx, id)
		if httperr.StatusOf(err) == http.StatusNotFound {
			return nil, httperr.New(http.StatusNotFound, "enrollment %s has no declaration %q", enrollmentID, clip(id)) // deleted since
		}
		if err != nil {
			return nil, err
		}
		if KindOf(st.Type) != kind {
			return nil, httperr.New(http.StatusNotFound, "declaration %q is a %s, not a %s", clip(id), KindOf(st.Type), clip(kind))
		}
		return json.Marshal(&st.Declaration)
	case endpoint == "status":
		return nil, s.saveStatus(ctx, enrollmentID, data)
	}
	return nil, badRequest("unknown DeclarativeManagement endpoint %q (known: tokens, declaration-items, declaration/<kind>/<identifier>, status)", clip(endpoint))
}

// saveStatus checks a status report against Apple's schema and merges it
// into what the enrollment reported before.
func (s *Service) saveStatus(ctx context.Context, enrollmentID string, data []byte) error {
	if len(data) == 0 {
		return badRequest("the status check-in carries no Data: the status report JSON")
	}
	if len(data) > MaxDeclarationSize {
		return httperr.New(http.StatusRequestEntityTooLarge, "the status report is %d bytes; at most %d", len(data), MaxDeclarationSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var report map[string]any
	if err := dec.Decode(&report); err != nil {
		return badRequest("the status report is not a JSON object: %v", err)
	}
	if err := onlyOne(dec); err != nil {
		return badRequest("the status report %v", err) // it is kept as sent, so it must be one JSON value
	}
	report = schema.FromJSON(report).(map[string]any)
	if sch, ok := schema.Lookup(schema.KindDDMProtocol, "StatusReport"); ok {
		if probs := schema.ValidateDict(sch.PayloadKeys, report, ""); len(probs) > 0 {
			msgs := make([]string, 0, len(probs))
			for _, p := range probs {
				msgs = append(msgs, p.String())
			}
			return badRequest("the status report breaks Apple's schema (%s): %s", sch.File, strings.Join(msgs, "; "))
		}
	}
	st := &Status{StatusItems: map[string]any{}}
	if prev, err := s.Status(ctx, enrollmentID); err == nil {
		st = prev
	} else if httperr.StatusOf(err) != http.StatusNotFound {
		return err
	}
	items, _ := report["StatusItems"].(map[string]any)
	merge(st.StatusItems, items)
	st.Errors, _ = report["Errors"].([]any)
	st.Report = json.RawMessage(slices.Clone(data))
	st.ReceivedAt = s.now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := s.docs.PutDocument(ctx, KindStatus, enrollmentID, b); err != nil {
		return err
	}
	s.log.DebugContext(ctx, "declarative status report stored", "enrollment_id", enrollmentID, "bytes", len(data), "errors", len(st.Errors))
	return nil
}

// merge puts src into dst: dictionaries key by key, anything else replaced.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}
