package daemon

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// certReloader serves the certificate in smtpd_tls_cert_file/key_file and
// reloads it when either file changes, so a renewed certificate is used
// without a restart.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) newest() time.Time {
	var t time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(t) {
			t = st.ModTime()
		}
	}
	return t
}

func (r *certReloader) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mt := r.newest()
	if r.cert != nil && !mt.After(r.modTime) {
		return r.cert, nil
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // keep serving the old one until the new pair is complete
		}
		return nil, fmt.Errorf("smtpd_tls_cert_file/smtpd_tls_key_file: %w", err)
	}
	r.cert, r.modTime = &c, mt
	return r.cert, nil
}

// serverTLS returns the TLS configuration for an smtpd service, or nil when
// it has no certificate. TLS 1.2 is the minimum.
func (n *Node) serverTLS(service string) (*tls.Config, error) {
	certFile := n.cfg.ServiceParam(service, "smtpd_tls_cert_file")
	if certFile == "" || n.cfg.ServiceParam(service, "smtpd_tls_security_level") == "none" {
		return nil, nil
	}
	r, err := newCertReloader(certFile, n.cfg.ServiceParam(service, "smtpd_tls_key_file"))
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.get() },
	}, nil
}
