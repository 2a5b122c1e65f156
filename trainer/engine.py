"""The training and evaluation loops of `trainer run`.

One optimiser step takes `optim.batch` clips in all (the global batch): each of the W ranks loads
`batch / W` clips as one loader batch and runs them in `accum_steps` chunks; the loss of a chunk is
its summed cross-entropy over the rank's clips of the step, so after DDP's gradient average the
step's gradient is the mean over the global batch, exactly as in one process.

Exact resume: the epoch's clip order is a pure function of (seed, epoch) (`EpochSampler`), the
augmentation of a clip a pure function of (seed, epoch, index) (the dataset), and `last.pt` holds
model, optimiser, scheduler, RNG states, the finished epochs' metrics and the running sums of the
unfinished epoch. Resuming skips the steps already done in that epoch, so a run killed mid-epoch
ends with the same metrics as an uninterrupted one (CPU, deterministic mode, workers 0 or more).
`last.pt` holds every weight, also with `--peft`; `best.pt` of a PEFT run holds only its delta over
the base weights (`trainer.model.checkpoint.compact_payload`).

A non-finite loss stops the run with a TrainerError naming epoch and step; `last.pt` then still
holds the last good state. Only rank 0 writes files; every rank computes the same decisions.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from trainer import report
from trainer.accel import StepFigures, batched_decode, compile_error, compile_model, optimizer_options
from trainer.cliptexts import loader_order, run_clip_texts
from trainer.config import RunConfig, config_from_dict, preset
from trainer.data.batched import BatchDecoder
from trainer.data.dataset import VideoClipDataset, build_loader, to_model_input
from trainer.data.encoded import cpu_decoded_clips
from trainer.distributed import DistContext, EpochSampler, all_reduce_sum, broadcast_object
from trainer.ema import WeightEMA
from trainer.errors import TrainerError, TrainingStopped
from trainer.inputs import InputError, RunInputs
from trainer.model import autocast_for, build_model
from trainer.model import checkpoint as ckpt
from trainer.model.checkpoint import load_state, model_payload
from trainer.model.layer_decay import layer_groups
from trainer.scoring import eval_loader, evaluate, split_metrics
from trainer.tracking import NullTracker, open_tracker

log = logging.getLogger(__name__)



def _normalised(run_config: Any) -> Any:
    """A stored run config as this version writes it (older runs stored only some model fields)."""
    try:
        return config_from_dict(run_config).to_dict()
    except TrainerError:
        return run_config


class Progress(Protocol):
    """What the engine reports while it runs (the CLI draws rich bars or logs lines from it)."""

    def run_start(self, config: dict[str, Any], run_dir: Path) -> None: ...
    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None: ...
    def step(self, clips: int, loss: float, lrs: dict[str, float]) -> None: ...
    def epoch_end(self, record: dict[str, Any]) -> None: ...
    def note(self, message: str) -> None: ...
    def evaluating(self, split: str, done: int, total: int) -> None: ...


class NullProgress:
    def run_start(self, config: dict[str, Any], run_dir: Path) -> None:
        pass

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        pass

    def step(self, clips: int, loss: float, lrs: dict[str, float]) -> None:
        pass

    def epoch_end(self, record: dict[str, Any]) -> None:
        pass

    def note(self, message: str) -> None:
        log.info("%s", message)

    def evaluating(self, split: str, done: int, total: int) -> None:
        pass


def peft_lr_note(config: RunConfig) -> str | None:
    """A note when a --peft run trains its zero-initialised weights at the preset's lr_image, which
    is sized for full fine-tuning: they barely move at it (docs/switches.md, bench/RESULTS.md)."""
    lr = config.optim.lr_image
    if config.model.peft == "none" or lr != preset(config.preset)["optim"]["lr_image"]:
        return None
    return (f"note: --peft {config.model.peft} trains zero-initialised weights at the preset's lr_image {lr:g}, "
            f"which is sized for full fine-tuning; they barely move at it: give a larger one, e.g. --lr-image {25 * lr:g}")


@contextlib.contextmanager
def seeded(seed: int, deterministic: bool):
    """Seed python, numpy and torch; in deterministic mode also force deterministic kernels (restored after)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    previous = torch.are_deterministic_algorithms_enabled()
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def make_loader(records: list, image_size: int, *, train: bool, config: RunConfig, ctx: DistContext,
                batch: int, augment: str | None = None, encoded: bool = False):
    """A VideoClipDataset + loader whose sampler is the seeded, sharded, resumable EpochSampler."""
    dataset = VideoClipDataset(records, image_size, train=train, augment=augment if train else None,
                               num_segments=config.data.num_segments, seed=config.seed,
                               views=(1, 1) if train else config.data.views)
    if not train:
        return dataset, eval_loader(dataset, batch, config.data.workers, ctx, seed=config.seed)
    multiple = config.optim.batch if config.optim.drop_last else None
    weights = class_balanced_weights(dataset.labels) if config.data.balanced_sampling else None
    sampler = EpochSampler(len(dataset), shuffle=True, seed=config.seed, rank=ctx.rank,
                           world_size=ctx.world_size, drop_last_multiple=multiple, weights=weights)
    loader = build_loader(dataset, batch, shuffle=False, drop_last=False, workers=config.data.workers,
                          seed=config.seed, sampler=sampler, encoded=encoded)
    return dataset, loader


