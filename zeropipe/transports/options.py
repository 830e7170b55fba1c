"""Per-socket options that the transports need, with libzmq's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from zeropipe.protocol.mechanisms import Security


@dataclass
class Options:
    """Values in libzmq units (milliseconds, messages, bytes)."""

    sndhwm: int = 1000
    rcvhwm: int = 1000
    linger: int = -1
    sndtimeo: int = -1
    rcvtimeo: int = -1
    reconnect_ivl: int = 100
    reconnect_ivl_max: int = 0
    handshake_ivl: int = 30000
    heartbeat_ivl: int = 0
    heartbeat_ttl: int = 0
    heartbeat_timeout: int = -1
    maxmsgsize: int = -1
    routing_id: bytes = b""
    backlog: int = 100
    ipv6: int = 0
    immediate: int = 0
    sndbuf: int = -1
    rcvbuf: int = -1
    tcp_keepalive: int = -1
    tcp_keepalive_cnt: int = -1
    tcp_keepalive_idle: int = -1
    tcp_keepalive_intvl: int = -1
    tos: int = 0
    last_endpoint: str = ""
    conflate: int = 0
    invert_matching: int = 0
    xpub_verbose: int = 0
    xpub_verboser: int = 0
    xpub_manual: int = 0
    xpub_nodrop: int = 0
    xpub_welcome_msg: bytes = b""
    req_relaxed: int = 0
    req_correlate: int = 0
    router_mandatory: int = 0
    router_handover: int = 0
    probe_router: int = 0
    connect_routing_id: bytes = b""
    connect_timeout: int = 0
    tcp_maxrt: int = 0
    # Security: the mechanism and role follow the last PLAIN_*/CURVE_* option set (as libzmq).
    mechanism: bytes = b"NULL"
    as_server: int = 0
    plain_username: bytes = b""
    plain_password: bytes = b""
    curve_publickey: bytes = b""
    curve_secretkey: bytes = b""
    curve_serverkey: bytes = b""
    zap_domain: bytes = b""
    zap_enforce_domain: int = 0
    # Accepted and reported as libzmq does, without effect here (multicast, affinity).
    affinity: int = 0
    rate: int = 100
    recovery_ivl: int = 10000
    multicast_hops: int = 1

    def security(self) -> Security:
        """The mechanism each new connection uses, and whether it asks a ZAP handler.

        As libzmq: NULL consults ZAP only with a ZAP domain; a PLAIN server
        always does and refuses peers when no handler is bound; a CURVE server
        does whenever a handler is bound (without one it only encrypts, unless
        ZAP_ENFORCE_DOMAIN is set with a ZAP domain), except that
        ZAP_ENFORCE_DOMAIN without a domain turns ZAP off for CURVE.
        """
        mechanism = self.mechanism
        server = bool(self.as_server) and mechanism != b"NULL"
        domain = bool(self.zap_domain)
        enforce = bool(self.zap_enforce_domain)
        if mechanism == b"NULL":
            zap = domain
        elif mechanism == b"CURVE":
            zap = server and (domain or not enforce)  # libzmq's zap_required()
        else:
            zap = server  # a PLAIN server always asks (libzmq asserts it)
        return Security(
            mechanism=mechanism,
            as_server=server,
            username=self.plain_username,
            password=self.plain_password,
            public_key=self.curve_publickey,
            secret_key=self.curve_secretkey,
            server_key=self.curve_serverkey,
            zap=zap,
            zap_required=(enforce and domain) or mechanism == b"PLAIN",
        )
