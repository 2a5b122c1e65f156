"""A captioner that only sees pixels, for clip texts in the face world (issue 17, part 3).

It is not an oracle: it never reads the renderer's ground truth. A clip's frames (JPEG bytes, as a
vision LLM receives them) are embedded with the image tower of a tiny face-CLIP, and each frame gets
the nearest caption from a caption bank; the bank is written by the world's captioner
(`trainer.world.captions.action_phrases`) for action-unit combinations drawn regardless of any
class, so it holds no class information either. The answer reads like a vision LLM's: what the
face shows at first and how that changes, e.g. "At first: a relaxed face. Then: inner brows raised
and lips parted. At the end: ...". Consecutive frames with the same caption are said once.

Served behind the OpenAI-compatible fake server (bench/fake_llm_server.py, `vision_answer`):

    python bench/pixel_captioner.py      # prints its URL; serves model "pixel-captioner" until Ctrl-C
    promptkit describe-clips --list train.txt --list test.txt --model pixel-captioner \
        --base-url http://127.0.0.1:PORT/v1 --name world
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

MODEL = "pixel-captioner"


def _server_module():
    if "fake_llm_server" in sys.modules:
        return sys.modules["fake_llm_server"]
    spec = importlib.util.spec_from_file_location("fake_llm_server", Path(__file__).with_name("fake_llm_server.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_llm_server"] = module
    spec.loader.exec_module(module)
    return module


def caption_bank(size: int, seed: int) -> list[str]:
    """`size` distinct action captions for AU combinations drawn without regard to any class."""
    from trainer.world.aus import sample_random
    from trainer.world.captions import action_phrases

    rng = np.random.default_rng([seed, 0xCA9])
    bank: dict[str, None] = {}
    for _ in range(size * 20):
        if len(bank) >= size:
            break
        au = sample_random(rng) * (rng.random() < 0.9)  # one in ten: a face at rest
        phrases = action_phrases(au, rng)
        bank[", ".join(phrases[:-1]) + (" and " if len(phrases) > 1 else "") + phrases[-1]] = None
    return list(bank)


class PixelCaptioner:
    """frames (JPEG bytes) -> a clip-level description, by nearest-caption retrieval."""

    def __init__(self, weights: str | Path | None = None, bank_size: int = 3000, seed: int = 0) -> None:
        from safetensors.torch import load_file

        from trainer.model.tinyface import shipped_weights
        from trainer.pretrain.loop import build_tinyface, encode_text, normalize, tokenize

        path = Path(weights) if weights is not None else shipped_weights()
        self.model = build_tinyface(64)
        self.model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
        self.model.eval()
        self._normalize = normalize
        self.bank = caption_bank(bank_size, seed)
        with torch.no_grad():
            feats = [encode_text(self.model, tokenize(self.bank[i:i + 512])) for i in range(0, len(self.bank), 512)]
        self.text = F.normalize(torch.cat(feats), dim=-1)  # (K, E)

    @torch.no_grad()
    def nearest(self, images: list[bytes]) -> list[str]:
        """The bank's nearest caption for each frame."""
        frames = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB").resize((64, 64), Image.BILINEAR))
                           for b in images])  # (k, 64, 64, 3)
        feats = F.normalize(self.model.encode_image(self._normalize(torch.from_numpy(frames))), dim=-1)  # (k, E)
        return [self.bank[i] for i in (feats @ self.text.t()).argmax(dim=1).tolist()]

    def __call__(self, images: list[bytes]) -> str | None:
        if not images:
            return None
        said: list[str] = []
        for text in self.nearest(images):
            if not said or said[-1] != text:
                said.append(text)
        if len(said) == 1:
            return f"Throughout the clip: {said[0]}."
        steps = [f"At first: {said[0]}."] + [f"Then: {t}." for t in said[1:-1]] + [f"At the end: {said[-1]}."]
        return " ".join(steps)


def serve(**kwargs):
    """A started fake server on 127.0.0.1 (a free port) answering image requests with the captioner;
    stop it with .stop()."""
    server = _server_module().FakeLLMServer(models=(MODEL,), api_key=None, vision_answer=PixelCaptioner(**kwargs))
    return server.start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="A tiny face-CLIP model.safetensors (default: the shipped one).")
    args = parser.parse_args()
    server = serve(weights=args.weights)
    print(f"serving {MODEL!r} at {server.url} (Ctrl-C stops)", flush=True)
    try:
        import time

        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
