package metrics

import "testing"

// The memory benchmark reads the live heap from /metrics: keep it exported.
func TestLiveHeapExported(t *testing.T) {
	families, err := New().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		found[f.GetName()] = true
	}
	for _, name := range []string{"go_gc_heap_live_bytes", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes"} {
		if !found[name] {
			t.Errorf("%s not exported", name)
		}
	}
}
