package device

import (
	"context"
	"strings"
)

// AccountConfiguration on a Mac: Setup Assistant creates the local
// administrator accounts the server lists (AutoSetupAdminAccounts) and the
// primary account it names (PrimaryAccountUserName and FullName, unless
// SkipPrimarySetupAccountCreation). The virtual Mac adds them to its users,
// not logged in, so UserList shows them and LogIn can log them in later.
//
// Sources: the schema mdm/commands/account.configuration.yaml (shortName
// required in each admin account; fullName defaulting to shortName;
// passwordHash, a salted PBKDF2-SHA512 hash, and hidden optional). The
// schema makes the command ADE-only (requiresdep), which the dispatcher
// applies. The password hash is not kept: a virtual Mac has no login
// window to check it at.

func init() {
	moreHandlers["AccountConfiguration"] = handleAccountConfiguration
}

func handleAccountConfiguration(_ context.Context, d *Device, cmd *Command) Response {
	type account struct {
		short, full string
		hidden      bool
	}
	var accounts []account
	if v, ok := cmd.Params["AutoSetupAdminAccounts"]; ok {
		items, ok := v.([]any)
		if !ok {
			return formatError("AutoSetupAdminAccounts must be an array of dictionaries")
		}
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return formatError("AutoSetupAdminAccounts[%d] must be a dictionary", i)
			}
			short, ok := m["shortName"].(string)
			if !ok || strings.TrimSpace(short) == "" {
				return formatError("AutoSetupAdminAccounts[%d] needs shortName (a string)", i)
			}
			full, err := optString(m, "fullName")
			if err != nil {
				return formatError("AutoSetupAdminAccounts[%d]: %v", i, err)
			}
			if full == "" {
				full = short
			}
			hidden, err := optBool(m, "hidden")
			if err != nil {
				return formatError("AutoSetupAdminAccounts[%d]: %v", i, err)
			}
			if h, ok := m["passwordHash"]; ok {
				if _, isData := h.([]byte); !isData {
					return formatError("AutoSetupAdminAccounts[%d].passwordHash must be <data>", i)
				}
			}
			accounts = append(accounts, account{short, full, hidden})
		}
	}
	skip, err := optBool(cmd.Params, "SkipPrimarySetupAccountCreation")
	if err != nil {
		return formatError("%v", err)
	}
	primary, err := optString(cmd.Params, "PrimaryAccountUserName")
	if err != nil {
		return formatError("%v", err)
	}
	primaryFull, err := optString(cmd.Params, "PrimaryAccountFullName")
	if err != nil {
		return formatError("%v", err)
	}
	if !skip && primary != "" {
		if primaryFull == "" {
			primaryFull = primary
		}
		accounts = append(accounts, account{short: primary, full: primaryFull})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range accounts {
		if d.st.user(a.short) != nil {
			continue
		}
		d.st.users = append(d.st.users, &userRecord{ShortName: a.short, LongName: a.full, UserID: d.macUserGUID(a.short),
			UID: 501 + len(d.st.users), Hidden: a.hidden})
	}
	return Acknowledged(nil)
}
