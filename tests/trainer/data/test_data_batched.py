"""`--decode gpu`'s batched decode + augment against the CPU path: the same random draws, pixels
within rounding, the same bad-frame rule. Runs on CPU tensors (torchvision's CPU JPEG decoder);
the CUDA test is skipped without a GPU."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from trainer.data import ClipRecord, VideoClipDataset, build_loader, read_annotations, transforms
from trainer.data import encoded as encoded_module
from trainer.data.batched import BatchDecoder, augment_clip
from trainer.data.encoded import EncodedView, collate_encoded, cpu_decoded_clips, jpeg_size
from trainer.data.synthetic import generate

# OpenCV resizes uint8 in fixed point, the batched path in fp32: +-1 after the resize, which a
# brightness factor up to 1.5 can make 2
RESIZE_TOL = 2


@pytest.fixture(scope="module")
def textured(tmp_path_factory):
    """Synthetic JPEG clips (drawn faces, so resize differences show), 48 px."""
    made = generate(tmp_path_factory.mktemp("synth"), train_per_class=1, test_per_class=1, size=48, seed=2,
                    min_frames=6, max_frames=10)
    return read_annotations(made.train_list, num_classes=7)


def _both(ds: VideoClipDataset, epoch: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """(CPU path's clips, batched path's clips) of every clip of `ds` in `epoch`: (N, T, 3, S, S) uint8."""
    cpu = torch.stack([ds[(i, epoch)][0] for i in range(len(ds))])
    batch, _ = collate_encoded([EncodedView(ds)[(i, epoch)] for i in range(len(ds))])
    return cpu, BatchDecoder(ds, ds.image_size, torch.device("cpu"))(batch)


@pytest.mark.parametrize("augment", ["dfew", "ferv39k", "mafw", "light", "none"])
def test_batched_path_draws_the_same_parameters_as_the_cpu_path(textured, augment, monkeypatch):
    draws = {"cpu": [], "batched": []}

    def recorder(key, real):
        def record(height, width, preset, rng):
            draw = real(height, width, preset, rng)
            draws[key].append((height, width, draw))
            return draw
        return record

    monkeypatch.setattr(transforms, "draw_augment", recorder("cpu", transforms.draw_augment))
    monkeypatch.setattr(encoded_module, "draw_augment", recorder("batched", encoded_module.draw_augment))
    ds = VideoClipDataset(textured, 40, train=True, augment=augment, num_segments=4, seed=7)
    _both(ds)
    assert len(draws["cpu"]) == len(ds) and draws["cpu"] == draws["batched"]
    if augment != "none":  # a real draw per clip, not one for all
        assert len({d[2] for d in draws["cpu"]}) == len(ds)


@pytest.mark.parametrize("augment,size", [("dfew", 40), ("dfew", 64), ("mafw", 32), ("light", 48), ("none", 40),
                                          ("ferv39k", 40)])
def test_batched_pixels_match_the_cpu_path_within_rounding(textured, augment, size):
    ds = VideoClipDataset(textured, size, train=True, augment=augment, num_segments=4, seed=11)
    cpu, batched = _both(ds)
    assert batched.shape == cpu.shape and batched.dtype == torch.uint8
    diff = (cpu.int() - batched.int()).abs()
    assert diff.max() <= RESIZE_TOL
    assert diff.float().mean() < 0.3  # most pixels equal; a wrong box or flip moves far more


def test_a_wrong_draw_would_be_seen(textured):
    """The tolerance above catches a crop box or flip that differs from the CPU path's."""
    ds = VideoClipDataset(textured, 40, train=True, augment="mafw", num_segments=4, seed=11)
    cpu = ds[(0, 3)][0]
    item, _ = EncodedView(ds)[(0, 3)]
    decoded = BatchDecoder(ds, 40, torch.device("cpu")).frames(collate_encoded([(item, 0)])[0])
    params = encoded_module._params(item)
    flipped, shifted = list(params), list(params)
    flipped[8] = 1.0 - params[8]
    shifted[4], shifted[5] = params[4] + 1, params[5] + 1  # top, left: one pixel off
    shifted[6], shifted[7] = params[6] - 1, params[7] - 1  # inside the frame still
    assert (cpu.int() - augment_clip(torch.stack(decoded), 40, params).int()).abs().max() <= RESIZE_TOL
    for wrong in (flipped, shifted):
        assert (cpu.int() - augment_clip(torch.stack(decoded), 40, wrong).int()).abs().max() > RESIZE_TOL


