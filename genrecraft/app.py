"""A web app to hear models side by side: the same prompt and seed on each chosen model, LoRA strengths live.

    python -m genrecraft.app                                   # after `make demo`: the demo's base, full and LoRA
    python -m genrecraft.app base=facebook/musicgen-small jpop=//sig/abc123 --adapter jpop=adapters/jpop
    python -m genrecraft.app base=tiny:0 --host 0.0.0.0 --port 7860   # reachable from other machines (warns)

Each column of the page is one model: a model (a name given here or any model spec typed in), an optional LoRA
adapter with its strength (the strength also turns a LoRA run's own adapter up or down), and what it made: a
player, a spectrogram and a download button (the WAV and, beside it, its JSON sidecar as ``genrecraft.generate``
writes them). One click generates the prompt with the same seed and settings on every column (batch 1, seed as
``genrecraft.generate --seed``, so the CLI with the same flags makes the same clip). Loaded models are kept (the
last ``--keep`` of them); adapters are applied at run time, so moving a strength needs no reload. Requests are
queued: several people can use the page, one generation runs at a time. A model that cannot load shows its error
in its column; the others still play.

The server binds to 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import os
import sys
import tempfile
import threading
import time
import typing as tp
from pathlib import Path

import lora
from eval.generate import GenerateConfig
from lora.runtime import add_adapter, set_scale
from scripts.listening.server import is_loopback  # the rating server's rule: 127.0.0.0/8, ::1, localhost

from .core import cli, paths
from .core.atomic import atomic_path
from .generate import Clip, _unique_name, clip_metadata, generate, load_generator, write_clip
from .models import SPEC_HELP, _xp_folder, default_device, parse_model_spec

logger = logging.getLogger(__name__)

NO_ADAPTER = "(none)"
DEFAULT_PORT = 7860


@dataclasses.dataclass
class Catalog:
    """What the page offers: ``models`` {name: spec} and ``adapters`` {name: folder}, in order."""

    models: tp.Dict[str, str]
    adapters: tp.Dict[str, str] = dataclasses.field(default_factory=dict)
    note: str = ""

    def spec(self, choice: str) -> str:
        """The spec of a model choice: a listed name, or a spec typed in."""
        return self.models.get(choice, choice).strip()

    def adapter(self, choice: tp.Optional[str]) -> tp.Optional[str]:
        if not choice or choice == NO_ADAPTER:
            return None
        return self.adapters.get(choice, choice).strip()


def demo_catalog(work_dir: tp.Optional[Path] = None) -> tp.Optional[Catalog]:
    """The models of the last ``make demo`` (``<work dir>/demo/eval/report.json``), with the LoRA run's adapter
    offered on its own too; ``None`` when there is no demo."""

    report = (work_dir or paths.work_dir()) / "demo" / "eval" / "report.json"
    if not report.is_file():
        return None
    models = dict(json.loads(report.read_text()).get("models", {}))
    adapters = {}
    for label, spec in models.items():
        try:
            parsed = parse_model_spec(spec)
            if parsed.kind == "experiment" and (_xp_folder(parsed.name) / "adapter" / "adapter_config.json").is_file():
                adapters[f"{label} adapter"] = str(_xp_folder(parsed.name) / "adapter")
        except ValueError:
            continue
    return Catalog(models=models, adapters=adapters, note=f"the demo's models ({report.parent.parent})")


class ModelPool:
    """Loaded models by spec (the last ``keep``), each with the adapters added to it so far.

    A model's own adapters (a LoRA run's, or ``BASE@adapter``'s) follow the column's strength when the column
    has no adapter of its own; added adapters are at their column's strength or off."""

    def __init__(self, device: str = "cpu", keep: int = 3):
        self.device, self.keep = device, keep
        self._models: "collections.OrderedDict[str, tp.Any]" = collections.OrderedDict()
        self._own: tp.Dict[str, tp.Set[str]] = {}
        self._added: tp.Dict[tp.Tuple[str, str], str] = {}
        self.lock = threading.Lock()

    def put(self, spec: str, model: tp.Any) -> None:
        """Use an already loaded model for ``spec`` (tests, notebooks)."""
        self._models[spec] = model
        self._own[spec] = set(lora.adapter_names(model.lm)) if lora.has_lora(model.lm) else set()
        self._evict()

    def _evict(self) -> None:
        while len(self._models) > self.keep:
            old, _ = self._models.popitem(last=False)
            self._own.pop(old, None)
            self._added = {k: v for k, v in self._added.items() if k[0] != old}

    def get(self, spec: str, adapter: tp.Optional[str], strength: float):
        """The model of ``spec`` with ``adapter`` (a folder or ``None``) at ``strength`` and every other added
        adapter off. Loads what is missing; raises what :func:`genrecraft.generate.load_generator` raises."""

        if spec not in self._models:
            self.put(spec, load_generator(spec, device=self.device))
        self._models.move_to_end(spec)
        model = self._models[spec]
        if adapter is not None and (spec, adapter) not in self._added:
            lora.read_adapter_config(adapter)
            self._added[(spec, adapter)] = add_adapter(model.lm, adapter, name=_unique_name(model.lm, Path(adapter)))
        if lora.has_lora(model.lm):
            chosen = self._added.get((spec, adapter)) if adapter is not None else None
            for name in lora.adapter_names(model.lm):
                if name in self._own[spec]:
                    set_scale(model.lm, strength if adapter is None else 1.0, name)
                else:
                    set_scale(model.lm, strength if name == chosen else 0.0, name)
        return model


