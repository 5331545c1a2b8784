package ade

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Device is a device of the organisation, under Apple's JSON names.
type Device struct {
	SerialNumber       string     `json:"serial_number"`
	Model              string     `json:"model"`
	Description        string     `json:"description,omitempty"`
	Color              string     `json:"color,omitempty"`
	AssetTag           string     `json:"asset_tag,omitempty"`
	OS                 string     `json:"os,omitempty"`
	DeviceFamily       string     `json:"device_family,omitempty"`
	ProfileStatus      string     `json:"profile_status,omitempty"`
	ProfileUUID        string     `json:"profile_uuid,omitempty"`
	ProfileAssignTime  *time.Time `json:"profile_assign_time,omitempty"`
	ProfilePushTime    *time.Time `json:"profile_push_time,omitempty"`
	DeviceAssignedDate *time.Time `json:"device_assigned_date,omitempty"`
	DeviceAssignedBy   string     `json:"device_assigned_by,omitempty"`
	OpType             string     `json:"op_type,omitempty"`
	OpDate             *time.Time `json:"op_date,omitempty"`
	ResponseStatus     string     `json:"response_status,omitempty"`
}

// deviceRecord is a KindDevice document: the device and its change sequence.
type deviceRecord struct {
	Device
	Seq     int64 `json:"seq"`
	Removed bool  `json:"removed"` // disowned: kept so that sync reports the deletion
	// Lock is the organisation's Activation Lock (activationlock.go); a
	// device record's own, never part of Apple's device answers.
	Lock *deviceLock `json:"activation_lock,omitempty"`
}

var serialRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

var (
	osValues     = []string{"iOS", "iPadOS", "OSX", "tvOS", "visionOS"}
	familyValues = []string{"iPhone", "iPad", "iPod", "Mac", "AppleTV", "Vision"}
)

// normalize fills defaults and checks a device a tester buys.
func (d *Device) normalize() error {
	if !serialRE.MatchString(d.SerialNumber) {
		return apiErr(http.StatusBadRequest, "SERIAL_NUMBER_INVALID", "serial_number %q must be 1–64 letters, digits or '-'", truncate(d.SerialNumber, 70))
	}
	d.SerialNumber = strings.ToUpper(d.SerialNumber)
	if d.DeviceFamily == "" {
		d.DeviceFamily = "iPhone"
		switch d.OS {
		case "iPadOS":
			d.DeviceFamily = "iPad"
		case "OSX":
			d.DeviceFamily = "Mac"
		case "tvOS":
			d.DeviceFamily = "AppleTV"
		case "visionOS":
			d.DeviceFamily = "Vision"
		}
	}
	if !slices.Contains(familyValues, d.DeviceFamily) {
		return apiErr(http.StatusBadRequest, "DEVICE_FAMILY_INVALID", "device_family %q is not one of %s", truncate(d.DeviceFamily, 40), strings.Join(familyValues, ", "))
	}
	if d.OS == "" {
		d.OS = map[string]string{"iPhone": "iOS", "iPod": "iOS", "iPad": "iPadOS", "Mac": "OSX", "AppleTV": "tvOS", "Vision": "visionOS"}[d.DeviceFamily]
	}
	if !slices.Contains(osValues, d.OS) {
		return apiErr(http.StatusBadRequest, "OS_INVALID", "os %q is not one of %s", truncate(d.OS, 40), strings.Join(osValues, ", "))
	}
	if d.Model == "" {
		d.Model = d.DeviceFamily
	}
	for name, v := range map[string]string{"model": d.Model, "description": d.Description, "color": d.Color, "asset_tag": d.AssetTag} {
		if len(v) > 256 {
			return apiErr(http.StatusBadRequest, "FIELD_TOO_LONG", "%s is %d bytes (limit 256)", name, len(v))
		}
	}
	d.ProfileStatus, d.ProfileUUID, d.ProfileAssignTime, d.ProfilePushTime = "empty", "", nil, nil
	d.OpType, d.OpDate, d.ResponseStatus = "", nil, ""
	return nil
}

func (s *Service) getDevice(ctx context.Context, serial string) (*deviceRecord, error) {
	return getJSON[deviceRecord](ctx, s, KindDevice, strings.ToUpper(serial))
}

