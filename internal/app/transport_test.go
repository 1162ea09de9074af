package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/alertgate/gateway/internal/config"
)

// client-go retries a GET whose connection was closed, and any request
// answered 429 with Retry-After, up to ten times a second apart; through
// the gateway's transport each is tried once.
func TestTheAPIClientNeverRetries(t *testing.T) {
	for _, c := range []struct {
		name    string
		handler func(w http.ResponseWriter)
	}{
		{"connection closed", func(w http.ResponseWriter) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}},
		{"429 with Retry-After", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429}`))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				c.handler(w)
			}))
			defer srv.Close()
			cfg := config.Default()
			rc, idle := tuneREST(&rest.Config{Host: srv.URL}, cfg)
			defer idle()
			rc.GroupVersion = &schema.GroupVersion{Version: "v1"}
			rc.APIPath = "/api"
			rc.NegotiatedSerializer = serializer.WithoutConversionCodecFactory{CodecFactory: scheme.Codecs}
			cl, err := rest.RESTClientFor(rc)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = cl.Get().Resource("pods").Do(context.Background()).Error()
			if err == nil {
				t.Fatal("no error")
			}
			if n := hits.Load(); n != 1 || time.Since(start) > 500*time.Millisecond {
				t.Errorf("%d attempts in %s, want 1 at once: %v", n, time.Since(start), err)
			}
		})
	}
}
