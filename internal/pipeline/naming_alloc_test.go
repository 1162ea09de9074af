package pipeline

import (
	"strconv"
	"testing"
)

// ResourceName is built in a stack buffer; it must equal the documented
// formula for every shape of input.
func TestResourceNameMatchesFormula(t *testing.T) {
	fps := []string{"89a240f103e2151705deb037f2e435389559907b949c7b5844a385d563218e41", "abc", ""}
	for _, fp := range fps {
		for _, b := range []int64{0, 1, 35, 36, 5_985_800, 1<<63 - 1, -1} {
			short := fp
			if len(short) > 32 {
				short = short[:32]
			}
			want := "rr-" + short + "-" + strconv.FormatInt(b, 36)
			if got := ResourceName(fp, b); got != want {
				t.Errorf("ResourceName(%q, %d) = %q, want %q", fp, b, got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = ResourceName(fps[0], 5_985_800) }); n > 1 {
		t.Errorf("ResourceName allocates %.0f times, want 1", n)
	}
}
