package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// StaticReviewer accepts the tokens of a file, one per line, optionally
// followed by ",name" (blank lines and lines starting with # are skipped).
// The file is read again when it changes, at most once a second. Every
// known token is allowed; there is no per-token authorization.
type StaticReviewer struct {
	path string

	mu      sync.Mutex
	mtime   time.Time
	checked time.Time
	tokens  map[[32]byte]string
}

// NewStaticReviewer reads the token file.
func NewStaticReviewer(path string) (*StaticReviewer, error) {
	s := &StaticReviewer{path: path}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *StaticReviewer) load() error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("auth: token file: %w", err)
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("auth: token file: %w", err)
	}
	tokens := map[[32]byte]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tok, name, _ := strings.Cut(line, ",")
		tok = strings.TrimSpace(tok)
		if len(tok) < 16 {
			return fmt.Errorf("auth: token file %s line %d: token shorter than 16 characters", s.path, n)
		}
		if name = strings.TrimSpace(name); name == "" {
			name = fmt.Sprintf("static-token-%d", n)
		}
		tokens[sha256.Sum256([]byte(tok))] = name
	}
	if len(tokens) == 0 {
		return fmt.Errorf("auth: token file %s holds no token", s.path)
	}
	s.mu.Lock()
	s.tokens, s.mtime = tokens, fi.ModTime()
	s.mu.Unlock()
	return nil
}

// Review implements Reviewer.
func (s *StaticReviewer) Review(_ context.Context, token string) (Decision, error) {
	s.reloadIfChanged()
	// Looking up the digest, not the token, keeps the comparison's timing
	// unrelated to the secret.
	sum := sha256.Sum256([]byte(token))
	s.mu.Lock()
	name, ok := s.tokens[sum]
	s.mu.Unlock()
	if !ok {
		return Decision{Reason: "unknown token"}, nil
	}
	return Decision{Authenticated: true, Allowed: true, User: name}, nil
}

func (s *StaticReviewer) reloadIfChanged() {
	s.mu.Lock()
	if time.Since(s.checked) < time.Second {
		s.mu.Unlock()
		return
	}
	s.checked = time.Now()
	mtime := s.mtime
	s.mu.Unlock()
	if fi, err := os.Stat(s.path); err == nil && !fi.ModTime().Equal(mtime) {
		// A bad new file keeps the old tokens in force.
		_ = s.load()
	}
}
