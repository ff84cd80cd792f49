package middleware_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/middleware"
	"github.com/lapsehq/lapse/sqlite"
)

func Example() {
	dir, _ := os.MkdirTemp("", "lapse-example")
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(filepath.Join(dir, "lapse.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	m, err := lapse.New(lapse.Config{Store: store, Policy: lapsetest.Policy()})
	if err != nil {
		log.Fatal(err)
	}
	mw, err := middleware.New(middleware.Config{Manager: m})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("POST /signin", mw.SameOrigin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// ... check the password, then:
		if _, err := mw.Login(w, r, lapse.CreateParams{Subject: "alice", AMR: []string{"pwd"}}); err != nil {
			http.Error(w, "could not sign in", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/documents", http.StatusSeeOther)
	})))
	mux.Handle("GET /documents", mw.Page(middleware.Requirement{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.Session(r.Context())
		fmt.Fprintf(w, "documents of %s", s.Subject)
	})))
	mux.Handle("GET /billing", mw.Page(middleware.Requirement{AAL: 2})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "billing")
	})))

	// A browser without a session is sent to sign in.
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "https://app.example/documents", nil))
	fmt.Println(w.Code, w.Header().Get("Location"))

	// It signs in and gets the cookie.
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("POST", "https://app.example/signin", nil))
	cookie := w.Result().Cookies()[0]
	fmt.Println(cookie.Name, cookie.Secure, cookie.HttpOnly, cookie.SameSite == http.SameSiteLaxMode)

	r := httptest.NewRequest("GET", "https://app.example/documents", nil)
	r.AddCookie(cookie)
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())

	// Billing needs a second factor first.
	r = httptest.NewRequest("GET", "https://app.example/billing", nil)
	r.AddCookie(cookie)
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Location"))
	// Output:
	// 303 /signin?next=%2Fdocuments
	// __Host-lapse true true true
	// 200 documents of alice
	// 303 /stepup?next=%2Fbilling
}
