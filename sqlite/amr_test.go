package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestParseAMRAgreesWithJSON: parseAMR reads every list insertSession
// stores (json.Marshal of the methods) as encoding/json does.
func TestParseAMRAgreesWithJSON(t *testing.T) {
	for _, amr := range [][]string{
		{}, {""}, {"pwd"}, {"pwd", "totp", "webauthn"}, {`a","b`}, {`back\slash`}, {"<html>", "é"}, {"", ""},
	} {
		stored, err := json.Marshal(amr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseAMR(string(stored))
		if err != nil || !reflect.DeepEqual(got, amr) {
			t.Errorf("parseAMR(%s) = %q, %v; want %q", stored, got, err, amr)
		}
	}
	if _, err := parseAMR(`["pwd"`); err == nil {
		t.Error("parseAMR of a cut list: no error")
	}
}
