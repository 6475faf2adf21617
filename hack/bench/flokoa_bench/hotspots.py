"""Summarize a py-spy ``--format raw`` profile (collapsed stacks): top self and total time.

python hack/bench/hotspots.py PROFILE.txt [--top 25] [--filter flokoa_controller]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m.group("file")
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m.group('func')} ({file})"


def summarize(path: Path, top: int = 25, focus: str = "") -> str:
    """The report text."""
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    samples = 0
    idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        samples += count
        if frames and frames[-1].endswith(".select (selectors.py)"):
            idle += count  # the event loop waiting in epoll
        self_time[frames[-1]] += count
        for frame in set(frames):
            total_time[frame] += count
    out = [f"{samples} samples; idle in the selector: {idle / max(samples, 1):.0%}"]
    out.append("\nTop self time:")
    for frame, count in self_time.most_common(top):
        out.append(f"  {count / samples:6.1%}  {frame}")
    out.append(f"\nTop total time (frames matching {focus!r}):")
    shown = 0
    for frame, count in total_time.most_common():
        if focus and focus not in frame:
            continue
        out.append(f"  {count / samples:6.1%}  {frame}")
        shown += 1
        if shown >= top:
            break
    return "\n".join(out)


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--filter", default="")
    args = parser.parse_args()
    print(summarize(args.profile, args.top, args.filter))


if __name__ == "__main__":
    main()
