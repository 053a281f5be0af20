"""Real-time factor of the whole dataset builder: yt-dlp download from a loopback server, chunking, labelling
(essentia DSP + musicnn taggers) with 2 worker processes, split, manifests, card.

    python bench/bench_dataset_builder.py              # 12 synthetic songs x 2 min = 24 min of music, as MP3
    python bench/bench_dataset_builder.py --quick      # 4 songs x 1 min
    python bench/bench_dataset_builder.py --set real   # 30 songs, 99 min of free game music from Debian packages

``--set synthetic``: genrecraft.synth's songs (known key and tempo, two styles), encoded to MP3. ``--set real``:
the fixed list :data:`REAL_SET` (Ogg Vorbis and MP3 files of four Debian packages: orchestral, rock/electronic,
adventure-game and sci-fi game music); the bench installs the packages with apt-get when run as root and they are
missing, else it stops naming them. Either way the files are served on 127.0.0.1, so the download path is the
real one. Each set keeps its own row in ``bench/results/dataset_builder.json`` (``set``: synthetic or real), with
the wall time, the real-time factor, the CPU seconds of the builder and its workers per minute of music (less
sensitive than the wall time to other jobs on the machine) and the 1-minute load average before and after.
Target: >= 30x real time on 2 workers (issue 19; stretch 40x).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genrecraft.core.serve import FolderServer  # noqa: E402

# (Debian package, version the figures were measured with, [files]); Debian bookworm.
REAL_SET = [
    ("asc-music", "1.3-6", [f"/usr/share/games/asc/music/{n}.mp3" for n in
                            ("frontiers", "machine_wars", "time_to_strike")]),
    ("wesnoth-1.16-music", "1:1.16.9-1", [f"/usr/share/games/wesnoth/1.16/data/core/music/{n}.ogg" for n in
                                          ("knolls", "battle", "wanderer", "traveling_minstrels", "elvish-theme",
                                           "loyalists", "frantic", "underground", "love_theme", "revelation")]),
    ("drascula-music", "1.0+ds4-2", [f"/usr/share/scummvm/drascula/audio/track{n}.ogg" for n in
                                     (2, 1, 30, 23, 26, 11, 14, 9, 5, 3)]),
    ("freedroidrpg-data", "1.0-1", [f"/usr/share/freedroidrpg/data/sound/music/{n}.ogg" for n in
                                    ("Bleostrada", "TheBeginning", "town", "ImperialArmy", "TechBattle", "Suspicion",
                                     "Hyperbattle")]),
]


def real_files() -> list:
    """``[(package, path)]`` of the real set, installing its packages first if missing (root only)."""
    missing = [pkg for pkg, _, files in REAL_SET if not all(Path(f).exists() for f in files)]
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise SystemExit(f"the real set needs the Debian packages {' '.join(missing)}: "
                             f"sudo apt-get install {' '.join(missing)}")
        print(f"installing {' '.join(missing)} with apt-get", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        result = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "-o",
                                 "DPkg::Lock::Timeout=300", *missing], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"apt-get install {' '.join(missing)} failed: {result.stderr.strip()[-300:]}")
    out = [(pkg, f) for pkg, _, files in REAL_SET for f in files]
    absent = [f for _, f in out if not Path(f).exists()]
    if absent:
        raise SystemExit(f"the real set's file {absent[0]} is missing (the package version differs from the list)")
    return out


def duration(path: Path) -> float:
    result = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                             str(path)], capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its waited-for children (labelling workers, ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="set_name", choices=("synthetic", "real"), default="synthetic")
    parser.add_argument("--quick", action="store_true", help="synthetic set only: 4 songs x 1 min")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import soundfile as sf

    from dataset_builder import BuildConfig, build
    from dataset_builder.label.musicnn import DEFAULT_RUNTIME, model_file
    from genrecraft.synth import SongSpec, render_song

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        www = root / "www"
        www.mkdir()
        lines = []
        if args.set_name == "real":
            audio = 0.0
            for pkg, path in real_files():
                name = f"{pkg.split('-')[0]}-{Path(path).name}"
                os.symlink(path, www / name)
                audio += duration(www / name)
                lines.append(f"{{base}}/{name} artist={pkg}")
            songs, fmt = len(lines), "Debian packages' ogg/mp3 over loopback HTTP"
        else:
            songs, seconds = (4, 60.0) if args.quick else (12, 120.0)
            keys = ["C", "A", "F#", "D", "G", "E", "Bb", "B", "Eb", "F", "Ab", "C#"]
            for i in range(songs):
                spec = SongSpec(keys[i], "major" if i % 2 else "minor", 80.0 + 7 * i, ("synthpop", "lofi")[i % 2],
                                seed=i)
                wav = root / f"s{i}.wav"
                sf.write(wav, render_song(spec, seconds), 32000)
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-b:a", "160k",
                                str(www / f"s{i}.mp3")], check=True)
                lines.append(f"{{base}}/s{i}.mp3 artist=artist{i % 4}")
            audio, fmt = songs * seconds, "mp3 160k over loopback HTTP"

        server = FolderServer(www)
        base = server.url
        playlist = root / "playlist.txt"
        playlist.write_text("\n".join(line.format(base=base) for line in lines) + "\n")
        for name in ("MSD_musicnn", "MTT_musicnn"):
            model_file(name, DEFAULT_RUNTIME)  # converted once and cached, as after a first run; not part of the timing
        load_start = os.getloadavg()[0]
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        result = build(playlist, root / "out", BuildConfig(name="bench", tagger="musicnn", workers=args.workers),
                       progress=False)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        load_end = os.getloadavg()[0]
        server.close()
    minutes = audio / 60
    row = {"set": args.set_name, "songs": songs, "minutes_of_music": round(minutes, 2),
           "chunks": sum(result.counts.values()), "workers": args.workers, "wall_s": round(wall, 1),
           "real_time_factor": round(audio / wall, 2), "cpu_s": round(cpu, 1),
           "cpu_s_per_min": round(cpu / minutes, 2), "load": [round(load_start, 2), round(load_end, 2)],
           "format": fmt, "target": ">= 30x (stretch 40x)"}
    from bench.common import RESULTS, report

    name = "dataset_builder_quick" if args.quick else "dataset_builder"
    rows = []
    try:  # keep the other set's row; rows written before sets existed are the synthetic set's
        rows = [dict({"set": "synthetic"}, **r) for r in json.loads((RESULTS / f"{name}.json").read_text())["rows"]]
    except (OSError, ValueError, KeyError):
        pass
    rows = [r for r in rows if r["set"] != row["set"]] + [row]
    report(name, rows, params={"tagger": "musicnn", "bpm_method": "degara", "tempo_octave": "backbeat",
                               "real_set": [{"package": p, "version": v, "files": f} for p, v, f in REAL_SET]})


if __name__ == "__main__":
    main()
