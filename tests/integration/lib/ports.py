"""Free TCP ports on 127.0.0.1 for the servers an integration test starts.

A port the kernel hands out for bind(0) comes from its ephemeral range,
the same range every outgoing connection takes its source port from:
released again before the server binds it, it was sometimes taken by a
connection of a test running beside (fresh-check once failed
cli_connections with "address already in use"). These come from below
that range (20000..32767), at random, each checked by a bind.
"""
import random
import socket

LOW, HIGH = 20000, 32768  # below Linux's default ip_local_port_range
_rng = random.SystemRandom()


def free_ports(n):
    """n distinct ports that were free a moment ago."""
    ports = []
    while len(ports) < n:
        p = _rng.randrange(LOW, HIGH)
        if p in ports:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        ports.append(p)
    return ports
