"""funasr-webui: local, private speech-to-text (FunASR Paraformer, or an embedded Whisper engine offline)."""

__version__ = "0.1.0"
