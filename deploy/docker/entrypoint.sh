#!/bin/sh
# sixstep's container entry point: a service by name, nats-server, a health probe, or any
# `sixstep` command.
#   intake | followup | feedback     the service (python -m services.<name>.main)
#   nats-server [args]               the pinned nats-server binary
#   probe <port> [path]              exit 0 when http://127.0.0.1:<port><path> answers 2xx
#   anything else                    sixstep <args> (ops apply, dlq list, ...)
set -eu
case "${1:-intake}" in
  intake|followup|feedback)
    exec python -m "services.$1.main" ;;
  nats-server)
    shift
    exec nats-server "$@" ;;
  probe)
    exec python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' \
      "http://127.0.0.1:$2${3:-/health}" ;;
  *)
    exec sixstep "$@" ;;
esac