def spectrogram_png(audio, sample_rate: int, path: Path, title: str = "") -> Path:
    """A log-magnitude spectrogram of mono ``audio`` [T] as a small PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 2.2), dpi=100)
    audio = np.asarray(audio, dtype=np.float32) + 1e-9
    ax.specgram(audio, NFFT=1024, Fs=sample_rate, noverlap=768, cmap="magma", scale="dB")
    ax.set_xlabel("s")
    ax.set_ylabel("Hz")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


@dataclasses.dataclass
class ColumnResult:
    """What one column shows after a generation: a WAV, its spectrogram, a status line."""

    audio: tp.Optional[Path] = None
    image: tp.Optional[Path] = None
    status: str = ""


def generate_column(pool: ModelPool, spec: str, adapter: tp.Optional[str], strength: float, prompt: str,
                    config, out_dir: Path, stem: str) -> ColumnResult:
    """Generate one column's clip; errors become the column's status (the page keeps running)."""
    try:
        t0 = time.time()
        with pool.lock:
            model = pool.get(spec, adapter, strength)
            loaded = time.time() - t0
            clip: Clip = next(iter(generate(model, [prompt], config)))
            meta = clip_metadata(model, clip, config, spec, {"adapter": adapter, "strength": strength})
        path = write_clip(out_dir / f"{stem}.wav", clip.audio, clip.sample_rate, meta)
        image = spectrogram_png(clip.audio.mean(axis=0), clip.sample_rate, out_dir / f"{stem}.png")
        took = time.time() - t0
        seconds = clip.audio.shape[-1] / clip.sample_rate
        return ColumnResult(path, image, f"{seconds:.1f} s at {clip.sample_rate} Hz, seed {clip.seed}, "
                                         f"made in {took:.1f} s" + (f" (load {loaded:.1f} s)" if loaded > 1 else ""))
    except Exception as exc:  # noqa: BLE001 - any failure of one model is shown in its column, the app goes on
        logger.warning("column %s (%s) failed: %s", stem, spec, exc)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ColumnResult(status=f"**Error** ({type(exc).__name__}): {first}")


def build_app(catalog: Catalog, pool: tp.Optional[ModelPool] = None, columns: int = 3,
              out_dir: tp.Optional[Path] = None, max_duration: float = 30.0,
              initial: tp.Sequence[tp.Tuple[str, tp.Optional[str], float]] = ()):
    """The gradio ``Blocks`` of the page (not launched). ``initial`` presets columns: (model, adapter, strength)
    (default: the catalog's models in order, no adapter, strength 1)."""
    import gradio as gr

    pool = pool or ModelPool()
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="genrecraft-app-"))
    model_names = list(catalog.models)
    adapter_names = [NO_ADAPTER] + list(catalog.adapters)
    d = GenerateConfig()
    slots = []
    with gr.Blocks(title="genrecraft: try it") as app:
        gr.Markdown("## genrecraft: hear models side by side\n"
                    "The same prompt and seed on every column. A column's strength scales its adapter "
                    "(or a LoRA run's own): 0 is the base model, 1 the adapter as trained. "
                    "Type any model spec into a model box (`facebook/musicgen-small`, `//sig/SIG`, an export "
                    "folder, `BASE@adapter`)." + (f"\n\nOffering {catalog.note}." if catalog.note else ""))
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", value="mellow lo-fi hip hop with a warm piano", scale=4,
                                elem_id="prompt")
            seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, elem_id="seed")
            duration = gr.Slider(label="Seconds", minimum=1, maximum=max_duration, value=min(5.0, max_duration),
                                 step=0.5, elem_id="duration")
        with gr.Accordion("Sampling", open=False):
            with gr.Row():
                temperature = gr.Slider(label="Temperature", minimum=0.1, maximum=2.0, value=d.temperature,
                                        step=0.05)
                top_k = gr.Slider(label="Top-k", minimum=0, maximum=1000, value=d.top_k, step=1)
                top_p = gr.Slider(label="Top-p (0: use top-k)", minimum=0.0, maximum=1.0, value=d.top_p, step=0.01)
                cfg_coef = gr.Slider(label="Guidance (cfg coef)", minimum=0.0, maximum=10.0, value=d.cfg_coef,
                                     step=0.1)
        button = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Row():
            for i in range(columns):
                with gr.Column(min_width=260, elem_id=f"col{i}"):
                    preset = initial[i] if i < len(initial) else (
                        model_names[i] if i < len(model_names) else None, None, 1.0)
                    model = gr.Dropdown(choices=model_names, value=preset[0], label=f"Model {i + 1}",
                                        allow_custom_value=True, elem_id=f"model{i}")
                    adapter = gr.Dropdown(choices=adapter_names, value=preset[1] or NO_ADAPTER, label="LoRA adapter",
                                          allow_custom_value=True, elem_id=f"adapter{i}")
                    strength = gr.Slider(label="Strength", minimum=0.0, maximum=2.0, value=preset[2], step=0.05,
                                         elem_id=f"strength{i}")
                    audio = gr.Audio(label="Clip", type="filepath", interactive=False, elem_id=f"audio{i}")
                    image = gr.Image(label="Spectrogram", type="filepath", interactive=False, elem_id=f"spec{i}")
                    download = gr.DownloadButton("Download WAV", value=None, elem_id=f"download{i}")
                    status = gr.Markdown("", elem_id=f"status{i}")
                slots.append((model, adapter, strength, audio, image, download, status))

        def run(prompt_text, seed_value, seconds, temp, k, p, cfg, *values, progress=gr.Progress()):
            chosen = [(i, values[3 * i], values[3 * i + 1], values[3 * i + 2]) for i in range(columns)]
            chosen = [c for c in chosen if c[1]]
            outputs: tp.List[tp.Any] = []
            results: tp.Dict[int, ColumnResult] = {}
            if not str(prompt_text or "").strip():
                raise gr.Error("Type a prompt first.")
            config = GenerateConfig(n=1, duration=float(seconds), prompt_duration=0.0, batch_size=1,
                                    seed=int(seed_value or 0), top_k=int(k), top_p=float(p), temperature=float(temp),
                                    cfg_coef=float(cfg), progress=False)
            stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}-{int(time.time() * 1000) % 1000:03d}"
            for done, (i, name, adapter_choice, s) in enumerate(chosen):
                progress((done, len(chosen)), desc=f"{name}: loading and generating", unit="models")
                results[i] = generate_column(pool, catalog.spec(name), catalog.adapter(adapter_choice), float(s),
                                             str(prompt_text), config, out_dir, f"{stamp}-col{i}")
            progress((len(chosen), len(chosen)), desc="done", unit="models")
            for i in range(columns):
                r = results.get(i, ColumnResult(status="" if i not in [c[0] for c in chosen] else "?"))
                outputs += [str(r.audio) if r.audio else None, str(r.image) if r.image else None,
                            gr.DownloadButton(value=str(r.audio) if r.audio else None), r.status]
            return outputs

        inputs = [prompt, seed, duration, temperature, top_k, top_p, cfg_coef]
        for model, adapter, strength, *_ in slots:
            inputs += [model, adapter, strength]
        outputs = [c for slot in slots for c in slot[3:]]
        button.click(run, inputs=inputs, outputs=outputs, concurrency_limit=1, concurrency_id="generate")
        prompt.submit(run, inputs=inputs, outputs=outputs, concurrency_limit=1, concurrency_id="generate")
    app.queue(max_size=32)
    app.genrecraft_out_dir = out_dir  # type: ignore[attr-defined]
    return app


