"""Control plane: gRPC services (generated/control.proto), endpoints with one main thread each,
gateways with their testing doubles, and the one place where gRPC errors become pyflow errors."""
