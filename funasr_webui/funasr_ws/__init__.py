"""FunASR's runtime WebSocket protocol, so FunASR's own clients (funasr_wss_client.py, the html5 page, the C++
clients) transcribe with this server unchanged."""

from .listener import FunasrListener

__all__ = ["FunasrListener"]
