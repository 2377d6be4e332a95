// Package config reads yubin's configuration: Postfix-compatible main.cf and
// master.cf files in one configuration directory (-c DIR, $MAIL_CONFIG or
// /etc/yubin).
//
// main.cf values are kept raw, exactly as written, and expanded on demand
// with Postfix's $name, ${name}, $(name), ${name?value}, ${name:value},
// ${name?{a}:{b}} and ${{x} op {y} ? {a} : {b}} syntax. Every supported
// parameter is listed in a registry (Params) with its Postfix default, its
// kind and a one-line meaning; Load validates every value against its kind so
// that a configuration mistake is reported with file:line instead of silently
// falling back to a default.
//
// master.cf services carry "-o name=value" overrides that apply to that
// service only (ServiceParam) and, for delivery transports, to per-transport
// scheduler limits (TransportParam).
//
// A Config is immutable after Load and safe for concurrent use; a reload is a
// new Load.
package config
