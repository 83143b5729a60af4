"""What every tab is built with."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from ..service import TranscriptionService
from ..settings import Settings
from .components import Downloads


@dataclass
class PageContext:
    """The page's shared parts, handed to each ``create_<tab>``."""

    service: TranscriptionService
    lang: gr.Radio  # the language switch: the last input of every callback that writes text
    downloads: Downloads = field(default_factory=Downloads)  # one temp folder for the page's download files
    uploads: list[gr.File] = field(default_factory=list)  # upload boxes, redrawn when the language changes

    @property
    def settings(self) -> Settings:
        return self.service.settings