func (s *Service) allDevices(ctx context.Context) ([]*deviceRecord, error) {
	docs, err := s.docs.ListDocuments(ctx, KindDevice)
	if err != nil {
		return nil, err
	}
	out := make([]*deviceRecord, 0, len(docs))
	for _, d := range docs {
		var rec deviceRecord
		if err := json.Unmarshal(d.Data, &rec); err != nil {
			return nil, fmt.Errorf("ade: device document %s: %w", d.ID, err)
		}
		out = append(out, &rec)
	}
	return out, nil
}

// touch stamps a change on rec (op type and date, next sequence) and saves it; s.mu held.
func (s *Service) touch(ctx context.Context, st *serverState, rec *deviceRecord, op string) error {
	st.Seq++
	now := s.now().UTC()
	rec.Seq, rec.OpType, rec.OpDate = st.Seq, op, &now
	return s.putJSON(ctx, KindDevice, rec.SerialNumber, rec)
}

// updateOwned applies change to the record of each owned serial and stamps
// the change (op) with the next sequence, then saves the server state: the
// one loop behind disown, assign and remove. A serial that is not owned, or
// that change declines (returns false), answers NOT_ACCESSIBLE as Apple
// does; the others SUCCESS. s.mu held.
func (s *Service) updateOwned(ctx context.Context, serials []string, op string, change func(*deviceRecord) bool) (map[string]string, error) {
	out := map[string]string{}
	if len(serials) == 0 {
		return out, nil
	}
	st, err := s.loadState(ctx)
	if err != nil {
		return nil, err
	}
	for _, serial := range serials {
		rec, err := s.lookup(ctx, serial)
		if err != nil {
			return nil, err
		}
		if rec == nil || !change(rec) {
			out[serial] = "NOT_ACCESSIBLE"
			continue
		}
		if err := s.touch(ctx, st, rec, op); err != nil {
			return nil, err
		}
		out[serial] = "SUCCESS"
	}
	return out, s.saveState(ctx, st)
}

