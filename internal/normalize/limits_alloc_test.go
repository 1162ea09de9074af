package normalize

import (
	"reflect"
	"strings"
	"testing"
)

// boundMap returns the map itself when nothing exceeds the limits and a
// bounded copy otherwise, leaving the input untouched.
func TestBoundMapSharesOnlyWhenWithinLimits(t *testing.T) {
	in := map[string]string{"a": "short", "b": "also short"}
	out := boundMap(in, 10)
	if len(out) != 2 || out["a"] != "short" || out["b"] != "also short" {
		t.Fatalf("within limits: %v", out)
	}
	if reflect.ValueOf(out).UnsafePointer() != reflect.ValueOf(in).UnsafePointer() {
		t.Fatal("within limits: a copy was made, want the map itself")
	}
	long := map[string]string{"a": "short", "b": strings.Repeat("x", 100)}
	out = boundMap(long, 50)
	if len(out["b"]) > 50 || !strings.HasSuffix(out["b"], TruncatedMarker) || out["a"] != "short" {
		t.Fatalf("over the limit: %v", out)
	}
	if len(long["b"]) != 100 {
		t.Fatal("bounding modified the input")
	}
	if boundMap(nil, 10) != nil || boundMap(map[string]string{}, 10) != nil {
		t.Fatal("an empty map must give nil")
	}
}