def class_balanced_weights(labels: list[int]) -> list[float]:
    """One weight per clip, 1 / (clips of its class): every class is drawn equally often."""
    counts: dict[int, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return [1.0 / counts[label] for label in labels]


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """`trainable_params` (requires grad) and `total_params` of a model (shared tensors once)."""
    params = list(model.parameters())
    return {"trainable_params": sum(p.numel() for p in params if p.requires_grad),
            "total_params": sum(p.numel() for p in params)}


def fresh_state() -> dict[str, Any]:
    return {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": [],
            "partial": {"loss_sum": 0.0, "clips": 0, "seconds": 0.0}, "best": {"score": None, "epoch": None}}


class Trainer:
    """Builds model, loaders and optimiser for one run folder, then `fit()`s."""

    def __init__(self, config: RunConfig, inputs: RunInputs, run_dir: Path, ctx: DistContext,
                 progress: Progress | None = None) -> None:
        self.config, self.inputs, self.run_dir, self.ctx = config, inputs, Path(run_dir), ctx
        self.progress = progress or NullProgress()
        optim = config.optim
        if optim.batch % (ctx.world_size * optim.accum_steps):
            raise InputError(f"--batch {optim.batch} must be a multiple of ranks x accumulation steps "
                             f"({ctx.world_size} x {optim.accum_steps})")
        self.per_rank = optim.batch // ctx.world_size
        batched = batched_decode(config.data.decode, ctx.device)  # before the model: a refusal costs nothing
        self.core = build_model(config.model_config(), inputs.texts).to(ctx.device)
        if config.compile:
            compile_model(self.core)
        groups = self.core.param_groups(optim.lrs())
        if optim.layer_decay is not None:  # the image group split by depth, each with its decayed rate
            image = [g for g in groups if g["name"] == "image"]
            groups = [g for g in groups if g["name"] != "image"]
            if image:
                groups = layer_groups(self.core.image_encoder, optim.lr_image, optim.layer_decay) + groups
        if not groups:
            raise InputError(f"model mode {self.core.config.mode!r} has nothing to train; evaluate it with `trainer eval`")
        self.params = parameter_counts(self.core)
        self.ema = WeightEMA(self.core, optim.ema) if optim.ema is not None else None
        self.model = self.core
        if ctx.distributed:
            self.model = DistributedDataParallel(self.core, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
        if optim.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(groups, lr=optim.lr_image, weight_decay=optim.weight_decay,
                                               **optimizer_options(ctx.device))
        else:
            self.optimizer = torch.optim.SGD(groups, lr=optim.lr_image, momentum=optim.momentum,
                                             weight_decay=optim.weight_decay, **optimizer_options(ctx.device))
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(optim.milestones), gamma=optim.gamma)
        fp16 = ctx.device.type == "cuda" and config.precision == "fp16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        size = self.core.image_size
        self.train_set, self.train_loader = make_loader(inputs.train, size, train=True, config=config, ctx=ctx,
                                                        batch=self.per_rank, augment=config.data.augment,
                                                        encoded=batched)
        self.decoder = BatchDecoder(self.train_set, size, ctx.device) if batched else None
        self.figures = StepFigures.for_device(ctx.device)
        self.first_step_done = False
        if len(self.train_loader) == 0:
            raise InputError(f"the train set has {len(inputs.train)} clips, fewer than one batch of {optim.batch}; "
                             "lower --batch (or --set optim.drop_last=false)")
        eval_batch = max(1, self.per_rank // optim.accum_steps)
        test_set, self.test_loader = make_loader(inputs.test, size, train=False, config=config, ctx=ctx,
                                                 batch=eval_batch)
        test_set.check_readable("test clips")  # before training, not after its first epoch
        self.val_loader = None
        if inputs.val:
            _, self.val_loader = make_loader(inputs.val, size, train=False, config=config, ctx=ctx, batch=eval_batch)
        self.clip_texts = run_clip_texts(self.core, inputs, config, ctx.device)  # None without --clip-texts
        self.state = fresh_state()
        self.tracker = NullTracker()  # opened by fit(), on rank 0 only
        counts = f"parameters: {self.params['trainable_params']:,} trainable of {self.params['total_params']:,}"
        clip_notes = self.clip_texts.notes if self.clip_texts is not None else []
        for line in filter(None, [counts, self.train_set.mismatch_summary(), peft_lr_note(config),
                                  self._decode_note() if batched else None, *clip_notes]):
            self._note(line)

    # ------------------------------------------------------------------ checkpoints
    def _header(self) -> dict[str, Any]:
        return {"format": ckpt.FORMAT, "format_version": ckpt.FORMAT_VERSION,
                "run_config": self.config.to_dict(), "classes": list(self.inputs.classes),
                "class_set": self.inputs.class_set, "text": dict(self.inputs.text_info),
                "clip_texts": self._clip_text_info(),
                "preprocessing": {**self.core.preprocessing(), "num_segments": self.config.data.num_segments}}

    def _clip_text_info(self) -> dict[str, Any] | None:
        return self.clip_texts.info() if self.clip_texts is not None else None

    def save_last(self) -> None:
        if not self.ctx.is_main:
            return
        state = {**self._header(), "kind": "run", "model": model_payload(self.core),
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "scaler": self.scaler.state_dict(), "rng": ckpt.rng_state(), **self.state}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        ckpt.save_checkpoint(state, self.run_dir / "last.pt")

    def save_best(self, record: dict[str, Any]) -> None:
        if not self.ctx.is_main:
            return
        with self._evaluated_weights():  # the weights the record's metrics were computed with
            payload = ckpt.compact_payload(self.core)  # a PEFT model: its delta over the base weights
        state = {**self._header(), "kind": "model", "model": payload, "epoch": record["epoch"], "metrics": record}
        state["format_version"] = ckpt.payload_version(payload)
        ckpt.save_checkpoint(state, self.run_dir / "best.pt")

    def restore(self, path: Path) -> None:
        """Load `last.pt`: weights, optimiser, scheduler, RNG and progress, after checking it is this run's."""
        state = ckpt.load_checkpoint(path, kind="run")
        if _normalised(state.get("run_config")) != self.config.to_dict():
            raise ckpt.CheckpointError(f"{path} was written by a run with another configuration; "
                                       "resume with the run folder's own config.json (or start a new --out)")
        info = self.inputs.text_info
        if state.get("text", {}).get("content_hash") not in info.get("known_hashes", [info.get("content_hash")]):
            raise ckpt.CheckpointError(f"{path} was trained with other class texts than {self.inputs.text_info.get('set_id', 'these')}")
        if (state.get("clip_texts") or {}).get("content_hash") != (self._clip_text_info() or {}).get("content_hash"):
            raise ckpt.CheckpointError(f"{path} was trained with other clip texts than {self.config.model.clip_texts}; "
                                       "resume with the clip-text set it was trained with (or start a new --out)")
        load_state(self.core, state["model"]["state_dict"], str(path))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state.get("ema"))
        ckpt.set_rng_state(state["rng"])
        self.state = {key: state[key] for key in fresh_state()}

    def _evaluated_weights(self) -> contextlib.AbstractContextManager:
        """The EMA weights swapped in with --ema, else the model's own."""
        return self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext()

    def _decode_note(self) -> str | None:
        """One note when --decode gpu leaves some train clips to CPU decoding in the workers."""
        n = cpu_decoded_clips(self.train_set)
        if not n:
            return None
        return (f"note: --decode gpu decodes JPEG frames only; {n} of {len(self.train_set)} train clips (videos, PNG "
                "frames, or face crops) are decoded on the CPU by the loader workers")

    def _note(self, message: str) -> None:
        if self.ctx.is_main:
            self.progress.note(message)

    # ------------------------------------------------------------------ loops
    def fit(self) -> dict[str, Any]:
        """Train the remaining epochs, evaluating after each; return summary.json's content."""
        epochs = self.config.optim.epochs
        if self.ctx.is_main:
            self.tracker = open_tracker(self.config.logger, self.run_dir, self.config.to_dict(),
                                        start_step=self.state["global_step"])
        try:
            while self.state["epoch"] < epochs:
                epoch = self.state["epoch"]
                self._train_epoch(epoch)
                record = self._end_epoch(epoch)
                if self.ctx.is_main:
                    self.progress.epoch_end(record)
                    self.tracker.log_epoch(record, tuple(self.inputs.classes))
            summary = self._finish()
            self.tracker.finish(self.config.to_dict(), summary)
            return summary
        finally:
            self.tracker.close()

    def _train_epoch(self, epoch: int) -> None:
        done = self.state["step_in_epoch"]
        self.train_set.set_epoch(epoch, start_index=done * self.per_rank)
        steps = done + len(self.train_loader)
        if self.ctx.is_main:
            self.progress.epoch_start(epoch + 1, self.config.optim.epochs, steps, done)
        self.model.train()
        every = self.config.ckpt_every_steps
        tick = time.perf_counter()
        order = loader_order(self.train_loader) if self.clip_texts is not None else None
        for frames, labels in self.train_loader:
            if self.decoder is not None:
                frames = self.decoder(frames)  # JPEG bytes -> (B, T, 3, S, S) uint8 on the device
            index = None if order is None else torch.tensor([next(order) for _ in range(len(labels))])  # (B,)
            total = self._first_step(frames, labels, index) if not self.first_step_done else self._step(frames, labels, index)
            self.state["partial"]["seconds"] += time.perf_counter() - tick
            tick = time.perf_counter()
            self.state["step_in_epoch"] += 1
            self.state["global_step"] += 1
            self.figures.add(self.state["step_in_epoch"], self.state["global_step"], total, self._lrs())
            save = every and self.state["global_step"] % every == 0 and self.state["step_in_epoch"] < steps
            if save or self.figures.due():
                self._read_figures()
            if save:
                self.save_last()
        self._read_figures()

    def _first_step(self, frames: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """The process's first step: with --compile it compiles (timed, noted) and a compiler that
        does not work here becomes one line."""
        start = time.perf_counter()
        try:
            total = self._step(frames, labels, index)
        except Exception as exc:
            error = compile_error(exc) if self.config.compile else None
            if error is not None:
                raise error from exc
            raise
        self.first_step_done = True
        if self.config.compile:
            self._note(f"--compile: the first step took {time.perf_counter() - start:.1f} s (compiling included)")
        return total

    def _read_figures(self) -> None:
        """Read the pending steps' figures from the device: sums, progress, tracker, and the
        non-finite check (before any checkpoint is written)."""
        part = self.state["partial"]
        for epoch_step, global_step, loss_sum, n, lrs in self.figures.read():
            if not math.isfinite(loss_sum):
                last = self.run_dir / "last.pt"
                kept = (f"the checkpoint {last} from before is kept (--resume continues from it)" if last.is_file()
                        else "no checkpoint had been written yet")
                raise TrainingStopped(f"loss became {loss_sum} at epoch {self.state['epoch'] + 1} step {epoch_step}; "
                                      f"stopped, {kept}; the training diverged: lower the learning rates or set "
                                      "optim.clip_grad")
            part["loss_sum"] += loss_sum
            part["clips"] += n
            if self.ctx.is_main:
                self.progress.step(n, loss_sum / max(n, 1), lrs)
                self.tracker.log_step(global_step, loss_sum / max(n, 1), lrs)

    def _step(self, frames: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """One optimiser step over this rank's clips of the global batch; returns (global loss sum,
        global clips) as a (2,) float64 tensor on the device, not read here (no host sync).
        `index` (B,): the clips' indices in the train set, with clip texts."""
        cfg = self.config
        n_rank = len(labels)
        k = cfg.optim.accum_steps
        chunks = list(zip(frames.chunk(k), labels.chunk(k), index.chunk(k) if index is not None else [None] * k))
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.ctx.device)
        for i, (f, y, idx) in enumerate(chunks):
            sync = i == len(chunks) - 1 or not self.ctx.distributed
            with (contextlib.nullcontext() if sync else self.model.no_sync()):
                x, y = to_model_input(f, self.ctx.device), y.to(self.ctx.device, non_blocking=True)  # (b, T, 3, H, W), (b,)
                mix = self._mixup(len(y), i)
                if mix is not None:
                    lam, perm = mix
                    x = lam * x + (1.0 - lam) * x[perm]  # (b, T, 3, H, W)
                with autocast_for(self.ctx.device, cfg.precision):
                    if idx is None:
                        logits, aux = self.model(x).float(), None  # (b, C)
                    else:  # with clip texts (trainer.cliptexts): fused in, or an auxiliary loss
                        logits, aux = self.clip_texts.train_forward(self.model, x, idx, self.core.similarity_scale())
                smooth = cfg.optim.label_smoothing
                ce = F.cross_entropy(logits, y, reduction="sum", label_smoothing=smooth)
                if mix is not None:
                    ce = lam * ce + (1.0 - lam) * F.cross_entropy(logits, y[perm], reduction="sum", label_smoothing=smooth)
                if aux is not None:
                    ce = ce + aux
                self.scaler.scale(ce / n_rank).backward()
            loss_sum = loss_sum + ce.detach().double()
        total = all_reduce_sum(torch.stack([loss_sum, loss_sum.new_full((), n_rank)]), self.ctx)  # (loss sum, clips)
        if cfg.optim.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], cfg.optim.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update()
        return total

    def _mixup(self, n: int, chunk: int) -> tuple[float, torch.Tensor] | None:
        """Mixup's (lambda, partner permutation) for one chunk, a pure function of (seed, step, rank,
        chunk) so a resumed run mixes the same pairs; None when off."""
        alpha = self.config.optim.mixup
        if alpha <= 0:
            return None
        rng = np.random.default_rng([self.config.seed, self.state["global_step"], self.ctx.rank, chunk, 0x313])
        lam = float(rng.beta(alpha, alpha))
        return lam, torch.from_numpy(rng.permutation(n)).to(self.ctx.device)

    def _lrs(self) -> dict[str, float]:
        return {g.get("name", str(i)): g["lr"] for i, g in enumerate(self.optimizer.param_groups)}

    def _end_epoch(self, epoch: int) -> dict[str, Any]:
        part = self.state["partial"]
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": part["loss_sum"] / max(part["clips"], 1),
                                  "lr": self._lrs(), "train_clips_per_s": part["clips"] / max(part["seconds"], 1e-9)}
        self.scheduler.step()
        n_classes = len(self.inputs.classes)
        with self._evaluated_weights():
            _, logits = evaluate(self.core, self.test_loader, self.ctx, self.config.precision, self._eval_progress("test"),
                                 self._fused_texts("test"))
            record["test"] = split_metrics(logits, [r.label for r in self.inputs.test], n_classes)
            if self.val_loader is not None:
                _, logits = evaluate(self.core, self.val_loader, self.ctx, self.config.precision, self._eval_progress("val"),
                                     self._fused_texts("val"))
                record["val"] = split_metrics(logits, [r.label for r in self.inputs.val], n_classes)
        self.state["history"].append(record)
        self.state.update(epoch=epoch + 1, step_in_epoch=0, partial=fresh_state()["partial"])
        improved = self._select(record)
        self.save_last()
        if improved:
            self.save_best(record)
        self._write_reports()
        return record

    def _fused_texts(self, split: str):
        return self.clip_texts.eval_features(split) if self.clip_texts is not None else None

    def _eval_progress(self, split: str):
        """The per-batch progress callback of an evaluation (rank 0 only)."""
        if not self.ctx.is_main:
            return None
        return lambda done, total: self.progress.evaluating(split, done, total)

    def _select(self, record: dict[str, Any]) -> bool:
        """Update the selected epoch; True when this epoch becomes the selected one."""
        select = self.config.select
        if select == "last":
            self.state["best"] = {"score": None, "epoch": record["epoch"]}
            return record["epoch"] == self.config.optim.epochs
        score = record["val"]["war"] if select == "val" else record["test"]["war"]
        best = self.state["best"]
        if best["score"] is None or score > best["score"]:
            self.state["best"] = {"score": score, "epoch": record["epoch"]}
            return True
        return False

    def _write_reports(self) -> None:
        if not self.ctx.is_main:
            return
        history = self.state["history"]
        report.write_metrics_jsonl(self.run_dir / "metrics.jsonl", history)
        report.write_curves(self.run_dir, history)

    def _finish(self) -> dict[str, Any]:
        selected = self.state["best"]["epoch"]
        history = self.state["history"]
        extra = {"class_set": self.inputs.class_set, "text": self.inputs.text_info, "clip_texts": self._clip_text_info(),
                 "checkpoint": str(self.run_dir / "best.pt"), "seed": self.config.seed,
                 "fold": self.config.data.fold if self.config.data.dataset else None,
                 "world_size": self.ctx.world_size, **self.params, "versions": report.software_versions()}
        summary = report.build_summary(history, selected, self.config.select, self.inputs.classes, extra)
        if self.ctx.is_main:
            rec = next(r for r in history if r["epoch"] == selected)
            report.write_confusion(self.run_dir, rec["test"]["confusion"], self.inputs.classes,
                                   f"test, epoch {selected} ({report.SELECTION_LABELS[self.config.select]})")
            report.write_json(self.run_dir / "summary.json", summary)
        return broadcast_object(summary, self.ctx)