def _pairs(values: tp.Sequence[str], what: str) -> tp.Dict[str, str]:
    """``[NAME=]SPEC`` (or ``[NAME=]DIR`` for adapters) -> {name: spec}; a bare model is named by its spec's label,
    a bare adapter by its folder's name (names checked as every command checks them)."""
    out = {}
    for name, spec in cli.named(values):
        if name is None:
            name = Path(spec).name if what == "adapter" else parse_model_spec(spec).label
        cli.check_names([*out, name])
        out[name] = spec
    return out


def build_parser(prog: str = "python -m genrecraft.app") -> argparse.ArgumentParser:
    parser = cli.parser(prog, __doc__, epilog=SPEC_HELP)
    cli.add_models(parser, required=False, help="a model to offer, repeatable: [NAME=]SPEC (default: the demo's "
                                                "base, full and LoRA after `make demo`)")
    parser.add_argument("models", nargs="*", help=argparse.SUPPRESS)  # positional [NAME=]SPEC, as --model
    parser.add_argument("--adapter", action="append", default=[], metavar="[NAME=]DIR",
                        help="a LoRA adapter folder to offer in every column (repeatable)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (127.0.0.1: this machine only; 0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free)")
    parser.add_argument("--columns", type=int, default=3, help="models side by side")
    parser.add_argument("--keep", type=int, default=3, help="models kept loaded")
    parser.add_argument("--max-duration", type=float, default=30.0, help="longest clip offered, seconds")
    cli.add_device(parser)
    cli.add_out(parser, required=False, type=Path, default=None,
                help="folder for the generated clips (default: a fresh temporary folder)")
    return parser


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "python -m genrecraft.app") -> int:
    """Start the web app (see the module docstring)."""
    return cli.run(run, build_parser(prog).parse_args(argv))


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.columns <= 8:
        raise ValueError(f"--columns {args.columns}: use 1 to 8")
    if args.port != 0 and not 0 < args.port < 65536:
        raise ValueError(f"--port {args.port}: use 1 to 65535 (0: any free port)")
    models = _pairs(list(args.models) + list(args.model), "model")
    for spec in models.values():
        parse_model_spec(spec)  # a spec that cannot even be parsed is an error now, not in the page
    adapters = _pairs(args.adapter, "adapter")
    for folder in adapters.values():
        lora.read_adapter_config(folder)
    catalog = Catalog(models=models, adapters=adapters)
    if not models:
        found = demo_catalog()
        if found is not None:
            found.adapters.update(adapters)
            catalog = found
        else:
            catalog = Catalog(models={"tiny": "tiny:0"}, adapters=adapters,
                              note="no models given and no demo found (run `make demo`, or pass NAME=SPEC): the "
                                   "tiny random test model only")
            print(f"note: {catalog.note}", file=sys.stderr)
    if not is_loopback(args.host):
        print(f"warning: binding to {args.host}: anyone who can reach this machine on port {args.port} can use the "
              "app and make it load models from this machine's disk; use --host 127.0.0.1 to keep it local",
              file=sys.stderr)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    pool = ModelPool(device=args.device or default_device(), keep=args.keep)
    out_dir = Path(args.out).resolve() if args.out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(catalog, pool, columns=args.columns, out_dir=out_dir, max_duration=args.max_duration)
    print(f"models: {', '.join(f'{k}={v}' for k, v in catalog.models.items())}", file=sys.stderr)
    launch(app, args.host, args.port, block=True)
    return 0


def launch(app, host: str = "127.0.0.1", port: int = 0, block: bool = False):
    """Launch ``app`` on ``host:port`` (0: a free port); returns the page's URL. With ``block`` it serves until
    interrupted."""
    import gradio as gr

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if port == 0:
        import socket

        with socket.socket() as s:
            s.bind((host if is_loopback(host) else "0.0.0.0", 0))
            port = s.getsockname()[1]
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # no web fonts: works offline
    _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=not block,
                           ssr_mode=False, theme=theme, allowed_paths=[str(app.genrecraft_out_dir)],
                           footer_links=[])
    if block:
        try:
            app.block_thread()
        except KeyboardInterrupt:
            pass
    return url


if __name__ == "__main__":
    sys.exit(main())
