package device

import (
	"context"
	"fmt"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/mdm/schema"
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
	moreHandlers["ManagedApplicationConfiguration"] = appReport("ApplicationConfigurations", "Configuration", func(a *managedApp) map[string]any { return a.config })
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

// appReport answers a managed-app query whose result lists, per managed
// app named, the dictionary field(a) under entryKey (left out when nil).
func appReport(listKey, entryKey string, field func(*managedApp) map[string]any) CommandHandler {
	return func(_ context.Context, d *Device, cmd *Command) Response {
		ids, bad, ok := requiredIdentifiers(cmd)
		if !ok {
			return bad
		}
		d.mu.RLock()
		defer d.mu.RUnlock()
		return Acknowledged(map[string]any{listKey: d.managedEntries(ids, func(a *managedApp, entry map[string]any) {
			if v := field(a); v != nil {
				entry[entryKey] = v
			}
		})})
	}
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
	return d.setAppDict(item, "ApplicationConfiguration", func(m map[string]any) (map[string]any, error) {
		c, _, err := dictParam(m, "Configuration")
		return c, err
	}, func(a *managedApp, v map[string]any) { a.config = v })
}

// setAppDict applies a Settings item that sets one of a managed app's
// dictionaries: parse reads it from the item (nil: omitted, which removes
// it), set stores it.
func (d *Device) setAppDict(item map[string]any, name string, parse func(map[string]any) (map[string]any, error), set func(*managedApp, map[string]any)) Response {
	id, _ := item["Identifier"].(string)
	if id == "" {
		return formatError("%s needs the app's Identifier", name)
	}
	v, err := parse(item)
	if err != nil {
		return formatError("%s: %v", name, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.st.apps[id]
	if !ok {
		return appNotManaged(id)
	}
	set(a, v)
	return Response{}
}

// App attributes (per-app VPN, content filter, associated domains,
// removability…): InstallApplication's Attributes or the Settings item
// ApplicationAttributes set them (an omitted Attributes removes them), and
// ManagedApplicationAttributes reports them. They are checked against the
// Attributes keys of Apple's managed.application.attributes.yaml, so a
// wrong type or an unknown key is refused as a device would.

func init() {
	moreHandlers["ManagedApplicationAttributes"] = appReport("ApplicationAttributes", "Attributes", func(a *managedApp) map[string]any { return a.attrs })
}

// checkAttributes refuses attributes that do not fit Apple's schema for
// the device's OS.
func (d *Device) checkAttributes(attrs map[string]any) error {
	s, ok := schema.Command("ManagedApplicationAttributes")
	if !ok || attrs == nil {
		return nil
	}
	k := schema.FindKey(s.ResponseKeys, "ApplicationAttributes", "ApplicationAttributesItem", "Attributes")
	if k == nil {
		return nil
	}
	version, _ := d.OS()
	if probs := s.ValidateFor(d.model.schemaOS(), version, k.Subkeys, attrs, "Attributes"); len(probs) > 0 {
		return fmt.Errorf("%v", probs[0])
	}
	return nil
}

// attributesParam reads and checks an optional Attributes dictionary.
func (d *Device) attributesParam(params map[string]any) (map[string]any, error) {
	attrs, _, err := dictParam(params, "Attributes")
	if err != nil {
		return nil, err
	}
	return attrs, d.checkAttributes(attrs)
}

// setAppAttributes is the Settings item ApplicationAttributes.
func (d *Device) setAppAttributes(item map[string]any) Response {
	return d.setAppDict(item, "ApplicationAttributes", d.attributesParam, func(a *managedApp, v map[string]any) { a.attrs = v })
}

// appNotManaged refuses a command about an app the server did not install.
func appNotManaged(id string) Response {
	return Failed(ChainItem(DomainMDM, ErrCodeAppNotManaged, "The app is not managed."),
		detail("no app with identifier %q was installed by this MDM server", id))
}
