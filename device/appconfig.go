package device

import (
	"context"
	"fmt"

	"github.com/micromdm/plist"
)

// Managed app configuration and feedback: the server gives an app its
// configuration (InstallApplication's Configuration, or the Settings item
// ApplicationConfiguration, whose omitted Configuration removes it) and
// reads it back (ManagedApplicationConfiguration); the app writes feedback
// the server collects (ManagedApplicationFeedback, optionally deleting it).
// A virtual device has no app to write feedback, so a test sets it with
// SetAppFeedback. ManagedApplicationList's HasConfiguration and HasFeedback
// follow both.
//
// Sources: the schemas mdm/commands/application.install.yaml
// (Configuration), settings.yaml (ApplicationConfiguration: Identifier,
// Configuration), managed.application.configuration.yaml (Identifiers →
// ApplicationConfigurations of {Identifier, Configuration?}) and
// managed.application.feedback.yaml (Identifiers, DeleteFeedback →
// ManagedApplicationFeedback of {Identifier, Feedback?}). Only apps the
// server manages are answered for, as the commands name them.

func init() {
	moreHandlers["ManagedApplicationConfiguration"] = handleManagedApplicationConfiguration
	moreHandlers["ManagedApplicationFeedback"] = handleManagedApplicationFeedback
}

// cloneDict deep-copies a plist dictionary through its encoding, so that
// what the device keeps never aliases a command's values.
func cloneDict(m map[string]any) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := plist.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := plist.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// dictParam reads an optional dictionary parameter.
func dictParam(params map[string]any, key string) (map[string]any, bool, error) {
	v, present := params[key]
	if !present {
		return nil, false, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, true, fmt.Errorf("%s must be a dictionary", key)
	}
	c, err := cloneDict(m)
	return c, true, err
}

// requiredIdentifiers reads the Identifiers array the app commands require.
func requiredIdentifiers(cmd *Command) ([]string, Response, bool) {
	if _, present := cmd.Params["Identifiers"]; !present {
		return nil, formatError("Identifiers is required: the bundle identifiers of the managed apps to report"), false
	}
	ids, ok := identifiersParam(cmd)
	if !ok {
		return nil, formatError("Identifiers must be an array of strings"), false
	}
	return ids, Response{}, true
}

func handleManagedApplicationConfiguration(_ context.Context, d *Device, cmd *Command) Response {
	ids, bad, ok := requiredIdentifiers(cmd)
	if !ok {
		return bad
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return Acknowledged(map[string]any{"ApplicationConfigurations": d.managedEntries(ids, func(a *managedApp, entry map[string]any) {
		if a.config != nil {
			entry["Configuration"] = a.config
		}
	})})
}

func handleManagedApplicationFeedback(_ context.Context, d *Device, cmd *Command) Response {
	ids, bad, ok := requiredIdentifiers(cmd)
	if !ok {
		return bad
	}
	del := false
	if v, present := cmd.Params["DeleteFeedback"]; present {
		if del, ok = v.(bool); !ok {
			return formatError("DeleteFeedback must be a boolean")
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return Acknowledged(map[string]any{"ManagedApplicationFeedback": d.managedEntries(ids, func(a *managedApp, entry map[string]any) {
		if a.feedback != nil {
			entry["Feedback"] = a.feedback
			if del {
				a.feedback = nil
			}
		}
	})})
}

// managedEntries is one {Identifier, …} entry per named app the server
// manages, filled by fill; apps it does not manage are left out. d.mu held.
func (d *Device) managedEntries(ids []string, fill func(a *managedApp, entry map[string]any)) []any {
	list := []any{}
	for _, id := range ids {
		if a, managed := d.st.apps[id]; managed {
			entry := map[string]any{"Identifier": id}
			fill(a, entry)
			list = append(list, entry)
		}
	}
	return list
}

// SetAppFeedback sets the feedback a managed app wrote (its
// com.apple.feedback dictionary), which ManagedApplicationFeedback reports;
// nil removes it. The app must be one the server installed.
func (d *Device) SetAppFeedback(identifier string, feedback map[string]any) error {
	c, err := cloneDict(feedback)
	if err != nil {
		return fmt.Errorf("device: feedback is not a property list dictionary: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.st.apps[identifier]
	if !ok {
		return fmt.Errorf("device: no managed app %q (the server installs apps with InstallApplication)", identifier)
	}
	a.feedback = c
	return nil
}

// AppConfiguration is the configuration the server gave a managed app (nil
// when it has none or is not managed).
func (d *Device) AppConfiguration(identifier string) map[string]any {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if a, ok := d.st.apps[identifier]; ok && a.config != nil {
		c, _ := cloneDict(a.config)
		return c
	}
	return nil
}

// setAppConfiguration is the Settings item ApplicationConfiguration.
func (d *Device) setAppConfiguration(item map[string]any) Response {
	id, _ := item["Identifier"].(string)
	if id == "" {
		return formatError("ApplicationConfiguration needs the app's Identifier")
	}
	config, _, err := dictParam(item, "Configuration")
	if err != nil {
		return formatError("ApplicationConfiguration: %v", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.st.apps[id]
	if !ok {
		return Failed(ChainItem(DomainMDM, ErrCodeAppNotManaged, "The app is not managed."),
			detail("no app with identifier %q was installed by this MDM server", id))
	}
	a.config = config // nil: the Configuration was omitted, which removes it
	return Response{}
}
