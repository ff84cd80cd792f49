package web_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestClient runs the browser client's unit tests (lapse-client.test.js)
// with Node's built-in test runner, so that go test ./... covers them.
// Without node it skips, except on CI, where it fails.
func TestClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not installed; the browser client's tests need Node 20 or newer")
		}
		t.Skip("node is not installed: skipping the browser client's unit tests (node --test web/)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--test", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test web/: %v\n%s", err, out)
	}
	t.Logf("node --test web/: passed")
}
