"""The Endpoint controller: probes each Endpoint's remote and reports Reachable, Authenticated, Ready."""

from controllers.endpoint.setup import setup_endpoint_controller

__all__ = ["setup_endpoint_controller"]
