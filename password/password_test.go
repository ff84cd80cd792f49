package password

import (
	"strings"
	"testing"
)

func TestHashVerifies(t *testing.T) {
	h := Hash("correct horse battery staple")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("Hash = %q; want OWASP's argon2id parameters in a PHC string", h)
	}
	for pw, want := range map[string]bool{"correct horse battery staple": true, "correct horse battery stapl": false, "": false} {
		if ok, err := Verify(h, pw); err != nil || ok != want {
			t.Errorf("Verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if a, b := Hash("same password here"), Hash("same password here"); a == b {
		t.Error("two hashes of one password are equal; want a fresh salt each")
	}
}

func TestVerifyDummyIsFalse(t *testing.T) {
	if VerifyDummy("lapse dummy password, never a real one") {
		t.Error("VerifyDummy = true; want false for every password")
	}
}

func TestAcceptable(t *testing.T) {
	for pw, ok := range map[string]bool{
		strings.Repeat("a", MinLength-1): false,
		strings.Repeat("a", MinLength):   true,
		strings.Repeat("é", MinLength):   true, // characters, not bytes
		strings.Repeat("a", MaxLength+1): false,
		"\xff" + strings.Repeat("a", 20): false,
	} {
		if got := Acceptable(pw) == nil; got != ok {
			t.Errorf("Acceptable(%d bytes) = %v; want %v", len(pw), got, ok)
		}
	}
}

func TestVerifyRefusesMalformedHashes(t *testing.T) {
	good := "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	if _, err := parse(good); err != nil {
		t.Fatalf("parse(good) = %v", err)
	}
	for _, bad := range []string{
		"", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA", // 95 GiB
		"$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1,x=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$t=2,m=19456,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
	} {
		if ok, err := Verify(bad, "x"); err == nil || ok {
			t.Errorf("Verify(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
}

// FuzzParse checks that no string makes parse panic or accept what it
// would not write back the same.
func FuzzParse(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=019456,t=2,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parse(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Errorf("parse(%q) read back as %q", s, p.String())
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	h := Hash("correct horse battery staple")
	for b.Loop() {
		Verify(h, "correct horse battery staple")
	}
}