def test_jpeg_size_reads_the_header_and_refuses_cut_files(textured):
    frame = sorted(textured[0].path.iterdir())[0]
    data = frame.read_bytes()
    assert jpeg_size(data) == (48, 48)
    assert jpeg_size(data[: len(data) // 2]) is None  # truncated: no end-of-image marker
    assert jpeg_size(b"\x89PNG....") is None


def test_bad_jpegs_follow_the_cpu_paths_nearest_frame_rule(tmp_path, make_clip, caplog):
    folder = make_clip(tmp_path / "c", 16, ext="jpg", width=3)
    whole = (folder / "012.jpg").read_bytes()
    (folder / "012.jpg").write_bytes(whole[: len(whole) // 2])  # cut short: caught in the worker
    bad = bytearray((folder / "005.jpg").read_bytes())
    sof = next(k for k in range(len(bad) - 1) if bad[k] == 0xFF and bad[k + 1] in (0xC0, 0xC2))
    bad[sof + 4] = 7  # a header that reads but a precision no decoder takes: caught when decoding
    (folder / "005.jpg").write_bytes(bytes(bad))
    (folder / "008.jpg").write_bytes(b"not a jpeg at all")  # named .jpg, read by the CPU reader, which fails
    cpu_ds = VideoClipDataset([ClipRecord(folder, 16, 0)], 16, train=True, augment="none")
    ds = VideoClipDataset([ClipRecord(folder, 16, 0)], 16, train=True, augment="none")
    cpu = cpu_ds[(0, 0)][0]
    with caplog.at_level(logging.WARNING):
        batch, _ = collate_encoded([EncodedView(ds)[(0, 0)]])
        batched = BatchDecoder(ds, 16, torch.device("cpu"))(batch)[0]
    assert torch.equal(batched, cpu)  # flat frames: the same replacement frames, the same values
    assert ds.stats.replaced_frames == cpu_ds.stats.replaced_frames == 3
    assert "005.jpg" in caplog.text and "008.jpg" in caplog.text and "012.jpg" in caplog.text


def test_png_frames_are_decoded_on_the_cpu_and_counted(tmp_path, make_clip):
    png = make_clip(tmp_path / "p", 8, ext="png")
    jpg = make_clip(tmp_path / "j", 8, ext="jpg")
    records = [ClipRecord(png, 8, 0), ClipRecord(jpg, 8, 1)]
    ds = VideoClipDataset(records, 16, train=True, augment="dfew", num_segments=4, seed=3)
    assert cpu_decoded_clips(ds) == 1
    cpu, batched = _both(ds, epoch=0)
    assert (cpu.int() - batched.int()).abs().max() <= RESIZE_TOL


def test_encoded_loader_with_workers_yields_the_cpu_loaders_clips(textured):
    ds = VideoClipDataset(textured, 32, train=True, augment="dfew", num_segments=4, seed=5)
    plain = build_loader(ds, 3, shuffle=True, drop_last=True, workers=0, seed=5)
    encoded = build_loader(ds, 3, shuffle=True, drop_last=True, workers=1, seed=5, encoded=True)
    decoder = BatchDecoder(ds, 32, torch.device("cpu"))
    pairs = list(zip(plain, encoded))
    assert len(pairs) == len(plain) > 0
    for (frames, labels), (batch, encoded_labels) in pairs:
        assert torch.equal(labels, encoded_labels)
        assert (frames.int() - decoder(batch).int()).abs().max() <= RESIZE_TOL


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_decode_matches_the_cpu_path(textured):
    ds = VideoClipDataset(textured, 40, train=True, augment="dfew", num_segments=4, seed=11)
    cpu = torch.stack([ds[(i, 3)][0] for i in range(len(ds))])
    batch, _ = collate_encoded([EncodedView(ds)[(i, 3)] for i in range(len(ds))])
    cuda = BatchDecoder(ds, 40, torch.device("cuda"))(batch)
    assert cuda.device.type == "cuda"
    diff = (cpu.int() - cuda.cpu().int()).abs()
    # nvJPEG's chroma upsampling differs from libjpeg-turbo's by a few levels on some pixels
    assert diff.float().mean() < 1.0 and np.percentile(diff.numpy(), 99) <= 4
