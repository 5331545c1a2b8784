package handlers

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

// Bounds on an enqueue request.
const (
	// MaxEnqueueIDs is the most enrollments one command may target.
	MaxEnqueueIDs = 10_000
	// maxIDLen bounds one enrollment ID (UDID:user is well under 200).
	maxIDLen = 512
	// maxCommandUUIDLen bounds a CommandUUID, which appears in URLs.
	maxCommandUUIDLen = 128
	// lookupOneByOne is how many IDs are checked with one read each;
	// more are checked against one listing.
	lookupOneByOne = 32
)

// EnqueueCommand serves POST /v1/commands: it queues one command for one or
// more enrollments, all or nothing.
func (a *API) EnqueueCommand() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.EnqueueRequest
		if err := a.decodeJSONBody(w, r, &req, false); err != nil {
			a.writeError(w, r, err)
			return
		}
		resp, err := a.Enqueue(r.Context(), &req)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		w.Header().Set("Location", "/v1/commands/"+resp.CommandUUID)
		a.writeJSON(w, r, http.StatusCreated, resp)
	})
}

// Enqueue queues one command for one or more enrollments, all or nothing,
// then pushes unless req says not to. It is POST /v1/commands without the
// HTTP, so the dashboard's command buttons queue exactly as the API does.
// Errors a client causes carry their HTTP status (internal/httperr).
func (a *API) Enqueue(ctx context.Context, req *api.EnqueueRequest) (*api.EnqueueResponse, error) {
	if req == nil {
		return nil, httperr.New(http.StatusBadRequest, "the enqueue request is missing")
	}
	cmd, ids, err := a.buildCommand(req)
	if err != nil {
		return nil, err
	}
	if err := a.checkTargets(ctx, ids); err != nil {
		return nil, err
	}
	// What each target's enrollment allows (policy.go).
	if err := a.checkPolicy(ctx, cmd, ids); err != nil {
		return nil, err
	}
	// Linted as given, before encrypt_profile hides the payloads.
	lint := lintInstallProfile(cmd)
	if req.EncryptProfile {
		if err := a.encryptInstallProfile(ctx, cmd, ids); err != nil {
			return nil, err
		}
	}
	if items, err := a.store.CommandItems(ctx, cmd.CommandUUID); err == nil && len(items) > 0 {
		return nil, httperr.New(http.StatusConflict, "a command with UUID %q already exists; choose another command_uuid or leave it out and the server makes one", cmd.CommandUUID)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	rec := &store.Command{
		UUID:        cmd.CommandUUID,
		RequestType: cmd.RequestType,
		Raw:         cmd.Raw,
		CreatedAt:   a.now().UTC(),
	}
	if err := a.store.Enqueue(ctx, rec, ids...); err != nil {
		return nil, err
	}
	a.log.InfoContext(ctx, "command queued", "command_uuid", rec.UUID, "request_type", rec.RequestType,
		"enrollments", len(ids), "enrollment_id", ids[0])
	if a.onEnqueue != nil {
		a.onEnqueue(ctx, rec, ids)
	}
	pushed := a.pushAfterEnqueue(ctx, req, ids)
	return &api.EnqueueResponse{
		CommandUUID:   rec.UUID,
		RequestType:   rec.RequestType,
		EnrollmentIDs: ids,
		Push:          pushed,
		Lint:          lint,
	}, nil
}

// buildCommand checks an enqueue request's shape and encodes its command.
// It touches no store, so it can be fuzzed on its own.
func (a *API) buildCommand(req *api.EnqueueRequest) (*mdm.Command, []string, error) {
	ids, err := checkIDs(req.EnrollmentIDs)
	if err != nil {
		return nil, nil, err
	}
	typed := len(bytes.TrimSpace(req.Command)) > 0 && !bytes.Equal(bytes.TrimSpace(req.Command), []byte("null"))
	raw := req.RawPlist != ""
	switch {
	case typed && raw:
		return nil, nil, httperr.New(http.StatusBadRequest, `give either "command" (typed JSON) or "raw_plist" (a whole command plist), not both`)
	case !typed && !raw:
		return nil, nil, httperr.New(http.StatusBadRequest, `the command is missing: give "command", e.g. {"RequestType":"DeviceInformation","Queries":["DeviceName"]}, or "raw_plist", a whole command plist as a string`)
	}
	if req.CommandUUID != "" {
		if err := checkCommandUUID("command_uuid", req.CommandUUID); err != nil {
			return nil, nil, err
		}
	}
	newUUID := func() string {
		if req.CommandUUID != "" {
			return req.CommandUUID
		}
		return a.newUUID()
	}
	var cmd *mdm.Command
	if typed {
		if bytes.TrimSpace(req.Command)[0] != '{' {
			return nil, nil, httperr.New(http.StatusBadRequest, `"command" must be a JSON object with Apple's key names, e.g. {"RequestType":"DeviceInformation","Queries":["DeviceName"]}`)
		}
		cmd, err = mdm.CommandFromJSON(req.Command, newUUID())
		if err != nil {
			return nil, nil, err
		}
	} else {
		b := []byte(req.RawPlist)
		if err := checkXMLPlist(b); err != nil {
			return nil, nil, httperr.Wrap(http.StatusBadRequest, err, "raw_plist must be an XML property list holding CommandUUID (optional) and a Command dictionary with RequestType")
		}
		cmd, err = mdm.CommandFromPlist(b, newUUID)
		if err != nil {
			return nil, nil, httperr.Wrap(http.StatusBadRequest, err, "raw_plist")
		}
		if req.CommandUUID != "" && cmd.CommandUUID != req.CommandUUID {
			return nil, nil, httperr.New(http.StatusBadRequest, "command_uuid %q differs from the CommandUUID %q inside raw_plist; give the UUID once", req.CommandUUID, truncate(cmd.CommandUUID, 80))
		}
		if err := checkCommandUUID("CommandUUID in raw_plist", cmd.CommandUUID); err != nil {
			return nil, nil, err
		}
	}
	return cmd, ids, nil
}

// checkIDs checks the target list: not empty, bounded, no blanks or repeats.
func checkIDs(ids []string) ([]string, error) {
	switch {
	case len(ids) == 0:
		return nil, httperr.New(http.StatusBadRequest, `"enrollment_ids" is missing or empty: name at least one enrollment (GET /v1/enrollments lists them)`)
	case len(ids) > MaxEnqueueIDs:
		return nil, httperr.New(http.StatusBadRequest, `"enrollment_ids" has %d IDs; at most %d per command, so split the request`, len(ids), MaxEnqueueIDs)
	}
	seen := make(map[string]struct{}, len(ids))
	for i, id := range ids {
		switch {
		case id == "":
			return nil, httperr.New(http.StatusBadRequest, `"enrollment_ids"[%d] is empty`, i)
		case len(id) > maxIDLen:
			return nil, httperr.New(http.StatusBadRequest, `"enrollment_ids"[%d] is %d bytes long; enrollment IDs are at most %d`, i, len(id), maxIDLen)
		}
		if _, dup := seen[id]; dup {
			return nil, httperr.New(http.StatusBadRequest, `"enrollment_ids" lists %q twice; list each enrollment once`, truncate(id, 100))
		}
		seen[id] = struct{}{}
	}
	return ids, nil
}

// checkCommandUUID keeps command UUIDs to characters that are safe in a
// URL path and a log line.
func checkCommandUUID(what, u string) error {
	ok := len(u) > 0 && len(u) <= maxCommandUUIDLen
	for i := 0; ok && i < len(u); i++ {
		c := u[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
	}
	if !ok {
		return httperr.New(http.StatusBadRequest, "%s %q: use 1 to %d letters, digits, '-', '_', '.' or ':' (a UUID such as %s fits)", what, truncate(u, 80), maxCommandUUIDLen, "0F6C5E9A-6F5B-4C47-9B1A-2D6B0C8E1F00")
	}
	return nil
}

// checkTargets makes sure every target exists and still listens: a
// command for a checked-out enrollment would never be fetched.
func (a *API) checkTargets(ctx context.Context, ids []string) error {
	var unknown, checkedOut []string
	if len(ids) <= lookupOneByOne {
		for _, id := range ids {
			e, err := a.store.GetEnrollment(ctx, id)
			switch {
			case errors.Is(err, store.ErrNotFound):
				unknown = append(unknown, id)
			case err != nil:
				return err
			case e.CheckedOut:
				checkedOut = append(checkedOut, id)
			}
		}
	} else {
		all, err := a.store.ListEnrollments(ctx)
		if err != nil {
			return err
		}
		byID := make(map[string]*store.Enrollment, len(all))
		for _, e := range all {
			byID[e.ID] = e
		}
		for _, id := range ids {
			e, ok := byID[id]
			switch {
			case !ok:
				unknown = append(unknown, id)
			case e.CheckedOut:
				checkedOut = append(checkedOut, id)
			}
		}
	}
	if len(unknown) > 0 {
		return httperr.New(http.StatusNotFound, "unknown enrollment IDs: %s; nothing was queued (GET /v1/enrollments lists the enrollments)", listNames(unknown))
	}
	if len(checkedOut) > 0 {
		return httperr.New(http.StatusConflict, "enrollments checked out (their MDM profile was removed), so they would never fetch the command: %s; nothing was queued", listNames(checkedOut))
	}
	return nil
}

// GetCommand serves GET /v1/commands/{uuid}, optionally long-polling with
// ?wait= until every target has a final answer.
func (a *API) GetCommand() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := r.PathValue("uuid")
		wait, err := parseWait(r.URL.Query().Get("wait"))
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		// Subscribe before the first read: an answer saved between the read
		// and the subscription would otherwise go unnoticed until the wait ends.
		var signal <-chan struct{}
		if wait > 0 && a.hub != nil {
			ch, cancel := a.hub.Subscribe(id)
			defer cancel()
			signal = ch
		}
		st, err := a.commandStatus(ctx, id)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if wait > 0 && !st.Done {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			tick := time.NewTicker(a.pollEvery)
			defer tick.Stop()
		poll:
			for !st.Done {
				select {
				case <-ctx.Done():
					a.log.DebugContext(ctx, "long-poll client went away", "command_uuid", id)
					return
				case <-timer.C:
					break poll
				case <-signal:
				case <-tick.C:
				}
				if st, err = a.commandStatus(ctx, id); err != nil {
					if ctx.Err() != nil {
						return
					}
					a.writeError(w, r, err)
					return
				}
			}
		}
		a.writeJSON(w, r, http.StatusOK, st)
	})
}

