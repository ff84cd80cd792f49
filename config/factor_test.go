package config_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lapsehq/lapse/config"
)

func TestFactorKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, config.FactorKeySize)
	f, err := config.Parse("lapse.yaml", []byte("factor_key: q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n"))
	if err != nil || !bytes.Equal(f.FactorKey, key) {
		t.Fatalf("factor_key = %x, %v; want %x", f.FactorKey, err, key)
	}
	if f, _ := config.Parse("lapse.yaml", []byte("listen: 127.0.0.1:1\n")); f.FactorKey != nil {
		t.Errorf("without factor_key: %x, want nil (serve decides)", f.FactorKey)
	}
	for _, bad := range []string{"c2hvcnQ=", "not base64 at all!", "[1, 2]"} {
		_, err := config.Parse("lapse.yaml", []byte("factor_key: "+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "lapse.yaml:1: factor_key:") {
			t.Errorf("factor_key %s: error %v, want one naming the line and key", bad, err)
		} else if strings.Contains(err.Error(), bad) {
			t.Errorf("factor_key %s: the error repeats the value: %v", bad, err)
		}
	}
}
