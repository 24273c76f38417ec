"""The bundled sample podcast, so the first run works with no network and no config.

Its feed is written into the state folder with publication dates of *now*, because
the back-catalogue rule would (rightly) skip episodes older than the lookback.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from digest.core.statefiles import private_dir

SAMPLE_DATA = Path(__file__).parent / "sample_data"

EPISODES = (
    (
        "Training is a data pipeline",
        "Why next-token prediction forces a model to learn the world.",
        "1:43",
    ),
    (
        "Where the moat really is",
        "Weights are a commodity; data flywheels and inference economics are not.",
        "1:27",
    ),
    (
        "Three vectors of defensibility",
        "Compute, data and product feedback loops, and the questions to ask founders.",
        "1:23",
    ),
)


def install_sample(state_dir: Path, now: datetime) -> str:
    """Copy the sample episodes into `<state_dir>/sample` and write its feed; return its URL."""
    target = state_dir / "sample"
    private_dir(target)
    feed_path = target / "feed.xml"
    if feed_path.exists():
        return feed_path.resolve().as_uri()
    episodes = []
    for number, (title, description, duration) in enumerate(EPISODES, start=1):
        audio = target / f"episode-{number}.mp3"
        shutil.copyfile(SAMPLE_DATA / audio.name, audio)
        episodes.append(
            {
                "number": number,
                "title": title,
                "description": description,
                "duration": duration,
                "audio_url": audio.resolve().as_uri(),
                "length": audio.stat().st_size,
                "pub_date": format_datetime(now - timedelta(hours=len(EPISODES) - number + 1)),
            }
        )
    env = Environment(
        loader=FileSystemLoader(SAMPLE_DATA),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["xml", "j2"]),
    )
    xml = env.get_template("feed.xml.j2").render(episodes=episodes)
    tmp = feed_path.with_suffix(".tmp")
    tmp.write_text(xml, encoding="utf-8")
    tmp.replace(feed_path)
    return feed_path.resolve().as_uri()
