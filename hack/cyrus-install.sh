#!/usr/bin/env bash
# Installs Debian's Cyrus IMAP 3.6 packages (server, replication, SASL tools) when they
# are missing. Services are not started: policy-rc.d is left as it is, and the project's
# pairs run their own `master` processes with private configs.
set -euo pipefail
need=()
[ -x /usr/lib/cyrus/bin/master ] || need+=(cyrus-common)
[ -x /usr/lib/cyrus/bin/imapd ] || need+=(cyrus-imapd)
[ -x /usr/lib/cyrus/bin/sync_server ] || need+=(cyrus-replication)
[ -x /usr/lib/cyrus/bin/imtest ] || need+=(cyrus-clients)
command -v saslpasswd2 >/dev/null || need+=(sasl2-bin)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "cyrus-install: missing ${need[*]} and not root; install them with apt-get" >&2
  exit 1
fi
echo "cyrus-install: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends cyrus-common cyrus-imapd cyrus-replication cyrus-clients sasl2-bin >/dev/null
