"""Python client and ``predict`` console command for the service's own API."""

from service.client.client import Client, ClientError

__all__ = ["Client", "ClientError"]