// commandStatus reads a command's items and shows them.
func (a *API) commandStatus(ctx context.Context, commandUUID string) (*api.CommandStatus, error) {
	items, err := a.store.CommandItems(ctx, commandUUID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(items) == 0) {
		return nil, httperr.New(http.StatusNotFound, "no command with UUID %q (POST /v1/commands returns the UUID of each command it queues)", truncate(commandUUID, 100))
	}
	if err != nil {
		return nil, err
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].EnrollmentID < items[j].EnrollmentID })
	st := &api.CommandStatus{
		CommandUUID: commandUUID,
		RequestType: items[0].RequestType,
		CreatedAt:   items[0].CreatedAt,
		Done:        true,
		Results:     make([]api.CommandResult, 0, len(items)),
	}
	for _, it := range items {
		if !store.IsFinal(it.Status) {
			st.Done = false
		}
		res := api.CommandResult{EnrollmentID: it.EnrollmentID, Status: it.Status, UpdatedAt: it.UpdatedAt}
		if len(it.Result) > 0 {
			a.fillResult(ctx, &res, it.Result)
		}
		st.Results = append(st.Results, res)
	}
	return st, nil
}

// fillResult shows a device's raw answer as text and as JSON, and lifts
// its ErrorChain out.
func (a *API) fillResult(ctx context.Context, res *api.CommandResult, raw []byte) {
	if !utf8.Valid(raw) || isBinaryPlist(raw) {
		res.ResultBase64 = raw
		return
	}
	res.ResultPlist = string(raw)
	v, err := decodePlist(raw)
	if err != nil {
		a.log.DebugContext(ctx, "stored result does not decode", "enrollment_id", res.EnrollmentID, "err", err)
		return
	}
	if j, err := jsonFromValue(v); err == nil {
		res.Result = j
	}
	if dict, ok := v.(map[string]any); ok {
		res.ErrorChain = errorChain(dict["ErrorChain"])
	}
}

// errorChain reads an ErrorChain array, skipping elements of the wrong shape.
func errorChain(v any) []api.ErrorChainItem {
	arr, ok := v.([]any)
	if !ok {
		return nil
	}
	var out []api.ErrorChainItem
	for _, e := range arr {
		d, ok := e.(map[string]any)
		if !ok {
			continue
		}
		var item api.ErrorChainItem
		switch c := d["ErrorCode"].(type) {
		case int64:
			item.ErrorCode = c
		case uint64:
			if c <= 1<<63-1 {
				item.ErrorCode = int64(c)
			}
		case string: // some devices and tools send it as a string
			item.ErrorCode, _ = strconv.ParseInt(c, 10, 64)
		}
		item.ErrorDomain, _ = d["ErrorDomain"].(string)
		item.LocalizedDescription, _ = d["LocalizedDescription"].(string)
		item.USEnglishDescription, _ = d["USEnglishDescription"].(string)
		out = append(out, item)
	}
	return out
}
