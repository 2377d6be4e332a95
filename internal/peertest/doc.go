// Package peertest holds helpers that start real peer programs (Dovecot)
// and read real endpoints (Prometheus /metrics) for tests, so that the unit
// tests of a package and the integration tests share one implementation.
//
// It is used only by _test.go files and may import "testing".
package peertest