// BuyDevices adds devices to the organisation (as if bought from Apple or a
// reseller and assigned to this MDM server in ABM). A serial that is
// already owned is updated (op_type modified); a disowned one comes back.
func (s *Service) BuyDevices(ctx context.Context, devices ...Device) ([]Device, error) {
	if len(devices) == 0 {
		return nil, apiErr(http.StatusBadRequest, "DEVICE_ID_REQUIRED", "no devices to buy: give at least one serial_number")
	}
	seen := map[string]bool{}
	for i := range devices {
		if err := devices[i].normalize(); err != nil {
			return nil, err
		}
		if seen[devices[i].SerialNumber] {
			return nil, apiErr(http.StatusBadRequest, "DUPLICATE_SERIAL", "serial_number %s is listed twice", devices[i].SerialNumber)
		}
		seen[devices[i].SerialNumber] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.loadState(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Device, 0, len(devices))
	for _, d := range devices {
		old, err := s.getDevice(ctx, d.SerialNumber)
		if err != nil {
			return nil, err
		}
		now := s.now().UTC()
		rec := &deviceRecord{Device: d}
		rec.DeviceAssignedDate, rec.DeviceAssignedBy = &now, "mockmdm@abm.example"
		op := "added"
		if old != nil && !old.Removed {
			op = "modified"
			rec.ProfileStatus, rec.ProfileUUID, rec.ProfileAssignTime, rec.ProfilePushTime = old.ProfileStatus, old.ProfileUUID, old.ProfileAssignTime, old.ProfilePushTime
			rec.DeviceAssignedDate = old.DeviceAssignedDate
			rec.Lock = old.Lock
		}
		if err := s.touch(ctx, st, rec, op); err != nil {
			return nil, err
		}
		out = append(out, rec.Device)
	}
	return out, s.saveState(ctx, st)
}

// ImportDevices buys a list given as JSON: an array of devices, or
// {"devices": [...]}; each needs serial_number.
func (s *Service) ImportDevices(ctx context.Context, data []byte) ([]Device, error) {
	var list []Device
	if err := json.Unmarshal(data, &list); err != nil {
		var wrapped struct {
			Devices []Device `json:"devices"`
		}
		if err2 := json.Unmarshal(data, &wrapped); err2 != nil {
			return nil, apiErr(http.StatusBadRequest, "MALFORMED_REQUEST_BODY", "the import is not a JSON array of devices nor {\"devices\": [...]}: %v", err)
		}
		list = wrapped.Devices
	}
	return s.BuyDevices(ctx, list...)
}

// Devices lists the organisation's devices (disowned ones excluded), by serial.
func (s *Service) Devices(ctx context.Context) ([]Device, error) {
	recs, err := s.allDevices(ctx)
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, r := range recs {
		if !r.Removed {
			d := r.Device
			d.OpType, d.OpDate = "", nil
			out = append(out, d)
		}
	}
	return out, nil
}

// cursor is what an opaque Apple cursor means here: a fetch position (the
// last serial returned) or a sync position (the last change sequence), when
// it was issued, and whether the fetch it belongs to is complete.
type cursor struct {
	Mode   string `json:"m"` // "f" fetch, "s" sync
	After  string `json:"a,omitempty"`
	Seq    int64  `json:"q"`
	Issued int64  `json:"t"`
	Done   bool   `json:"d,omitempty"`
}

// cursorLifetime is Apple's: a cursor older than 7 days is EXPIRED_CURSOR.
const cursorLifetime = 7 * 24 * time.Hour

func encodeCursor(secret []byte, c cursor) string {
	b, _ := json.Marshal(c)
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + mac(secret, p)
}

func decodeCursor(secret []byte, s string, now time.Time) (cursor, error) {
	var c cursor
	p, sig, ok := strings.Cut(s, ".")
	if !ok || len(s) > 512 || mac(secret, p) != sig {
		return c, apiErr(http.StatusBadRequest, "INVALID_CURSOR", "the cursor was not issued by this server (or was altered); fetch again without a cursor")
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || json.Unmarshal(b, &c) != nil || (c.Mode != "f" && c.Mode != "s") {
		return c, apiErr(http.StatusBadRequest, "INVALID_CURSOR", "the cursor is unreadable; fetch again without a cursor")
	}
	if now.Sub(time.Unix(c.Issued, 0)) > cursorLifetime {
		return c, apiErr(http.StatusBadRequest, "EXPIRED_CURSOR", "the cursor was issued %s, more than 7 days ago; fetch again without a cursor", time.Unix(c.Issued, 0).UTC().Format(time.RFC3339))
	}
	return c, nil
}

// FetchResponse is Apple's answer to fetch and sync.
type FetchResponse struct {
	Cursor       string    `json:"cursor"`
	Devices      []Device  `json:"devices"`
	FetchedUntil time.Time `json:"fetched_until"`
	MoreToFollow bool      `json:"more_to_follow"`
}

type fetchRequest struct {
	Cursor *string `json:"cursor"`
	Limit  *int    `json:"limit"`
}

func (s *Service) limit(req fetchRequest) (int, error) {
	if req.Limit == nil || *req.Limit == 0 {
		return 100, nil
	}
	if *req.Limit < 0 {
		return 0, apiErr(http.StatusBadRequest, "INVALID_LIMIT", "limit %d must be positive (default 100, maximum 1000)", *req.Limit)
	}
	return min(*req.Limit, 1000), nil
}

// fetch serves POST /server/devices.
func (s *Service) fetch(ctx context.Context, req fetchRequest) (*FetchResponse, error) {
	n, err := s.limit(req)
	if err != nil {
		return nil, err
	}
	st, err := s.loadState(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	c := cursor{Mode: "f", Seq: st.Seq}
	if req.Cursor != nil && *req.Cursor != "" {
		if c, err = decodeCursor(st.CursorSecret, *req.Cursor, now); err != nil {
			return nil, err
		}
		if c.Mode != "f" || c.Done {
			return nil, apiErr(http.StatusBadRequest, "EXHAUSTED_CURSOR", "this cursor already returned every device; use it with /devices/sync")
		}
	}
	recs, err := s.allDevices(ctx) // ordered by ID, the serial
	if err != nil {
		return nil, err
	}
	resp := &FetchResponse{Devices: []Device{}, FetchedUntil: now.UTC().Truncate(time.Second)}
	i := 0
	for ; i < len(recs); i++ {
		r := recs[i]
		if r.Removed || r.SerialNumber <= c.After {
			continue
		}
		if len(resp.Devices) == n {
			resp.MoreToFollow = true
			break
		}
		d := r.Device
		d.OpType, d.OpDate = "", nil
		resp.Devices = append(resp.Devices, d)
		c.After = r.SerialNumber
	}
	c.Done = !resp.MoreToFollow
	c.Issued = now.Unix()
	resp.Cursor = encodeCursor(st.CursorSecret, c)
	return resp, nil
}

// sync serves POST /devices/sync: changes since the cursor, oldest first.
func (s *Service) sync(ctx context.Context, req fetchRequest) (*FetchResponse, error) {
	n, err := s.limit(req)
	if err != nil {
		return nil, err
	}
	if req.Cursor == nil || *req.Cursor == "" {
		return nil, apiErr(http.StatusBadRequest, "CURSOR_REQUIRED", "sync needs the cursor of a previous fetch or sync")
	}
	st, err := s.loadState(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	c, err := decodeCursor(st.CursorSecret, *req.Cursor, now)
	if err != nil {
		return nil, err
	}
	recs, err := s.allDevices(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(recs, func(a, b *deviceRecord) int { return int(a.Seq - b.Seq) })
	resp := &FetchResponse{Devices: []Device{}, FetchedUntil: now.UTC().Truncate(time.Second)}
	last := c.Seq
	for _, r := range recs {
		if r.Seq <= c.Seq {
			continue
		}
		if len(resp.Devices) == n {
			resp.MoreToFollow = true
			break
		}
		resp.Devices = append(resp.Devices, r.Device)
		last = r.Seq
	}
	resp.Cursor = encodeCursor(st.CursorSecret, cursor{Mode: "s", Seq: last, Issued: now.Unix(), Done: true})
	if st.Quirks.CursorEcho {
		resp.Cursor = *req.Cursor
	}
	return resp, nil
}

type serialsRequest struct {
	Devices     []string `json:"devices"`
	ProfileUUID string   `json:"profile_uuid,omitempty"`
}

func checkSerials(list []string) error {
	if len(list) == 0 {
		return apiErr(http.StatusBadRequest, "DEVICE_ID_REQUIRED", "the request lists no devices (\"devices\": [serial, …])")
	}
	if len(list) > 1000 {
		return apiErr(http.StatusBadRequest, "DEVICE_ID_LIMIT_EXCEEDED", "the request lists %d devices; Apple takes at most 1000 per call", len(list))
	}
	return nil
}

// details serves POST /devices.
func (s *Service) details(ctx context.Context, req serialsRequest) (map[string]Device, error) {
	if err := checkSerials(req.Devices); err != nil {
		return nil, err
	}
	out := map[string]Device{}
	for _, serial := range req.Devices {
		rec, err := s.lookup(ctx, serial)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			out[serial] = Device{SerialNumber: serial, ResponseStatus: "NOT_FOUND"}
			continue
		}
		d := rec.Device
		d.OpType, d.OpDate, d.ResponseStatus = "", nil, "SUCCESS"
		out[serial] = d
	}
	return out, nil
}

// lookup returns an owned device, or nil for a serial that is unknown, malformed or disowned.
func (s *Service) lookup(ctx context.Context, serial string) (*deviceRecord, error) {
	if !serialRE.MatchString(serial) {
		return nil, nil
	}
	rec, err := s.getDevice(ctx, serial)
	if err != nil || rec == nil || rec.Removed {
		return nil, err
	}
	return rec, nil
}

// disown serves POST /devices/disown.
func (s *Service) disown(ctx context.Context, req serialsRequest) (map[string]string, error) {
	if err := checkSerials(req.Devices); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateOwned(ctx, req.Devices, "deleted", func(rec *deviceRecord) bool {
		rec.Removed = true
		rec.ProfileStatus, rec.ProfileUUID = "empty", ""
		return true
	})
}
