package server

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// CertReloader serves a certificate from files and reads them again when
// they change (checked at most once a second, on handshakes), so that a
// rotated certificate is used without a restart.
type CertReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	mtimes  [2]time.Time
	checked time.Time
}

// NewCertReloader loads the certificate and its key.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	c := &CertReloader{certFile: certFile, keyFile: keyFile}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *CertReloader) modTimes() ([2]time.Time, error) {
	var m [2]time.Time
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return m, err
		}
		m[i] = fi.ModTime()
	}
	return m, nil
}

func (c *CertReloader) load() error {
	m, err := c.modTimes()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c.mu.Lock()
	c.cert, c.mtimes = &cert, m
	c.mu.Unlock()
	return nil
}

// GetCertificate is for tls.Config.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	stale := time.Since(c.checked) >= time.Second
	if stale {
		c.checked = time.Now()
	}
	mtimes := c.mtimes
	c.mu.Unlock()
	if stale {
		// A half-written pair fails to load and the old one stays in use.
		if m, err := c.modTimes(); err == nil && m != mtimes {
			_ = c.load()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, nil
}
