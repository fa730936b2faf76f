"""The demo's corpus server port: its own per seed, so that a run repeats whole."""

from __future__ import annotations

import socket
from pathlib import Path

from emotions_data.demo import _PORT_BASE, _corpus_port


def test_port_follows_the_seed_and_skips_a_taken_one(tmp_path: Path) -> None:
    # video ids derive from the corpus URLs, port included, and the simulated crowd draws
    # per video id: the same seed must give the same port on a fresh --out
    first = _corpus_port(tmp_path / "a", seed=3)
    again = _corpus_port(tmp_path / "b", seed=3)
    assert first == again == _PORT_BASE + 303
    assert _corpus_port(tmp_path / "c", seed=4) == _PORT_BASE + 404
    # a taken port: the next free one, and a resumed run keeps what it had
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", _PORT_BASE + 505))
        assert _corpus_port(tmp_path / "d", seed=5) == _PORT_BASE + 506
    assert _corpus_port(tmp_path / "d", seed=5) == _PORT_BASE + 506
