#!/usr/bin/env bash
# Installs what the test suite uses as real peers: Postfix (smtp-source,
# smtp-sink, postmap for differential tests), swaks, pflogsumm, Dovecot's LMTP
# server, nmap, and headless Chromium (the status page test). Runs only as
# root and only installs what is missing; the package's own Postfix instance
# is kept from listening on port 25.
set -eu
if [ "$(id -u)" != 0 ]; then
    echo "test-deps: not root, not installing packages (tests needing them will skip)" >&2
    exit 0
fi
pkgs="postfix swaks libnet-ssleay-perl libio-socket-ssl-perl pflogsumm dovecot-core dovecot-lmtpd nmap chromium"
need=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
    echo "test-deps: installing$need"
    apt-get update -qq
    echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
    echo "postfix postfix/mailname string yubin.invalid" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
# The packaged Postfix must never run on port 25 here: comment out its smtp service.
if command -v postconf >/dev/null && postconf -M smtp/inet 2>/dev/null | grep -q '^smtp'; then
    postconf -M# smtp/inet || true
fi
