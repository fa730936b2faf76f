"""``emotions-data --help`` and every ``COMMAND --help``: wall and CPU seconds, fresh processes.

Each help is shown ``--repeat`` times in a fresh process; the best wall time and the CPU time
(user + system, from ``os.wait4``) of that run are printed, next to a bare ``python -c pass``
for scale (on a loaded machine wall time is mostly waiting; CPU time is what help costs).
Goal: under 0.3 s each. This process imports only the standard library and click.

Run: ``.venv/bin/python benchmarks/cli_help.py``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CLI = os.path.join(os.path.dirname(sys.executable), "emotions-data")


def run(argv: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited {proc.returncode}")
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime


def commands() -> list[list[str]]:
    import click

    from emotions_data.cli import main

    def walk(group: click.Group, ctx: click.Context, prefix: list[str]) -> list[list[str]]:
        found: list[list[str]] = []
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            found.append([*prefix, name])
            if isinstance(cmd, click.Group):
                found += walk(cmd, ctx, [*prefix, name])
        return found

    return [[], *walk(main, click.Context(main), [])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--list", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list:
        print("\n".join(" ".join(c) for c in commands()))
        return
    # listed by a child: importing every command module here would make this process heavy
    listed = subprocess.run(
        [sys.executable, __file__, "--list"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    rows = []
    for line in listed:
        argv = [CLI, *line.split(), "--help"]
        best = min((run(argv) for _ in range(args.repeat)), key=lambda r: r[0])
        rows.append((line or "(root)", *best))
    bare = min(
        (run([sys.executable, "-c", "pass"]) for _ in range(args.repeat)), key=lambda r: r[0]
    )
    print(
        f"load average {os.getloadavg()[0]:.1f}; python -c pass: wall {bare[0]:.2f} s, CPU {bare[1]:.2f} s"
    )
    print(f"{'command --help':<28} {'wall s':>7} {'CPU s':>6}")
    for name, wall, cpu in rows:
        print(f"{name:<28} {wall:7.2f} {cpu:6.2f}")
    print(
        f"slowest: wall {max(r[1] for r in rows):.2f} s, CPU {max(r[2] for r in rows):.2f} s "
        f"over {len(rows)} commands (goal 0.3 s)"
    )


if __name__ == "__main__":
    main()
