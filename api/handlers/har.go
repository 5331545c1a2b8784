package handlers

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
)

// Transcript export formats (?format=): the API's JSON (the default), JSON
// Lines for tools that stream, and HAR 1.2, which a browser's network panel
// and HAR viewers open.
const (
	formatJSON  = "json"
	formatJSONL = "jsonl"
	formatHAR   = "har"
)

func transcriptFormat(r *http.Request) (string, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "", formatJSON:
		return formatJSON, nil
	case formatJSONL, formatHAR:
		return f, nil
	default:
		return "", httperr.New(http.StatusBadRequest, "format=%q: use json (the default), jsonl or har", truncate(f, 40))
	}
}

// writeTranscript answers with entries in the requested format.
func (a *API) writeTranscript(w http.ResponseWriter, r *http.Request, format, name string, entries []*store.TranscriptEntry) {
	switch format {
	case formatJSONL:
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		for _, e := range transcriptJSON(entries).Entries {
			if err := enc.Encode(e); err != nil {
				return // the client went away
			}
		}
	case formatHAR:
		b, err := json.Marshal(harOf(entries, a.publicBase(), a.info.Version))
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.har"`)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	default:
		a.writeJSON(w, r, http.StatusOK, transcriptJSON(entries))
	}
}

// publicBase is the server's base URL (scheme and host), from what
// /v1/info says, so HAR entries carry absolute URLs.
func (a *API) publicBase() string {
	info := a.info
	if a.infoFunc != nil {
		info = a.infoFunc()
	}
	if u, err := url.Parse(info.EnrollmentURL); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return "https://mockmdm.invalid"
}

// HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): the fields
// every entry must have. Headers are not kept in the transcript; what is
// known of them (the content types of the protocol) is given.
type harLog struct {
	Log harBody `json:"log"`
}

type harBody struct {
	Version string     `json:"version"`
	Creator harCreator `json:"creator"`
	Entries []harEntry `json:"entries"`
}

type harCreator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type harEntry struct {
	StartedDateTime string      `json:"startedDateTime"`
	Time            float64     `json:"time"`
	Request         harRequest  `json:"request"`
	Response        harResponse `json:"response"`
	Cache           struct{}    `json:"cache"`
	Timings         harTimings  `json:"timings"`
	Comment         string      `json:"comment,omitempty"`
}

type harNV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type harRequest struct {
	Method      string       `json:"method"`
	URL         string       `json:"url"`
	HTTPVersion string       `json:"httpVersion"`
	Cookies     []harNV      `json:"cookies"`
	Headers     []harNV      `json:"headers"`
	QueryString []harNV      `json:"queryString"`
	PostData    *harPostData `json:"postData,omitempty"`
	HeadersSize int          `json:"headersSize"`
	BodySize    int          `json:"bodySize"`
}

type harPostData struct {
	MimeType string `json:"mimeType"`
	Text     string `json:"text"`
	Encoding string `json:"encoding,omitempty"` // not in HAR 1.2 for postData, but read by viewers; text stays base64 then
}

type harResponse struct {
	Status      int        `json:"status"`
	StatusText  string     `json:"statusText"`
	HTTPVersion string     `json:"httpVersion"`
	Cookies     []harNV    `json:"cookies"`
	Headers     []harNV    `json:"headers"`
	Content     harContent `json:"content"`
	RedirectURL string     `json:"redirectURL"`
	HeadersSize int        `json:"headersSize"`
	BodySize    int        `json:"bodySize"`
}

type harContent struct {
	Size     int    `json:"size"`
	MimeType string `json:"mimeType"`
	Text     string `json:"text,omitempty"`
	Encoding string `json:"encoding,omitempty"`
}

type harTimings struct {
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
}

// requestMIME is the content type a device sends to each endpoint family.
var requestMIME = map[string]string{
	"checkin": "application/x-apple-aspen-mdm-checkin",
	"command": "application/x-apple-aspen-mdm",
	"scep":    "application/x-pki-message",
}

func harOf(entries []*store.TranscriptEntry, base, version string) harLog {
	out := harLog{Log: harBody{Version: "1.2", Creator: harCreator{Name: "mockmdm", Version: version}, Entries: make([]harEntry, 0, len(entries))}}
	for _, e := range entries {
		u := base + e.Path
		var query []harNV
		if pu, err := url.Parse(u); err == nil {
			for k, vs := range pu.Query() {
				for _, v := range vs {
					query = append(query, harNV{Name: k, Value: v})
				}
			}
		}
		if query == nil {
			query = []harNV{}
		}
		he := harEntry{
			StartedDateTime: e.Time.UTC().Format(time.RFC3339Nano),
			Request: harRequest{
				Method: e.Method, URL: u, HTTPVersion: "HTTP/1.1", Cookies: []harNV{}, Headers: []harNV{},
				QueryString: query, HeadersSize: -1, BodySize: len(e.Request),
			},
			Response: harResponse{
				Status: e.Status, StatusText: http.StatusText(e.Status), HTTPVersion: "HTTP/1.1",
				Cookies: []harNV{}, Headers: []harNV{}, HeadersSize: -1, BodySize: len(e.Response),
				Content: harContent{Size: len(e.Response), MimeType: responseMIMEOf(e)},
			},
			Comment: strings.TrimSpace(strings.Join([]string{e.Kind, e.MessageType, e.EnrollmentID, e.Note}, " ")),
		}
		if len(e.Request) > 0 {
			mime := requestMIME[e.Kind]
			if mime == "" {
				mime = "application/octet-stream"
			}
			he.Request.Headers = []harNV{{Name: "Content-Type", Value: mime}}
			he.Request.PostData = &harPostData{MimeType: mime}
			he.Request.PostData.Text, he.Request.PostData.Encoding = bodyText(e.Request)
		}
		if len(e.Response) > 0 {
			he.Response.Headers = []harNV{{Name: "Content-Type", Value: he.Response.Content.MimeType}}
			he.Response.Content.Text, he.Response.Content.Encoding = bodyText(e.Response)
		}
		out.Log.Entries = append(out.Log.Entries, he)
	}
	return out
}

// bodyText is body as HAR text: itself when it is text, else base64.
func bodyText(b []byte) (text, encoding string) {
	if utf8.Valid(b) && !isBinaryPlist(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

// responseMIMEOf is the content type an entry's answer had: what the SCEP
// and profile endpoints send for a successful answer (the transcript keeps
// no headers), else a guess from the bytes.
func responseMIMEOf(e *store.TranscriptEntry) string {
	if e.Status == http.StatusOK && len(e.Response) > 0 {
		switch e.Kind {
		case "enroll":
			return "application/x-apple-aspen-config"
		case "scep":
			switch op, _, _ := strings.Cut(e.MessageType, "/"); op {
			case "GetCACaps":
				return "text/plain"
			case "GetCACert":
				return "application/x-x509-ca-cert"
			case "PKIOperation":
				return "application/x-pki-message"
			}
		}
	}
	return responseMIME(e.Response)
}

func responseMIME(b []byte) string {
	switch {
	case len(b) == 0:
		return "application/octet-stream"
	case looksLikePlist(b) || isBinaryPlist(b):
		return "application/xml"
	case utf8.Valid(b):
		return "text/plain"
	}
	return "application/octet-stream"
}
