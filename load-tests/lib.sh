# Shell helpers shared by load-tests/run and load-tests/tail_floor.sh (sourced, not run).

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to a minute for URL to answer 2xx; otherwise says WHAT did not come up and exits.
wait_http() { # url, what
    for _ in $(seq 1 600); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "$2 did not come up ($1)" >&2; exit 1
}
