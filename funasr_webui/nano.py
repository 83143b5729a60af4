"""The Fun-ASR-Nano engines (Fun-ASR-Nano-2512 and the 31-language Fun-ASR-MLT-Nano-2512): funasr.AutoModel with
FunASRNano (an audio encoder feeding a Qwen3 LLM), on the clips of our FSMN-VAD.

The LLM is prompted with the hotwords, the language (by its Chinese name, as the model was trained) and whether
to normalize numbers (ITN), and answers punctuated text: neither CT-punc nor our ITN is applied on top. Without
a CTC head FunASR gives no timestamps for it (and its alignment would need torchaudio): a sentence's times are
its VAD clip's. fp16 (for the LLM only, on CUDA) only when asked: it garbles some audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE
from .engine import EngineResult, TranscribeOptions
from .speech_clips import decode_in_batches, describe_clip_engine, join_texts, speech_clips
from .transcript import Segment
from .vad import SpeechDetector, load_funasr_model

# The languages each model's card lists, by ISO code, with the name its prompt takes ("语音转写成中文").
NANO_LANGUAGES = {"zh": "中文", "en": "英文", "ja": "日文"}
MLT_LANGUAGES = {
    **NANO_LANGUAGES,
    "yue": "粤语",
    "ko": "韩文",
    "vi": "越南语",
    "id": "印尼语",
    "th": "泰语",
    "ms": "马来语",
    "fil": "菲律宾语",
    "ar": "阿拉伯语",
    "hi": "印地语",
    "bg": "保加利亚语",
    "hr": "克罗地亚语",
    "cs": "捷克语",
    "da": "丹麦语",
    "nl": "荷兰语",
    "et": "爱沙尼亚语",
    "fi": "芬兰语",
    "el": "希腊语",
    "hu": "匈牙利语",
    "ga": "爱尔兰语",
    "lv": "拉脱维亚语",
    "lt": "立陶宛语",
    "mt": "马耳他语",
    "pl": "波兰语",
    "pt": "葡萄牙语",
    "ro": "罗马尼亚语",
    "sk": "斯洛伐克语",
    "sl": "斯洛文尼亚语",
    "sv": "瑞典语",
}


class FunASRNanoEngine:
    streaming = None  # no streaming model here: live partials re-decode the open utterance
    own_itn = True  # the prompt asks for ITN or not

    def __init__(
        self,
        name: str,
        model_dir: Path,
        vad: SpeechDetector,
        device: str,
        threads: int,
        fp16: bool,
        batch_size: int,
    ) -> None:
        self.name = name  # "fun-asr-nano" | "fun-asr-mlt-nano"
        self.language_names = MLT_LANGUAGES if name == "fun-asr-mlt-nano" else NANO_LANGUAGES
        self.languages = tuple(self.language_names)
        self.model = load_funasr_model(model=str(model_dir), device=device, ncpu=threads)
        self.model_dir = model_dir
        self.vad = vad
        self.device = device
        self.fp16 = fp16 and device == "cuda"  # half precision only when asked, and only on a GPU
        self.batch_size = batch_size
        self.model_name = model_dir.name

    def describe(self) -> dict[str, str]:
        return describe_clip_engine(self)

    def decode(self, clips: list[np.ndarray], options: TranscribeOptions) -> list[str]:
        import torch

        results = self.model.generate(
            input=[torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32)) for c in clips],  # not numpy
            hotwords=list(options.hotwords),
            language=self.language_names.get(options.language or ""),  # None: the model recognizes any
            itn=options.itn,
            batch_size=len(clips),
            llm_dtype="fp16" if self.fp16 else "fp32",
            disable_pbar=True,
        )
        return [r.get("text", "").strip() for r in results]

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> EngineResult:
        spans, clips = speech_clips(self.vad, audio, options)
        texts = decode_in_batches(clips, self.batch_size, lambda group: self.decode(group, options), options)
        segments = [
            Segment(round(start, 3), round(end, 3), text)
            for (start, end), text in zip(spans, texts, strict=True)
            if text
        ]
        text = join_texts([s.text for s in segments])
        return EngineResult(text=text, raw_text=text, segments=segments, language=options.language or "")

    def transcribe_utterance(self, audio: np.ndarray, options: TranscribeOptions, final: bool) -> str:
        if audio.size < SAMPLE_RATE // 10:
            return ""
        return self.decode([audio], options)[0]

    def stream_partial(self, chunk: np.ndarray, cache: dict, is_final: bool) -> str:
        raise RuntimeError("Fun-ASR-Nano has no streaming model here: live partials re-decode the open utterance")
