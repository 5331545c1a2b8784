package device

import (
	"context"
	"slices"
	"strconv"
	"strings"
)

// Managed books: InstallMedia installs a book by iTunes Store ID or by
// MediaURL (with its PersistentID, Kind, Version, Author and Title),
// ManagedMediaList lists the books the server installed, RemoveMedia
// removes one by iTunes Store ID or PersistentID.
//
// Sources: the schemas mdm/commands/media.install.yaml (MediaType only
// Book; the response's State and RejectionReason values, among them
// WrongMediaType and DownloadInvalid), media.managed.list.yaml (Books of
// {iTunesStoreID, State, PersistentID, Kind, Version, Author, Title}) and
// media.remove.yaml (whose iTunesStoreID is a string, unlike the others';
// the virtual device takes either). The schema marks a listed book's
// iTunesStoreID required, but a book installed from a MediaURL has none;
// the virtual device leaves the key out rather than invent a number.

// ErrCodeMediaNotManaged: RemoveMedia names a book the server did not
// install (mockmdm's own code in Apple's domain).
const ErrCodeMediaNotManaged = 12034

// book is a book the server installed.
type book struct {
	StoreID      int64  `json:"itunes_store_id,omitempty"`
	URL          string `json:"media_url,omitempty"`
	PersistentID string `json:"persistent_id,omitempty"`
	Kind         string `json:"kind,omitempty"`
	Version      string `json:"version,omitempty"`
	Author       string `json:"author,omitempty"`
	Title        string `json:"title,omitempty"`
}

var bookKinds = []string{"pdf", "epub", "ibooks"}

func init() {
	moreHandlers["InstallMedia"] = handleInstallMedia
	moreHandlers["ManagedMediaList"] = handleManagedMediaList
	moreHandlers["RemoveMedia"] = handleRemoveMedia
}

// bookParams reads the optional string parameters of a book.
func bookParams(params map[string]any, b *book) error {
	for _, f := range []struct {
		key string
		to  *string
	}{{"MediaURL", &b.URL}, {"PersistentID", &b.PersistentID}, {"Kind", &b.Kind}, {"Version", &b.Version}, {"Author", &b.Author}, {"Title", &b.Title}} {
		v, err := optString(params, f.key)
		if err != nil {
			return err
		}
		*f.to = v
	}
	return nil
}

func handleInstallMedia(_ context.Context, d *Device, cmd *Command) Response {
	mediaType, ok := cmd.Params["MediaType"].(string)
	if !ok {
		return formatError("MediaType is required and must be a string (Book)")
	}
	var b book
	if v, present := cmd.Params["iTunesStoreID"]; present {
		n, ok := toInt64(v)
		if !ok || n <= 0 {
			return formatError("iTunesStoreID must be a positive integer")
		}
		b.StoreID = n
	}
	if err := bookParams(cmd.Params, &b); err != nil {
		return formatError("%v", err)
	}
	if b.Kind != "" && !slices.Contains(bookKinds, b.Kind) {
		return formatError("Kind must be one of %v", bookKinds)
	}
	echo := map[string]any{"MediaType": mediaType}
	if b.StoreID != 0 {
		echo["iTunesStoreID"] = b.StoreID
	}
	if b.URL != "" {
		echo["MediaURL"] = b.URL
	}
	if b.PersistentID != "" {
		echo["PersistentID"] = b.PersistentID
	}
	reject := func(reason string) Response {
		echo["State"], echo["RejectionReason"] = "Failed", reason
		return Acknowledged(echo)
	}
	switch {
	case mediaType != "Book":
		return reject("WrongMediaType")
	case b.StoreID == 0 && b.URL == "":
		return formatError("InstallMedia needs an iTunesStoreID or a MediaURL")
	case b.URL != "" && !strings.HasPrefix(b.URL, "https://"):
		return reject("DownloadInvalid")
	case b.URL != "" && b.PersistentID == "":
		return formatError("a book from a MediaURL needs its PersistentID")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.books = slices.DeleteFunc(d.st.books, func(o *book) bool { return sameBook(o, b.StoreID, b.PersistentID) })
	d.st.books = append(d.st.books, &b)
	echo["State"] = "Managed"
	return Acknowledged(echo)
}

// sameBook reports whether o is the book with this store ID or persistent ID.
func sameBook(o *book, storeID int64, persistentID string) bool {
	return (storeID != 0 && o.StoreID == storeID) || (persistentID != "" && o.PersistentID == persistentID)
}

func handleManagedMediaList(_ context.Context, d *Device, _ *Command) Response {
	d.mu.RLock()
	defer d.mu.RUnlock()
	list := []any{}
	for _, b := range d.st.books {
		e := map[string]any{"State": "Managed"}
		if b.StoreID != 0 {
			e["iTunesStoreID"] = b.StoreID
		}
		for k, v := range map[string]string{"PersistentID": b.PersistentID, "Kind": b.Kind, "Version": b.Version, "Author": b.Author, "Title": b.Title} {
			if v != "" {
				e[k] = v
			}
		}
		list = append(list, e)
	}
	return Acknowledged(map[string]any{"Books": list})
}

func handleRemoveMedia(_ context.Context, d *Device, cmd *Command) Response {
	if t, _ := cmd.Params["MediaType"].(string); t != "Book" {
		return formatError("MediaType is required and must be Book")
	}
	var storeID int64
	switch v := cmd.Params["iTunesStoreID"].(type) {
	case nil:
	case string: // the schema's type here
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return formatError("iTunesStoreID %q is not a store identifier", v)
		}
		storeID = n
	default:
		n, ok := toInt64(v)
		if !ok || n <= 0 {
			return formatError("iTunesStoreID must be a store identifier")
		}
		storeID = n
	}
	persistentID, err := optString(cmd.Params, "PersistentID")
	if err != nil {
		return formatError("%v", err)
	}
	if storeID == 0 && persistentID == "" {
		return formatError("RemoveMedia needs an iTunesStoreID or a PersistentID")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	before := len(d.st.books)
	d.st.books = slices.DeleteFunc(d.st.books, func(o *book) bool { return sameBook(o, storeID, persistentID) })
	if len(d.st.books) == before {
		return Failed(ChainItem(DomainMDM, ErrCodeMediaNotManaged, "The book is not managed."),
			detail("no book with iTunesStoreID %d or PersistentID %q was installed by this MDM server", storeID, persistentID))
	}
	return Acknowledged(nil)
}
