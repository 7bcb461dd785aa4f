"""``python -m services.simulator`` — the district simulator and an example command-line client.

    python -m services.simulator run [--rate 5] [--seed 7] [--seconds N]   # play the district
    python -m services.simulator district [--seed 7]                       # print the sample district
    python -m services.simulator send grid.case.report.v1 '{"case_id": ...}' [--as NAME] [--no-follow]
    python -m services.simulator follow <command id> [--timeout 30]        # what a command caused

``send`` publishes one command on its service's intake topic and prints what it caused (events,
or the rejection with its reason) — found by ``causationid``. ``follow`` reads the events and
rejections topics from the beginning for a command sent earlier.

Environment: KAFKA_BOOTSTRAP_SERVERS (127.0.0.1:9092), RATE (commands/s, 5), SEED (7),
SIM_CLOCK_START, SIM_CLOCK_REAL_START, SIM_MONTH_SECONDS (the stepped calendar the services run
on, see services/kit/clock.py; ``make run`` sets them; unset = real time),
SIM_EXPIRE_WAIT (how long a story waits for an order it leaves unanswered to expire, 90;
set ORDERS_ACCEPT_WINDOW_SECONDS short for expiries to happen in a demo),
GRID_REGISTER_PATH (the grid register the district is built on), GRID_DEPARTMENTS_PATH (the
department register its departments come from), SIGNING_KEY_FILE (the dev
identity provider's private key that ``run`` signs a token per simulated person with, default
``signing-key.pem`` beside IDENTITIES_FILE; JWT_ISSUER / JWT_AUDIENCE as the services expect),
IDENTITIES_FILE (the demo identities: ``send`` uses the one of the role that sends the command,
or ``--as NAME``; default $VAR_DIR/run/identities.json; both files are written by ``make run`` or
``python -m services.kit.devidentity``), POINTS_URL (the points HTTP API, where a resident asks
for the consent code of a redemption; default http://$POINTS_HTTP_HOST:$POINTS_HTTP_PORT, or
http://127.0.0.1:8003). See services/simulator/identities.py.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys

from services.kit import clock, kafkasec

from .client import CommandClient, command_from
from .district import generate, load_departments, load_register
from .identities import default_path, demo_token, minter_from_env, role_for, tokens_by_role
from .runner import Simulator


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _tokens() -> dict[str, str]:
    path = default_path()
    if not path.exists():
        logging.getLogger("simulator").warning("%s does not exist: commands are sent without a token", path)
        return {}
    return tokens_by_role(path)


def _points_url() -> str:
    return os.environ.get("POINTS_URL") or \
        f"http://{_env('POINTS_HTTP_HOST', '127.0.0.1')}:{_env('POINTS_HTTP_PORT', '8003')}"


async def _run(args) -> int:
    district = generate(args.seed, load_register(os.environ.get("GRID_REGISTER_PATH")),
                        departments=load_departments(os.environ.get("GRID_DEPARTMENTS_PATH")))
    minter = minter_from_env()
    if minter is None:
        logging.getLogger("simulator").warning(
            "no signing key (SIGNING_KEY_FILE): commands go with the demo token of their role, and services "
            "that check who sends them will refuse most of them")
    sim = Simulator(district, args.bootstrap, rate=args.rate, seed=args.seed, clock=clock.from_env(),
                    expire_wait=float(_env("SIM_EXPIRE_WAIT", "90")), tokens=_tokens(), minter=minter,
                    points_url=_points_url(), security=kafkasec.from_env())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sim.stop)
    stats = await sim.run(args.seconds)
    logging.getLogger("simulator").info("final stats %s", stats)
    print(json.dumps(stats, ensure_ascii=False))
    return 0


async def _send(args) -> int:
    payload = command_from(args.type, json.loads(args.data))
    tokens = _tokens()
    if args.as_ is not None:  # the demo identity named: its token for every role
        tok = demo_token(default_path(), args.as_)
        tokens = {role_for(args.type) or "": tok}
    async with CommandClient(args.bootstrap, source=args.source, now=clock.from_env().now, tokens=tokens,
                             security=kafkasec.from_env()) as client:
        env = await client.send(payload)
        print(json.dumps({"sent": env.model_dump(mode="json", exclude_none=True)}, ensure_ascii=False))
        if args.no_follow:
            return 0
        out = await client.follow(env.id, args.timeout)
    print(json.dumps(out.as_dict(), ensure_ascii=False, indent=2))
    return 1 if out.rejected or out.timed_out else 0


async def _follow(args) -> int:
    async with CommandClient(args.bootstrap, from_beginning=True, security=kafkasec.from_env()) as client:
        out = await client.follow(args.command_id, args.timeout, settle=1.0)
    print(json.dumps(out.as_dict(), ensure_ascii=False, indent=2))
    return 1 if out.rejected or out.timed_out else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.simulator", description=__doc__.split("\n")[0])
    p.add_argument("--bootstrap", default=_env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    sub = p.add_subparsers(dest="cmd")
    r = sub.add_parser("run", help="play the sample district")
    r.add_argument("--rate", type=float, default=float(_env("RATE", "5")), help="commands per second")
    r.add_argument("--seed", type=int, default=int(_env("SEED", "7")))
    r.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    d = sub.add_parser("district", help="print the sample district as JSON")
    d.add_argument("--seed", type=int, default=int(_env("SEED", "7")))
    s = sub.add_parser("send", help="publish one command and print its outcome")
    s.add_argument("type", help="command type, e.g. grid.case.report.v1")
    s.add_argument("data", help="the command's data as JSON")
    s.add_argument("--source", default="/cli")
    s.add_argument("--timeout", type=float, default=30.0)
    s.add_argument("--no-follow", action="store_true")
    s.add_argument("--as", dest="as_", metavar="NAME", default=None,
                   help="send as this demo identity of identities.json (name or sub); default: the first "
                        "one holding the role that sends the command. Actor fields left out are filled "
                        "from its token")
    f = sub.add_parser("follow", help="print what a command (by id) caused")
    f.add_argument("command_id")
    f.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=_env("LOG_LEVEL", "info").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    if args.cmd in (None, "run"):
        if args.cmd is None:
            args = p.parse_args([*(argv or sys.argv[1:]), "run"])
        return asyncio.run(_run(args))
    if args.cmd == "district":
        district = generate(args.seed, load_register(os.environ.get("GRID_REGISTER_PATH")),
                        departments=load_departments(os.environ.get("GRID_DEPARTMENTS_PATH")))
        print(json.dumps(dataclasses.asdict(district), ensure_ascii=False, indent=1, default=str))
        return 0
    if args.cmd == "send":
        return asyncio.run(_send(args))
    return asyncio.run(_follow(args))


if __name__ == "__main__":
    sys.exit(main())
