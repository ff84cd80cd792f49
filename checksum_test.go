package lapse

import (
	"hash/crc32"
	"testing"
)

// TestChecksumIsCRC32: the token checksum is the base62 of the IEEE
// CRC-32 of the secret, for secrets of every length up to 64 bytes.
func TestChecksumIsCRC32(t *testing.T) {
	b := make([]byte, 64)
	for i := range b {
		b[i] = byte(i*37 + 11)
	}
	for n := range len(b) + 1 {
		sum := uint64(crc32.ChecksumIEEE(b[:n]))
		var want [checksumChars]byte
		for i := checksumChars - 1; i >= 0; i-- {
			want[i] = base62[sum%62]
			sum /= 62
		}
		if got := checksum(string(b[:n])); got != want {
			t.Errorf("checksum of %d bytes: %q, want %q", n, got, want)
		}
	}
}

// BenchmarkChecksum measures the checksum ParseToken computes on every
// verify, beside the byte-a-step CRC it replaced (the same run).
func BenchmarkChecksum(b *testing.B) {
	secret := NewToken().Reveal()[len(TokenPrefix):][:secretChars]
	b.Run("slicing8", func(b *testing.B) {
		for b.Loop() {
			checksum(secret)
		}
	})
	b.Run("bytewise", func(b *testing.B) {
		for b.Loop() {
			crc := ^uint32(0)
			for i := 0; i < len(secret); i++ {
				crc = crc32.IEEETable[byte(crc)^secret[i]] ^ (crc >> 8)
			}
			_ = ^crc
		}
	})
}
