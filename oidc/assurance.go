package oidc

import "slices"

// Factor kinds of RFC 8176 authentication methods ("amr" values): a
// method is something the user knows, has or is.
var factorKind = map[string]string{
	"pwd": "know", "pin": "know", "kba": "know",
	"otp": "have", "sms": "have", "tel": "have", "hwk": "have", "swk": "have", "sc": "have", "pop": "have",
	"fpt": "are", "face": "are", "iris": "are", "retina": "are", "vbm": "are",
}

// Assurance maps what an identity provider says of an authentication (its
// "acr" and "amr" claims) to lapse's assurance level (AAL, 1-3):
//
//   - AAL2 when amr holds "mfa" (RFC 8176: several factors) or methods of
//     two kinds among something known (pwd, pin, kba), had (otp, sms,
//     tel, hwk, swk, sc, pop) and inherent (fpt, face, iris, retina, vbm);
//   - ACR[acr], when the provider's acr is one the configuration names;
//   - AMR[m] for each method m the configuration names;
//   - AAL1 otherwise.
//
// The highest of these wins. lapse never infers AAL3 by itself: only a
// configured acr or amr value says that the provider checked a hardware,
// phishing-resistant authenticator.
type Assurance struct {
	ACR map[string]int
	AMR map[string]int
}

// Level returns the AAL of an authentication with acr and amr.
func (a *Assurance) Level(acr string, amr []string) int {
	aal := 1
	kinds := map[string]bool{}
	for _, m := range amr {
		if k := factorKind[m]; k != "" {
			kinds[k] = true
		}
		aal = max(aal, a.AMR[m])
	}
	if len(kinds) >= 2 || slices.Contains(amr, "mfa") {
		aal = max(aal, 2)
	}
	if acr != "" {
		aal = max(aal, a.ACR[acr])
	}
	return min(aal, 3)
}

// acrValues returns the configured acr values that mean at least aal,
// weakest first, for a request's acr_values: the provider picks the
// first it can satisfy.
func (a *Assurance) acrValues(aal int) []string {
	var out []string
	for v, n := range a.ACR {
		if n >= aal {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(x, y string) int {
		if a.ACR[x] != a.ACR[y] {
			return a.ACR[x] - a.ACR[y]
		}
		if x < y {
			return -1
		}
		return 1
	})
	return out
}
