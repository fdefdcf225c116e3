"""RestServerConfiguration: the frozen view of the ``rest.*`` options the REST server takes."""

from __future__ import annotations

from dataclasses import dataclass

from pyflow.config import Configuration, options
from pyflow.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class RestServerConfiguration:
    """Where the REST server listens, what it advertises, and how large a body it accepts.

    ``bind_ports`` are tried in order (the first free one is taken); ``(0,)`` means any free port.

    >>> conf = Configuration({"rest.port": 9000})
    >>> RestServerConfiguration.from_config(conf).bind_ports
    (9000,)
    >>> RestServerConfiguration.from_config(conf, embedded=True).bind_ports
    (0,)
    """

    address: str
    bind_address: str
    bind_ports: tuple[int, ...]
    max_content_length: int

    @classmethod
    def from_config(cls, conf: Configuration, *, embedded: bool = False) -> "RestServerConfiguration":
        """``embedded``: a cluster inside another process (its RPC port is 0) never takes a fixed
        port either, so several can run side by side."""
        if embedded:
            ports: tuple[int, ...] = (0,)
        else:
            ports = parse_port_range(conf.get(options.REST_BIND_PORT)) or (conf.get(options.REST_PORT),)
        return cls(address=conf.get(options.REST_ADDRESS), bind_address=conf.get(options.REST_BIND_ADDRESS),
                   bind_ports=ports, max_content_length=int(conf.get(options.REST_MAX_CONTENT_LENGTH)))


def parse_port_range(text: str) -> tuple[int, ...]:
    """Flink's port syntax: ``"8081"``, ``"50100-50200"``, ``"50100,50102-50104"``; ``""`` is ().

    >>> parse_port_range("50100,50102-50104")
    (50100, 50102, 50103, 50104)
    """
    ports: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ConfigurationError(
                f"Invalid value '{text}' for '{options.REST_BIND_PORT.key}': expected a port, a range or a "
                f"comma-separated list of them, e.g. 'rest.bind-port: 50100-50200'.") from None
        if not 0 <= first <= last <= 65535:
            raise ConfigurationError(
                f"Invalid port range '{part}' in '{options.REST_BIND_PORT.key}': ports are 0..65535, "
                f"low to high, e.g. 'rest.bind-port: 50100-50200'.")
        ports.extend(range(first, last + 1))
    return tuple(ports)
