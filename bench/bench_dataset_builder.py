"""Real-time factor of the whole dataset builder: yt-dlp download from a loopback server, chunking, labelling
(essentia DSP + musicnn taggers) with 2 worker processes, split, manifests, card.

    python bench/bench_dataset_builder.py           # 12 synthetic songs x 2 min = 24 min of music, as MP3
    python bench/bench_dataset_builder.py --quick   # 4 songs x 1 min

The music is synthetic (genrecraft.synth: known key and tempo, two styles), encoded to MP3 and served on
127.0.0.1, so the download path is the real one. Target: >= 12x real time on 2 cores.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import soundfile as sf

    from dataset_builder import BuildConfig, build
    from dataset_builder.label.musicnn import model_file
    from genrecraft.synth import SongSpec, render_song

    songs, seconds = (4, 60.0) if args.quick else (12, 120.0)
    keys = ["C", "A", "F#", "D", "G", "E", "Bb", "B", "Eb", "F", "Ab", "C#"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        www = root / "www"
        www.mkdir()
        lines = []
        for i in range(songs):
            spec = SongSpec(keys[i], "major" if i % 2 else "minor", 80.0 + 7 * i, ("synthpop", "lofi")[i % 2], seed=i)
            wav = root / f"s{i}.wav"
            sf.write(wav, render_song(spec, seconds), 32000)
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-b:a", "160k", str(www / f"s{i}.mp3")],
                           check=True)
            lines.append(f"{{base}}/s{i}.mp3 artist=artist{i % 4}")

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *a):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        playlist = root / "playlist.txt"
        playlist.write_text("\n".join(line.format(base=base) for line in lines) + "\n")
        for name in ("MSD_musicnn", "MTT_musicnn"):
            model_file(name)  # converted once and cached, as after a first run; not part of the timing
        t0 = time.perf_counter()
        result = build(playlist, root / "out", BuildConfig(name="bench", tagger="musicnn", workers=args.workers),
                       progress=False)
        wall = time.perf_counter() - t0
        server.shutdown()
    audio = songs * seconds
    rows = [{"songs": songs, "minutes_of_music": audio / 60, "chunks": sum(result.counts.values()),
             "workers": args.workers, "wall_s": wall, "real_time_factor": audio / wall, "target": ">= 12x"}]
    from bench.common import report

    report("dataset_builder_quick" if args.quick else "dataset_builder", rows,
           params={"tagger": "musicnn", "bpm_method": "degara", "format": "mp3 160k over loopback HTTP"})


if __name__ == "__main__":
    main()
