package validate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is one FROM and the instructions after it.
type stage struct {
	image, name string
	body        []instruction
}

// parseDockerfile is enough of the Dockerfile grammar for these checks:
// comments, blank lines, line continuations with a backslash, and
// instructions. Heredocs are not supported and fail the parse.
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		ins     []instruction
		pending string
		start   int
	)
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if pending == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if pending != "" && strings.HasPrefix(line, "#") {
			continue // comment inside a continued instruction
		}
		if pending == "" {
			start = i + 1
		}
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		full := pending + line
		pending = ""
		cmd, args, _ := strings.Cut(full, " ")
		if strings.Contains(args, "<<") {
			t.Fatalf("%s:%d: heredocs are not supported by this parser", path, start)
		}
		ins = append(ins, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
	}
	if pending != "" {
		t.Fatalf("%s: ends inside a continued line", path)
	}
	var stages []stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			var s stage
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					s.name = f[i+1]
					i++
				default:
					s.image = f[i]
				}
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	return stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("%d stage(s), want a multi-stage build", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	// Build stage: golang:1.26, a static, trimmed build of ./cmd/gateway
	// with the version stamped from the VERSION build argument.
	if !strings.HasPrefix(build.image, "golang:1.26") {
		t.Errorf("build stage image %q, want golang:1.26", build.image)
	}
	if build.name == "" {
		t.Error("build stage has no name")
	}
	hasArg := func(s stage, name string) bool {
		for _, a := range s.all("ARG") {
			if a.args == name || strings.HasPrefix(a.args, name+"=") {
				return true
			}
		}
		return false
	}
	if !hasArg(build, "VERSION") {
		t.Error("build stage has no ARG VERSION")
	}
	var goBuild string
	for _, r := range build.all("RUN") {
		if strings.Contains(r.args, "go build") {
			goBuild = r.args
		}
	}
	if goBuild == "" {
		t.Fatal("no RUN with go build in the build stage")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/gateway", "-s -w", "-X main.version=${VERSION}"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("go build lacks %q: %s", want, goBuild)
		}
	}
	out := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(goBuild)
	if out == nil {
		t.Fatalf("go build has no -o: %s", goBuild)
	}

	// Final stage: distroless static nonroot, only the binary, non-root
	// user, exec-form entrypoint (there is no shell).
	if final.image != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final image %q, want gcr.io/distroless/static-debian12:nonroot", final.image)
	}
	if runs := final.all("RUN"); len(runs) > 0 {
		t.Errorf("final stage has RUN at line %d: the image has no shell", runs[0].line)
	}
	copies := final.all("COPY")
	if len(copies) != 1 || !strings.Contains(copies[0].args, "--from="+build.name) ||
		!strings.Contains(copies[0].args, out[1]+" /gateway") {
		t.Errorf("final stage COPY = %+v, want only COPY --from=%s %s /gateway", copies, build.name, out[1])
	}
	users := final.all("USER")
	if len(users) == 0 {
		t.Fatal("final stage has no USER")
	}
	user := users[len(users)-1].args
	if user != "65532:65532" {
		t.Errorf("USER %q, want 65532:65532", user)
	}
	entry := final.all("ENTRYPOINT")
	if len(entry) != 1 {
		t.Fatalf("final stage has %d ENTRYPOINT, want 1", len(entry))
	}
	var argv []string
	if err := json.Unmarshal([]byte(entry[0].args), &argv); err != nil {
		t.Fatalf("ENTRYPOINT %s is not exec form (a JSON array): %v", entry[0].args, err)
	}
	if len(argv) != 1 || argv[0] != "/gateway" {
		t.Errorf("ENTRYPOINT %v, want [/gateway]", argv)
	}
	for _, c := range final.all("CMD") {
		if !strings.HasPrefix(c.args, "[") || strings.Contains(c.args, "sh") {
			t.Errorf("CMD %s needs a shell", c.args)
		}
	}
	exposed := false
	for _, e := range final.all("EXPOSE") {
		exposed = exposed || strings.Fields(e.args)[0] == "8080" || strings.Fields(e.args)[0] == "8080/tcp"
	}
	if !exposed {
		t.Error("final stage does not EXPOSE 8080")
	}
}

func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		lines[strings.TrimSuffix(strings.TrimSpace(l), "/")] = true
	}
	for _, want := range []string{".git", "bin", "reports"} {
		if !lines[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd", "internal", "api", "*.go", "**/*.go"} {
		if lines[keep] {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
}
