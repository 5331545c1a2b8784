package device

import "github.com/mockmdm/mockmdm/mdm/schema"

// Account status: the account.list.* status items list the accounts the
// channel's active account configurations set up — a virtual device sets
// up nothing, but reports each as Apple's schema describes it, so a server
// can follow its account configurations through status subscriptions.
//
// Each entry is identified by its configuration's identifier and names it
// as declaration-identifier; visible-name, hostname, port and calendar-url
// come from the configuration's VisibleName, HostName, Port and CalendarURL
// (a mail account's from its IncomingServer and OutgoingServer, in the
// incoming and outgoing lists). Which services are on follows the Exchange
// configuration's *ServiceActive keys (true when absent, as Apple's schema
// defaults them); the other accounts report their services on, except
// notes on an incoming mail server that is not IMAP. A Google account's
// username is the EmailAddress of the user identity asset it references;
// the others' sit in credential assets' data, which is not reported.
// The lists are worked out with the declarations' statuses, so predicates
// do not read them.
//
// Sources: Apple's schemas declarative/status/account.list.*.yaml and
// declarations/configurations/account.*.yaml.

// accountLists are the account.list.* items for the active configurations
// among ds, each list present (empty when no account is set up).
func accountLists(ds []*heldDeclaration, statuses map[string]declStatus) map[string]any {
	lists := map[string][]any{}
	for _, name := range []string{"caldav", "carddav", "exchange", "google", "ldap", "mail.incoming", "mail.outgoing", "subscribed-calendar"} {
		lists["account.list."+name] = []any{}
	}
	for _, h := range ds {
		if h.Kind != "configuration" || !statuses[h.Identifier].active {
			continue
		}
		p := h.Payload
		entry := func(from map[string]any) map[string]any {
			e := map[string]any{"identifier": h.Identifier, "declaration-identifier": h.Identifier}
			if v, ok := p["VisibleName"].(string); ok {
				e["visible-name"] = v
			}
			if v, ok := from["HostName"].(string); ok {
				e["hostname"] = v
			}
			if v, ok := schema.FromJSON(from["Port"]).(int64); ok {
				e["port"] = v
			}
			return e
		}
		on := func(key string) bool { // Apple's default for *ServiceActive: true
			v, ok := p[key].(bool)
			return !ok || v
		}
		add := func(list string, e map[string]any) { lists[list] = append(lists[list], e) }
		switch h.Type {
		case "com.apple.configuration.account.caldav":
			e := entry(p)
			e["are-calendars-enabled"], e["are-reminders-enabled"] = true, true
			add("account.list.caldav", e)
		case "com.apple.configuration.account.carddav":
			add("account.list.carddav", entry(p))
		case "com.apple.configuration.account.exchange":
			e := entry(p)
			e["is-mail-enabled"], e["are-calendars-enabled"], e["are-contacts-enabled"] = on("MailServiceActive"), on("CalendarServiceActive"), on("ContactsServiceActive")
			e["are-notes-enabled"], e["are-reminders-enabled"] = on("NotesServiceActive"), on("RemindersServiceActive")
			add("account.list.exchange", e)
		case "com.apple.configuration.account.google":
			e := entry(nil)
			if ref, ok := p["UserIdentityAssetReference"].(string); ok {
				for _, a := range ds {
					if a.Kind == "asset" && a.Identifier == ref {
						if email, ok := a.Payload["EmailAddress"].(string); ok {
							e["username"] = email
						}
					}
				}
			}
			e["is-mail-enabled"], e["are-calendars-enabled"], e["are-contacts-enabled"], e["are-notes-enabled"] = true, true, true, true
			add("account.list.google", e)
		case "com.apple.configuration.account.ldap":
			e := entry(p)
			e["is-enabled"] = true
			add("account.list.ldap", e)
		case "com.apple.configuration.account.mail":
			in, _ := p["IncomingServer"].(map[string]any)
			e := entry(in)
			e["is-mail-enabled"], e["are-notes-enabled"] = true, in["ServerType"] == "IMAP"
			add("account.list.mail.incoming", e)
			if out, ok := p["OutgoingServer"].(map[string]any); ok {
				add("account.list.mail.outgoing", entry(out))
			}
		case "com.apple.configuration.account.subscribed-calendar":
			e := entry(nil)
			if v, ok := p["CalendarURL"].(string); ok {
				e["calendar-url"] = v
			}
			e["is-enabled"] = true
			add("account.list.subscribed-calendar", e)
		}
	}
	out := make(map[string]any, len(lists))
	for k, v := range lists {
		out[k] = v
	}
	return out
}
