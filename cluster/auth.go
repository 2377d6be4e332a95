package cluster

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// MinSecretLen is the shortest accepted cluster secret. Any node hands its
// CA-signed certificate to whoever connects, so a guessable secret could be
// found offline; 16 random characters put that out of reach.
const MinSecretLen = 16

const (
	// certLifetime bounds how long a stolen node certificate stays useful.
	certLifetime = 24 * time.Hour
	// certBackdate tolerates clocks that differ between nodes.
	certBackdate = time.Hour
	// Versioned labels: changing the derivation means a new label, never
	// silently different keys from the same secret.
	caSalt = "yubin cluster CA"
	caInfo = "ed25519 seed v1"
)

// authority is the cluster CA derived from the shared secret plus this
// node's current certificate, reissued before it expires.
type authority struct {
	caCert *x509.Certificate
	caKey  ed25519.PrivateKey
	roots  *x509.CertPool
	node   string
	now    func() time.Time

	mu      sync.Mutex
	current *tls.Certificate
	renewAt time.Time
}

// newAuthority derives the CA key pair from secret (HKDF-SHA256 to an
// ed25519 seed). Every node holding the same secret derives the same CA
// certificate, byte for byte, so none has to be distributed.
func newAuthority(secret, node string) (*authority, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("cluster: secret has %d bytes, need at least %d (e.g. the output of `openssl rand -base64 32`)", len(secret), MinSecretLen)
	}
	seed, err := hkdf.Key(sha256.New, []byte(secret), []byte(caSalt), caInfo, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("cluster: derive CA key: %w", err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "yubin cluster CA"},
		NotBefore:             time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // node certificates only, no intermediates
		KeyUsage:              x509.KeyUsageCertSign,
	}
	// ed25519 signatures are deterministic: the same secret yields the same
	// certificate on every node.
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("cluster: create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cluster: parse CA certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &authority{caCert: ca, caKey: key, roots: roots, node: node, now: time.Now}, nil
}

// certificate returns this node's certificate, issuing a fresh key pair and
// certificate when none exists or half its lifetime has passed.
func (a *authority) certificate() (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if a.current != nil && now.Before(a.renewAt) {
		return a.current, nil
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cluster: node key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("cluster: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: a.node},
		NotBefore:    now.Add(-certBackdate),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(nil, tmpl, a.caCert, pub, a.caKey)
	if err != nil {
		return nil, fmt.Errorf("cluster: issue node certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cluster: parse node certificate: %w", err)
	}
	a.current = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}
	a.renewAt = now.Add(certLifetime / 2)
	return a.current, nil
}

var (
	errNoPeerCert = errors.New("cluster: peer sent no certificate")
	// errNotMember marks a peer whose certificate the cluster CA did not sign.
	errNotMember = errors.New("cluster: peer is not a member of this cluster (wrong secret?)")
)

// verifyPeer accepts exactly one thing: a leaf certificate signed directly by
// the derived CA and valid now. Host names are not checked: nodes are
// addressed by IP and port, and the secret, not the address, is the identity.
func (a *authority) verifyPeer(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	if len(rawCerts) == 0 {
		return errNoPeerCert
	}
	leaf, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return fmt.Errorf("cluster: peer certificate: %w", err)
	}
	if leaf.IsCA {
		return fmt.Errorf("%w: CA certificate instead of a node certificate", errNotMember)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:       a.roots,
		CurrentTime: a.now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errNotMember, err)
	}
	return nil
}

// serverConfig requires a client certificate and checks it with verifyPeer.
func (a *authority) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return a.certificate()
		},
		// RequireAnyClientCert plus our own verification: the standard
		// verifier would also want the client-auth key usage chain logic,
		// ours is the same check on both sides of the link.
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: a.verifyPeer,
	}
}

// clientConfig presents this node's certificate and checks the server's with
// verifyPeer. InsecureSkipVerify only turns off the host name based default
// verification, which verifyPeer replaces.
func (a *authority) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return a.certificate()
		},
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: a.verifyPeer,
	}
}
