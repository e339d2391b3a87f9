package fleetapi

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
)

// metadataOp is one operation of PATCH /machines. fleet reads the value
// as {"value":"x"} (coreos/fleet: api/machines.go); atoll also takes a
// plain string, as fleet's documentation shows it.
type metadataOp struct {
	Op    string        `json:"op"`
	Path  string        `json:"path"`
	Value metadataValue `json:"value"`
}

// metadataValue is the value of a metadataOp: {"value":"x"} on the wire,
// or "x".
type metadataValue struct {
	Value string `json:"value"`
}

// UnmarshalJSON takes {"value":"x"}, "x" or null.
func (v *metadataValue) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &v.Value)
	}
	type plain metadataValue // without this method
	return json.Unmarshal(b, (*plain)(v))
}

// pageToken is fleet's page token (coreos/fleet: api/pagination.go): the
// page size and the 1-based page number, little-endian uint16s, base64url
// with padding.
type pageToken struct {
	Limit uint16
	Page  uint16
}

func (t pageToken) next() pageToken { return pageToken{Limit: t.Limit, Page: t.Page + 1} }

func (t pageToken) encode() string {
	var b [4]byte
	binary.LittleEndian.PutUint16(b[0:], t.Limit)
	binary.LittleEndian.PutUint16(b[2:], t.Page)
	return base64.URLEncoding.EncodeToString(b[:])
}

// decodePageToken reads a token as fleet does: extra bytes after the
// four it needs are ignored, fewer are an error.
func decodePageToken(s string) (pageToken, error) {
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil {
		return pageToken{}, err
	}
	if len(b) < 4 {
		return pageToken{}, io.ErrUnexpectedEOF
	}
	return pageToken{
		Limit: binary.LittleEndian.Uint16(b[0:]),
		Page:  binary.LittleEndian.Uint16(b[2:]),
	}, nil
}

// findPageToken reads ?nextPageToken= as fleet's findNextPageToken does:
// at most one, decodable, of limit items, page one or later. Without one
// it is the first page.
func findPageToken(u *url.URL, limit uint16) (pageToken, error) {
	values := u.Query()["nextPageToken"]
	switch len(values) {
	case 0:
		return pageToken{Limit: limit, Page: 1}, nil
	case 1:
	default:
		return pageToken{}, errors.New("too many values for page token")
	}
	tok, err := decodePageToken(values[0])
	if err != nil {
		return pageToken{}, err
	}
	if tok.Limit != limit {
		return pageToken{}, fmt.Errorf("token limit must be %d", limit)
	}
	if tok.Page == 0 {
		return pageToken{}, errors.New("token page must be greater than zero")
	}
	return tok, nil
}

// extractPage is the page tok names of all, and the token of the next
// page. As in fleet, a page that ends exactly at the end of the list
// still names a next page, which is empty; a page past the end is empty
// and names none.
func extractPage[T any](all []T, tok pageToken) ([]T, string) {
	start := (int(tok.Page) - 1) * int(tok.Limit)
	stop := int(tok.Page) * int(tok.Limit)
	if start >= len(all) {
		return nil, ""
	}
	if stop > len(all) {
		return all[start:], ""
	}
	return all[start:stop], tok.next().encode()
}
