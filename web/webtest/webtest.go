// Package webtest checks lapse's web pages (the end-user pages in web/,
// the demo app, the console) in headless Chromium: it finds the browser,
// checks that a page fits a phone's or a laptop's viewport with every
// control in reach, and saves screenshots, for the documentation when
// asked.
package webtest

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Chromium returns the path of the Chromium to run: $LAPSE_CHROMIUM, or
// chromium, chromium-browser or google-chrome on the PATH. Without one
// the test skips, except with CI=true, where it fails.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LAPSE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is not installed; the browser tests need it (Debian: apt-get install chromium)")
	}
	t.Skip("Chromium is not installed: skipping the browser tests (Debian: apt-get install chromium; or set LAPSE_CHROMIUM)")
	return ""
}

// NewBrowser starts a headless Chromium for t, stopped when t ends, and
// returns the context of a tab in it. opts add to chromedp's defaults
// (no sandbox, no GPU, no background networking), such as
// chromedp.IgnoreCertErrors for a test server's certificate.
func NewBrowser(t testing.TB, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	all := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium(t)),
		chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(all, opts...)...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// Viewport is a screen a page must fit.
type Viewport struct {
	// Name goes into screenshot names: "390" or "1280".
	Name          string
	Width, Height int64
	// Mobile emulates a phone: the page's meta viewport is honoured and
	// touch events are on.
	Mobile bool
}

// Phone is a phone held upright (an iPhone 14's CSS pixels); Laptop is a
// laptop's browser window.
var (
	Phone  = Viewport{Name: "390", Width: 390, Height: 844, Mobile: true}
	Laptop = Viewport{Name: "1280", Width: 1280, Height: 800}
)

// Viewports are the screens every page is checked on.
var Viewports = []Viewport{Phone, Laptop}

// Emulate sets the tab's viewport to v, at one device pixel per CSS
// pixel so that screenshots are v's size, and has the page behave as if
// its window had the focus, so that :focus styles apply to what [Fit]
// focuses (a background tab's page has no focus).
func Emulate(v Viewport) chromedp.Action[chromedp.Void] {
	opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
	if v.Mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	viewport := chromedp.EmulateViewport(v.Width, v.Height, opts...)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
			return chromedp.Void{}, err
		}
		return viewport(ctx, t)
	}
}

//go:embed fit.js
var fitJS string

// Fit returns what keeps the page in the tab of ctx from fitting its
// viewport, in words; none means it fits. A page fits when the document
// is no wider than the viewport and every visible control (link, button,
// form field, summary, scrollable region) can be brought into view by
// scrolling the page or a frame the user can scroll, and is then on top
// at its centre, neither covered nor clipped. With strict, a control
// that only a frame's sideways scrolling reaches is a problem too: on a
// laptop nothing should need it.
//
// It focuses each control in turn (so a skip link shows) and opens every
// <details>, so call it after taking a screenshot; it scrolls the page
// back to the top when done.
func Fit(ctx context.Context, strict bool) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf("(%s)(%t)", fitJS, strict)))
}

// Screenshot captures what the viewport shows, as a PNG.
func Screenshot(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.CaptureScreenshot())
}

// DocDir is where documentation screenshots go: $LAPSE_DOC_SCREENSHOTS,
// or "" when they are not wanted, as on every ordinary test run:
//
//	LAPSE_DOC_SCREENSHOTS=$PWD/docs/img go test ./web/... ./demo ./console
func DocDir() string { return os.Getenv("LAPSE_DOC_SCREENSHOTS") }

// CheckPage checks the page open in the tab of ctx on each of [Viewports]
// (strictly on the laptop, see [Fit]) and fails t with every problem.
// Its screenshots are written as NAME-390.png and NAME-1280.png to
// [DocDir] when set, and to a temporary directory, named in the log,
// when the page does not fit.
func CheckPage(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	for _, v := range Viewports {
		problems, png, err := check(ctx, v)
		if err != nil {
			t.Fatalf("%s at %d px: %v", name, v.Width, err)
		}
		file := name + "-" + v.Name + ".png"
		if dir := DocDir(); dir != "" {
			save(t, filepath.Join(dir, file), png)
		}
		if len(problems) == 0 {
			continue
		}
		const most = 8 // the first ones say what is wrong
		for i, p := range problems {
			if i == most {
				t.Errorf("%s at %dx%d: and %d more", name, v.Width, v.Height, len(problems)-most)
				break
			}
			t.Errorf("%s at %dx%d: %s", name, v.Width, v.Height, p)
		}
		if dir, err := os.MkdirTemp("", "lapse-fit-"); err == nil {
			save(t, filepath.Join(dir, file), png)
		}
	}
}

func check(ctx context.Context, v Viewport) ([]string, []byte, error) {
	if err := chromedp.Do(ctx, Emulate(v)); err != nil {
		return nil, nil, err
	}
	// Let the new layout settle and any web font load before the shot.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true)))))`,
		chromedp.EvalAwaitPromise)); err != nil {
		return nil, nil, err
	}
	png, err := Screenshot(ctx)
	if err != nil {
		return nil, nil, err
	}
	problems, err := Fit(ctx, !v.Mobile)
	return problems, png, err
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func save(t testing.TB, path string, png []byte) {
	t.Helper()
	path = filepath.Join(filepath.Dir(path), unsafeName.ReplaceAllString(filepath.Base(path), "_"))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("saving a screenshot: %v", err)
		return
	}
	t.Logf("wrote %s", path)
}
