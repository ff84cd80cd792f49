package webhook

import (
	"net/netip"
	"testing"
)

func TestRefused(t *testing.T) {
	onPrem := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("127.0.0.1/32")}
	for _, c := range []struct {
		addr  string
		allow []netip.Prefix
		want  bool // refused
	}{
		{"93.184.215.14", nil, false},
		{"2606:4700::1111", nil, false},
		{"127.0.0.1", nil, true},
		{"127.0.0.2", nil, true},
		{"::1", nil, true},
		{"::ffff:127.0.0.1", nil, true},
		{"10.1.2.3", nil, true},
		{"172.16.0.1", nil, true},
		{"192.168.1.1", nil, true},
		{"fd12:3456::1", nil, true},
		{"169.254.1.1", nil, true},
		{"fe80::1%eth0", nil, true},
		{"0.0.0.0", nil, true},
		{"::", nil, true},
		{"100.64.0.1", nil, true},
		{"224.0.0.1", nil, true},
		{"255.255.255.255", nil, true},
		{"64:ff9b::a00:1", nil, true},      // NAT64 of 10.0.0.1
		{"64:ff9b::5db8:d70e", nil, false}, // NAT64 of 93.184.215.14
		{"2002:a00:1::1", nil, true},       // 6to4 of 10.0.0.1
		{"169.254.169.254", nil, true},
		{"169.254.169.254", []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")}, true}, // metadata stays refused
		{"fd00:ec2::254", []netip.Prefix{netip.MustParsePrefix("fd00::/8")}, true},
		{"10.20.3.4", onPrem, false},
		{"10.21.3.4", onPrem, true},
		{"127.0.0.1", onPrem, false},
		{"127.0.0.2", onPrem, true},
		{"::ffff:10.20.0.9", onPrem, false},
	} {
		why := refused(netip.MustParseAddr(c.addr), c.allow)
		if (why != "") != c.want {
			t.Errorf("refused(%s, %v) = %q, want refused %v", c.addr, c.allow, why, c.want)
		}
	}
}
